"""MIME -> a normalised email: decoded headers and bodies, attachments, quote/signature trimming, and the
signs of automatic mail (auto-replies, bounces).

Pure functions over bytes: no database, no network. Russian mail still arrives in KOI8-R and windows-1251,
often with a missing or wrong charset label, so every decode goes through `decode_bytes`, which checks the
label against the bytes instead of trusting it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email
import email.header
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message as MimeMessage
from html.parser import HTMLParser

# -- charsets -------------------------------------------------------------------------------------------

_ALIASES: dict[str, str | None] = {
    "koi8r": "koi8_r", "koi8": "koi8_r", "koi-8r": "koi8_r", "koi8-ru": "koi8_r",
    "win-1251": "cp1251", "windows1251": "cp1251", "x-cp1251": "cp1251", "cp-1251": "cp1251",
    "win1251": "cp1251", "x-win1251": "cp1251", "windows-1251-1": "cp1251",
    "x-mac-cyrillic": "mac_cyrillic", "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8", "x-utf8": "utf-8",
    "ansi_x3.4-1968": "ascii", "us-ascii": "ascii", "gb2312": "gb18030",
    "unknown-8bit": None, "x-unknown": None, "default": None, "unknown": None, "x-user-defined": None,
    "charset": None, "": None,
}
_CYRILLIC_SINGLE_BYTE = ("cp1251", "koi8_r", "iso8859_5", "cp866", "mac_cyrillic")
_FREQUENT_RU = set("оеаинтсрвлкмдпу")


def codec_for(label: str | None) -> str | None:
    """A Python codec for a declared charset, or None when the label names nothing usable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    mapped = _ALIASES.get(name, name)
    if mapped is None:
        return None
    try:
        return codecs.lookup(mapped).name
    except LookupError:
        return None


def _russian_score(text: str) -> float:
    """Share of the most frequent lowercase Russian letters among Cyrillic letters (~0.5 for real text)."""
    letters = [c for c in text if "\u0400" <= c <= "\u04ff"]
    if len(letters) < 4:
        return 0.0
    return sum(1 for c in letters if c in _FREQUENT_RU) / len(letters)


def _guess(data: bytes) -> str | None:
    best: tuple[float, str] | None = None
    for codec in ("cp1251", "koi8_r"):
        score = _russian_score(data.decode(codec, errors="replace"))
        if best is None or score > best[0]:
            best = (score, codec)
    if best is not None and best[0] >= 0.3:
        return best[1]
    from charset_normalizer import from_bytes

    match = from_bytes(data[:20000], cp_isolation=["utf_8", "cp1251", "koi8_r", "cp1252", "iso8859_5"]).best()
    return match.encoding if match is not None else None


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Text from bytes under a declared charset that may be missing, unknown, or simply wrong."""
    if data.isascii():
        return data.decode("ascii")
    codec = codec_for(declared)
    if codec in (None, "ascii", "latin-1", "iso8859-1", "cp1252"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        guess = _guess(data)
        if guess in _CYRILLIC_SINGLE_BYTE or codec is None:
            return data.decode(guess or "cp1252", errors="replace")
        assert codec is not None
        return data.decode(codec, errors="replace")
    if codec != "utf-8":
        try:
            # non-ASCII bytes that are valid UTF-8 are UTF-8: legacy Cyrillic text practically never is
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        guess = _guess(data)
        return data.decode(guess or codec, errors="replace")
    if codec.replace("-", "_") in _CYRILLIC_SINGLE_BYTE:
        # KOI8-R labelled as windows-1251 (and the reverse) decodes without an error, into nonsense
        own = _russian_score(text)
        for other in ("cp1251", "koi8_r"):
            if other != codec.replace("-", "_"):
                alt = data.decode(other, errors="replace")
                if _russian_score(alt) > own + 0.2:
                    return alt
    return text


def decode_header(raw: str | None, fallback: str | None = None) -> str:
    """An RFC 2047 header (or raw 8-bit bytes, as some Russian clients still send) as text."""
    if not raw:
        return ""
    out: list[str] = []
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        parts = [(raw, None)]
    for chunk, charset in parts:
        if isinstance(chunk, str):
            try:
                chunk_bytes = chunk.encode("ascii", "surrogateescape")
            except UnicodeEncodeError:
                out.append(chunk)
                continue
        else:
            chunk_bytes = chunk
        out.append(decode_bytes(chunk_bytes, charset or fallback))
    return " ".join("".join(out).split())


# -- the normalised email ---------------------------------------------------------------------------------

@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass
class Bounce:
    original_ids: list[str]
    status: str = ""
    diagnostic: str = ""
    recipient: str = ""


@dataclass
class ParsedEmail:
    message_id: str
    synthesised_id: bool
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    reply_to: str
    subject: str
    date: dt.datetime | None
    in_reply_to: list[str]
    references: list[str]
    text: str
    html: str | None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    skipped_parts: list[str] = field(default_factory=list)
    auto_reply: str | None = None
    bulk: bool = False
    bounce: Bounce | None = None
    text_from_html: bool = False  # no text/plain part: `text` was made from the HTML
    report: bool = False  # a delivery or read report (multipart/report): never a customer's words


_ID = re.compile(r"<([^<>\s]{1,900})>")


def message_ids(value: str | None) -> list[str]:
    """Message-IDs in a References / In-Reply-To header, in order, without the angle brackets."""
    if not value:
        return []
    found = _ID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip()]  # some clients forget the brackets
    return list(dict.fromkeys(found))


def normalise_id(value: str) -> str:
    """The stored form of a Message-ID: without brackets; hashed when too long for an index."""
    value = value.strip().strip("<>").strip()
    if len(value) > 190:
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return value


def _raw_headers(msg: MimeMessage) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name.lower())
    return values[0] if values else ""


def _addresses(raw: str, charset: str | None) -> list[tuple[str, str]]:
    if not raw:
        return []
    result = []
    for name, addr in email.utils.getaddresses([raw]):
        addr = addr.strip()
        if "@" in addr or addr:
            result.append((decode_header(name, charset).strip().strip('"'), addr))
    return result


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ADDRESS = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")


def _sender(raw: str, charset: str | None) -> tuple[str, str]:
    """The From header's (display name, address).

    A long display name is folded across lines, and Python's own generator (`formataddr` + the SMTP or
    default policy) re-folds a quoted name with a comma in it without its quotes, so the header reads as
    several addresses, the first of them without an "@". The address in angle brackets is still the sender.
    """
    raw = _FOLD.sub("", raw)
    found = _addresses(raw, charset)
    if found and "@" in found[0][1]:
        return found[0]
    bracketed = _ANGLE_ADDRESS.search(raw)
    if bracketed is not None:
        name = decode_header(raw[:bracketed.start()], charset).strip().strip('"').replace('\\"', '"')
        return name, bracketed.group(1)
    return found[0] if found else ("", "")


def _body_charset(msg: MimeMessage) -> str | None:
    for part in msg.walk():
        charset = part.get_content_charset()
        if charset:
            return charset
    return None


def _payload(part: MimeMessage) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?\s*(reply|response)|autoreply|auto:|out of (the )?office|автоответ|"
    r"автоматический ответ|вне офиса|нет на месте|в отпуске)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(ed|able)|delivery (status notification|failure|has failed)|returned mail|"
    r"mail delivery failed|failure notice|недоставленное сообщение|не удалось доставить|"
    r"сообщение не доставлено|ошибка доставки)", re.IGNORECASE)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_MESSAGE_ID_LINE = re.compile(r"^\s*message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _auto_reply_reason(headers: dict[str, list[str]], subject: str, from_address: str) -> str | None:
    auto = _first(headers, "auto-submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto[:40]}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated", "x-auto-reply"):
        if name in headers:
            return name
    precedence = (_first(headers, "precedence") or _first(headers, "x-precedence")).strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    suppress = _first(headers, "x-auto-response-suppress").lower()
    if any(word in suppress for word in ("all", "oof", "autoreply")):
        return "X-Auto-Response-Suppress"
    if _AUTO_SUBJECT.search(subject):
        return "subject"
    if _DAEMON.match(from_address):
        return "mailer-daemon"
    return None


def _dsn(msg: MimeMessage) -> Bounce | None:
    """A delivery status notification (RFC 3464) that reports a failure, with the ids of what failed."""
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":  # type: ignore[union-attr]
        return None
    failed = False
    status = diagnostic = recipient = ""
    original: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, MimeMessage):
                    continue
                action = str(block.get("Action", "")).strip().lower()
                if action == "failed":
                    failed = True
                    status = str(block.get("Status", "")).strip()[:20]
                    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())[:500]
                    recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
                    recipient = recipient.split(";", 1)[-1].strip()[:200]
        elif ctype in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], MimeMessage):
                original += message_ids(str(inner[0].get("Message-ID", "")))
            else:
                original += [m.strip("<>") for m in _MESSAGE_ID_LINE.findall(decode_bytes(_payload(part), None))]
    if not failed:
        return None
    return Bounce(original_ids=list(dict.fromkeys(original)), status=status, diagnostic=diagnostic,
                  recipient=recipient)


def _plain_bounce(from_address: str, subject: str, text: str, headers: dict[str, list[str]]) -> Bounce | None:
    """A bounce in plain words (older MTAs): from MAILER-DAEMON, the failed mail's headers quoted in the text."""
    if not (_DAEMON.match(from_address) or "x-failed-recipients" in headers) or not _BOUNCE_SUBJECT.search(subject):
        return None
    ids = [m.strip("<>") for m in _MESSAGE_ID_LINE.findall(text)]
    failed = _first(headers, "x-failed-recipients").strip()
    return Bounce(original_ids=list(dict.fromkeys(ids)), diagnostic=" ".join(text.split())[:500], recipient=failed)


def _leaves(part: MimeMessage) -> list[MimeMessage]:
    """Leaf parts in order, not descending into attached messages (a forwarded mail is not this mail's body)."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    result: list[MimeMessage] = []
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else []:
        if isinstance(sub, MimeMessage):
            result += _leaves(sub)
    return result


def _filename(part: MimeMessage, charset: str | None) -> str:
    raw = part.get_filename()
    if raw is None:
        raw = part.get_param("name")  # type: ignore[assignment]
        if isinstance(raw, tuple):
            raw = email.utils.collapse_rfc2231_value(raw)
    return decode_header(str(raw), charset) if raw else ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Bytes of one RFC 5322 message -> ParsedEmail. Never raises on malformed input; decodes what it can."""
    msg = email.message_from_bytes(raw)
    headers = _raw_headers(msg)
    charset = _body_charset(msg)
    from_name, from_address = _sender(_first(headers, "from"), charset)
    if not from_address:
        from_address = _first(headers, "return-path").strip().strip("<>")
    subject = decode_header(_first(headers, "subject"), charset)
    ids = message_ids(_first(headers, "message-id"))
    synthesised = not ids
    message_id = ids[0] if ids else f"sha256.{hashlib.sha256(raw).hexdigest()}@otklik.invalid"
    date = None
    try:
        date = email.utils.parsedate_to_datetime(_first(headers, "date")) if _first(headers, "date") else None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError, IndexError):
        date = None

    texts: list[str] = []
    html: str | None = None
    attachments: list[ParsedAttachment] = []
    skipped: list[str] = []
    for part in _leaves(msg):
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part, charset)
        content_id = (part.get("Content-ID") or "").strip().strip("<>") or None
        if ctype in ("message/delivery-status", "message/rfc822-headers", "text/rfc822-headers"):
            continue
        is_body_text = ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
        if is_body_text:
            body = decode_bytes(_payload(part), part.get_content_charset() or charset)
            if ctype == "text/plain":
                texts.append(body)
            elif html is None:
                html = body
            continue
        if ctype == "message/rfc822":
            if msg.get_content_type() == "multipart/report":
                continue
            skipped.append(f"{filename or 'message.eml'} (message/rfc822)")
            continue
        data = _payload(part)
        if not data:
            continue
        if not filename:
            ext = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "application/pdf": "pdf"}.get(ctype, "bin")
            filename = f"{(content_id or 'attachment').split('@')[0][:40]}.{ext}"
        attachments.append(ParsedAttachment(filename=filename, content_type=ctype, data=data,
                                            content_id=content_id, inline=disposition == "inline" or
                                            (content_id is not None and disposition != "attachment")))
    # A DSN's own message/rfc822 part is not the customer's attachment
    bounce = _dsn(msg)
    text = "\n\n".join(t.strip("\n") for t in texts if t.strip())
    text_from_html = not text and bool(html)
    if not text and html:
        from otklik.platform.html import html_to_text, sanitize_html

        text = html_to_text(sanitize_html(html))
    report = msg.get_content_type() == "multipart/report"
    if bounce is None and not report:
        bounce = _plain_bounce(from_address, subject, text, headers)
    elif bounce is not None and not bounce.original_ids:
        bounce.original_ids = [m.strip("<>") for m in _MESSAGE_ID_LINE.findall(text)]
    to = [a for _, a in _addresses(", ".join(headers.get("to", [])), charset)]
    cc = [a for _, a in _addresses(", ".join(headers.get("cc", [])), charset)]
    reply_to = next((a for _, a in _addresses(_first(headers, "reply-to"), charset)), "")
    bulk = bool(headers.get("list-id") or headers.get("list-unsubscribe"))
    return ParsedEmail(
        message_id=message_id, synthesised_id=synthesised, from_address=from_address, from_name=from_name,
        to=to, cc=cc, reply_to=reply_to, subject=subject, date=date,
        in_reply_to=message_ids(_first(headers, "in-reply-to")),
        references=message_ids(" ".join(headers.get("references", []))),
        text=text.replace("\r\n", "\n"), html=html, attachments=attachments, skipped_parts=skipped,
        auto_reply=_auto_reply_reason(headers, subject, from_address), bulk=bulk, bounce=bounce,
        text_from_html=text_from_html, report=report)


# -- quoted history and signatures ----------------------------------------------------------------------

_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|исходное сообщение|forwarded message|пересылаемое сообщение|"
    r"переадресованное сообщение|оригинальное сообщение)\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_RULE = re.compile(r"^\s*_{20,}\s*$")
_HEADER_FROM = re.compile(r"^\s*\*?(from|от|отправитель)\s*:\*?\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(sent|date|to|subject|отправлено|дата|кому|тема)\s*:", re.IGNORECASE)
_ON_WROTE = re.compile(r"^\s*(on|am|le)\s.{4,300}(wrote|schrieb|a écrit)\s*:\s*$", re.IGNORECASE)
_RU_WROTE = re.compile(r"^.{0,300}\s(написал|написала|написал\(а\)|пишет|писал|писал\(а\))\s*:\s*$", re.IGNORECASE)
# Yandex: «12.11.2026, 10:00, "Иван" <ivan@yandex.ru>:»; Mail.ru: «Среда, 11 ноября 2026, 10:00 +03:00 от Иван <…>:»
_YANDEX = re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4},?\s+\d{1,2}:\d{2}(:\d{2})?,?\s+.{0,200}:\s*$")
_MAILRU = re.compile(r"^\s*(понедельник|вторник|среда|четверг|пятница|суббота|воскресенье|"
                     r"monday|tuesday|wednesday|thursday|friday|saturday|sunday),?\s.{0,120}\s(от|from)\s.{1,200}:\s*$",
                     re.IGNORECASE)
# Gmail in Russian: «пт, 20 нояб. 2026 г. в 18:04, Магазин <support@shop.example>:»
_GMAIL_RU = re.compile(r"^.{0,40}\d{4}\s*г\.,?\s*в\s*\d{1,2}:\d{2},?\s.{1,200}:\s*$")
_SIG_DELIMITER = re.compile(r"^-- ?$")
_MOBILE_SIG = re.compile(
    r"^\s*(sent from my \w+|sent from (yandex|mail\.ru|outlook|gmail)|get outlook for|"
    r"отправлено (с|из) (моего |мобильной |мобильного )?(iphone|ipad|android|почты|яндекс|mail\.ru|samsung|устройства)|"
    r"отправлено с мобильного|с уважением,? отправлено|"
    r"получить outlook для|sent with (proton|spark)|отправлено из приложения)", re.IGNORECASE)
_CLOSING = re.compile(r"^\s*(с уважением|с наилучшими пожеланиями|best regards|kind regards|regards|"
                      r"best wishes|всего доброго|всего наилучшего)\s*[,.!]?\s*$", re.IGNORECASE)


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _SEPARATOR.match(line) or (_OUTLOOK_RULE.match(line) and any(
                _HEADER_FROM.match(n) for n in lines[i + 1:i + 3])):
            return i
        if _HEADER_FROM.match(line) and any(_HEADER_NEXT.match(n) for n in lines[i + 1:i + 4]):
            return i
        joined = stripped + (" " + lines[i + 1].strip() if i + 1 < len(lines) else "")
        for pattern in (_ON_WROTE, _RU_WROTE, _YANDEX, _MAILRU, _GMAIL_RU):
            if pattern.match(stripped):
                return i
            if i + 1 < len(lines) and not stripped.endswith(":") and pattern.match(joined):
                return i  # the attribution line wrapped in two
        if stripped.startswith(">"):
            rest = [n for n in lines[i:] if n.strip()]
            if all(n.lstrip().startswith(">") for n in rest):
                return i  # the rest of the mail is quoted (top-posted reply)
    return None


def trim_text(text: str) -> str:
    """The new part of a reply: without the quoted history and the signature. Never trims to nothing."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = _quote_start(lines)
    if cut is not None:
        lines = lines[:cut]
    for i, line in enumerate(lines):
        if _SIG_DELIMITER.match(line) and i > 0:
            lines = lines[:i]
            break
    # a mobile client's tagline or a closing formula near the end starts the signature
    tail_start = max(0, len(lines) - 8)
    for i in range(tail_start, len(lines)):
        if (_MOBILE_SIG.match(lines[i]) or _CLOSING.match(lines[i])) and any(n.strip() for n in lines[:i]):
            lines = lines[:i]
            break
    result = "\n".join(lines).strip()
    return result if result else text.strip()


_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "js-mailru-quote", "mailru-quote",
                  "protonmail_quote", "ms-outlook-mobile-reference-message", "zmail_extra")
_QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "stopspelling", "mail-editor-reference-message-container",
              "yiv_quoted", "reply-intro")
_BLOCKS = {"div", "p", "blockquote", "table", "tr", "td", "section", "article", "body"}


class _QuoteFinder(HTMLParser):
    """Finds where the quoted history of an HTML reply starts (a character offset in the source)."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self._line_starts = [0]
        for m in re.finditer("\n", source):
            self._line_starts.append(m.end())
        self.cut: int | None = None
        self._blocks: list[tuple[str, int]] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut is not None:
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        classes = values.get("class", "").lower()
        ident = values.get("id", "").lower()
        style = values.get("style", "").lower().replace(" ", "")
        offset = self._offset()
        if (any(c in classes for c in _QUOTE_CLASSES) or any(ident.startswith(i) for i in _QUOTE_IDS)
                or (tag == "blockquote" and values.get("type", "").lower() == "cite")
                or (tag == "div" and "border-top:solid" in style and "padding:3" in style)):
            self.cut = offset
            return
        if tag in _BLOCKS:
            self._blocks.append((tag, offset))

    def handle_endtag(self, tag: str) -> None:
        if self.cut is not None:
            return
        for i in range(len(self._blocks) - 1, -1, -1):
            if self._blocks[i][0] == tag:
                del self._blocks[i:]
                break

    def handle_data(self, data: str) -> None:
        if self.cut is not None or not data.strip():
            return
        line = " ".join(data.split())
        if _SEPARATOR.match(line) or _ON_WROTE.match(line) or _RU_WROTE.match(line) or _YANDEX.match(line) \
                or _MAILRU.match(line) or _GMAIL_RU.match(line):
            self.cut = self._blocks[-1][1] if self._blocks and self._blocks[-1][0] != "body" else self._offset()


def trim_html(html: str) -> str:
    """The HTML of a reply without its quoted history (unsanitised: sanitise after). Never trims to nothing."""
    finder = _QuoteFinder(html)
    try:
        finder.feed(html)
        finder.close()
    except Exception:
        return html
    if finder.cut is None:
        return html
    head = html[:finder.cut]
    from otklik.platform.html import html_to_text, sanitize_html

    if not html_to_text(sanitize_html(head)).strip():
        return html  # the customer wrote below the quote: keep everything
    return head


def strip_subject(subject: str) -> str:
    """«Re: Fwd: Ответ: Заказ [#12]» -> «Заказ»: the subject a conversation keeps."""
    previous = None
    subject = " ".join(subject.split())
    while previous != subject:
        previous = subject
        subject = re.sub(r"^\s*(re|fw|fwd|aw|wg|ha|на|ответ|отв|пересл|tr|sv|vs)\s*(\[\d+\]|\(\d+\))?\s*:\s*", "",
                         subject, flags=re.IGNORECASE)
        subject = re.sub(r"\s*\[#\d{1,12}\]\s*", " ", subject).strip()
    return subject


_TICKET_TAG = re.compile(r"\[#(\d{1,12})\]")


def subject_ticket_number(subject: str) -> int | None:
    found = _TICKET_TAG.findall(subject)
    return int(found[-1]) if found else None
