"""Questions generated from an article's own text when the KB is indexed (issue 12 §3): a plain help page has a
title and a body and no question variants, while customers write questions. Each generated question is a
retrieval unit of the article it came from (`KbIndex`, unit kind ``generated``, when OTKLIK_GENERATED_QUESTIONS
is ``on`` or ``e5``; off by default until measured with the e5 encoder, BENCHMARKS.md section 11c), never a
question variant: it does not make a plain KB read as variant-rich to the answer model, and it is not stored
with the article.

Deterministic, offline, no LLM, in the article's language (Russian and English templates; an article in another
language gets none). Only the article's title and body are read, so no customer's message can leak into them.
Sources, each turned into a question with the section (heading or bold lead-in) or the title it stands under:

- a heading that is not a question → «<heading>?»;
- a price (₽, руб., $, €) → «Сколько стоит <what stands before the number>?»; «бесплатно» → «… бесплатно?»;
- a term (N минут / часов / дней / недель / месяцев / лет) → «Сколько дней <…>?»;
- a clock time → «Во сколько <…>?»; a percentage → «Сколько процентов <…>?»;
- «можно / нельзя X» → «Можно ли X?»; «Если X, …» → «Что делать, если X?»;
- English: «you can X» → «Can I X?»; «If X, …» → «What if X?»; prices and terms likewise.

Review them with ``bench/kb_generated_questions.py --dump`` (one JSON line per question with its article and
the sentence it came from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# at most this many questions an article (the index and the article classifier grow with every unit)
MAX_PER_ARTICLE = 24
_MAX_TOPIC_WORDS = 12

_MD = re.compile(r"[*_`#>]+")
_ITEM = re.compile(r"^\s*(?:[-*•—]|\d{1,2}[.)])\s+")
_FULL_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(.+?)|\*\*([^*]{3,120})\*\*\s*[:.]?|__([^_]{3,120})__\s*[:.]?)\s*$")
_BOLD_LEAD = re.compile(r"^\s*\*\*([^*]{3,80}?)[.:]?\*\*\s*[:.—–-]?\s*(\S.*)$")
_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[«\"(A-ZА-ЯЁ0-9])")

_PRICE = re.compile(r"\d[\d\s  ]*(?:[.,]\d+)?\s*(?:₽|руб\.?|рубл|\$|€|usd|rub)|[$€]\s?\d", re.IGNORECASE)
_FREE = re.compile(r"\bбесплатн\w*|\bfree\b(?!\s+of\s+charge\s+if)", re.IGNORECASE)
_TERM_RU = re.compile(r"\d[\d\s–-]*\s*(мин|час|сут|дн|день|дня|недел|месяц|мес\b|год|лет)", re.IGNORECASE)
_TERM_EN = re.compile(r"\d[\d\s–-]*\s*(minute|hour|day|week|month|year)", re.IGNORECASE)
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
_PERCENT = re.compile(r"\d\s?%")
_NUMBER = re.compile(r"\d")
_CAN_RU = re.compile(r"(?<![а-яё])(?:можно|нельзя)\s+(.+)", re.IGNORECASE)
_IF_RU = re.compile(r"^(?:а\s+|но\s+|и\s+)?если\s+(.+?)(?:,\s*(?:то\s+)?|\s+—\s+)(.+)$", re.IGNORECASE)
_CAN_EN = re.compile(r"\byou\s+can(?:not|'t)?\s+(.+)", re.IGNORECASE)
_IF_EN = re.compile(r"^if\s+(.+?),\s*(.+)$", re.IGNORECASE)

_RU_UNIT = {"мин": "минут", "час": "часов", "сут": "дней", "дн": "дней", "день": "дней", "дня": "дней",
            "недел": "недель", "месяц": "месяцев", "мес": "месяцев", "год": "лет", "лет": "лет"}
_EN_UNIT = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks", "month": "months",
            "year": "years"}
_QUESTION_START = re.compile(
    r"^(?:как|какой|какая|какие|каким|сколько|когда|где|куда|можно|что|чем|почему|зачем|кто|нужно|нужен|нужна|"
    r"есть\s+ли|how|what|when|where|can|do|does|is|are|which|who|why)\b", re.IGNORECASE)


# a template whose topic came out empty
_EMPTY = frozenset({"сколько стоит", "сколько минут", "сколько часов", "сколько дней", "сколько недель",
                    "сколько месяцев", "сколько лет", "во сколько", "сколько процентов", "how much is",
                    "how many minutes", "how many hours", "how many days", "how many weeks", "how many months",
                    "how many years", "what time"})


@dataclass(frozen=True)
class GeneratedQuestion:
    text: str
    source: str  # the heading or sentence it came from
    kind: str  # heading | price | free | term | clock | percent | can | if


def _clean(text: str) -> str:
    return " ".join(_MD.sub("", text).replace("|", " ").split())


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _words(text: str) -> list[str]:
    return re.findall(r"[\w-]+", text)


# words a clause cut before a number ends on («в течение», «от», «не более чем», «from»…), and its openers
_TAIL = frozenset(["от", "до", "за", "по", "в", "во", "на", "с", "со", "около", "всего", "более", "менее", "чем", "больше", "меньше", "не", "течение", "через", "при", "и", "или", "а", "если", "вы", "это", "уже", "стоит", "стоимость", "составляет", "сумму", "сумма", "сроком", "срок", "это", "—", "–", "-", "from", "up", "to", "for", "in", "within", "at", "about", "is", "are", "cost", "costs", "over", "than", "more", "less", "the", "a", "an", "and", "or", "of", "by", "if", "you", "it"])
_HEAD = frozenset(["и", "а", "но", "например", "также", "при", "этом", "то", "так", "если", "или", "and", "but", "also", "so", "then"])


def _trim(text: str) -> str:
    """A clause cut to `_MAX_TOPIC_WORDS` words, without numbers, the punctuation it ended on and the
    function words left hanging at either end."""
    words = [w for w in text.split() if not any(c.isdigit() for c in w) and w.lower().strip(".,") not in
             {"₽", "руб", "руб.", "rub", "$", "€", "%"}]
    words = words[:_MAX_TOPIC_WORDS]
    while words and words[-1].lower().strip(" ,;:.—–-«»()\"'") in _TAIL:
        words.pop()
    while words and words[0].lower().strip(" ,;:.—–-«»()\"'") in _HEAD:
        words.pop(0)
    return " ".join(words).strip(" ,;:.—–-«»()\"'")


def _before(sentence: str, match: re.Match[str]) -> str:
    """What a fact is about: the sentence's words before the number, from the last clause break on."""
    parts = re.split(r"[;:(]|\s[—–-]\s|,\s(?=(?:а|но|и|при|если|от|до|за|с|со|по)\s)", sentence[: match.start()])
    # the last clause that has a word of its own («Курьер, товары до 30 кг: 390 ₽» -> «Курьер, товары до 30 кг»)
    head = next((p for p in reversed(parts) if _trim(p)), "")
    head = re.sub(r"\s(?:от|до|за|по|в|на|с|со|около|всего|не\s+более|не\s+менее|более|менее|чем|from|up\s+to|"
                  r"for|in|within|at|about|is|are|costs?)\s*$", "", head.strip(), flags=re.IGNORECASE)
    return _trim(head)


def _topic(sentence: str, match: re.Match[str], context: str, lower: bool = True) -> str:
    head = _before(sentence, match)
    if len([w for w in _words(head) if len(w) > 2]) < 2:
        head = f"{context} {head}".strip() if context else head
    return _trim(_lower_first(head) if lower else head)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _blocks(body: str) -> list[tuple[str, str]]:
    """(section, sentence or list item or table row) in reading order; section = the heading or bold lead-in
    the text stands under ("" before the first)."""
    out: list[tuple[str, str]] = []
    section = ""
    header: list[str] | None = None
    text: list[str] = []  # the lines of running text, joined before they are cut into sentences

    def flush() -> None:
        for s in _sentences(_clean(" ".join(text))):
            out.append((section, s))
        text.clear()

    for para in re.split(r"\n\s*\n", body):
        lead = ""
        for line in para.split("\n"):
            if not line.strip():
                continue
            m = _FULL_HEADING.match(line)
            if m or _ROW.match(line) or _ITEM.match(line):
                flush()
            if m:
                section = _clean(m.group(1) or m.group(2) or m.group(3)).rstrip(".:")
                out.append((section, ""))
                continue
            row = _ROW.match(line)
            if row:
                cells = [_clean(c) for c in row.group(1).split("|")]
                if all(set(c) <= set("-: ") for c in cells):
                    continue
                if header is None:
                    header = cells
                    continue
                out.append((section, " — ".join(c for c in cells if c and c != "—")))
                continue
            header = None
            if _ITEM.match(line):
                out.append((lead or section, _clean(_ITEM.sub("", line, count=1))))
                continue
            b = _BOLD_LEAD.match(line)
            if b:
                flush()
                section = _clean(b.group(1)).rstrip(".:")
                out.append((section, ""))
                line = b.group(2)
            text.append(line)
            if _clean(line).endswith(":"):
                lead = _clean(line).rstrip(":")
        flush()
    return out


def _ru(section: str, sentence: str, context: str) -> list[GeneratedQuestion]:
    out: list[GeneratedQuestion] = []
    if not sentence:  # a heading
        if section and not section.endswith("?") and not _QUESTION_START.match(section):
            out.append(GeneratedQuestion(f"{section}?", section, "heading"))
        return out
    m = _PRICE.search(sentence)
    if m:
        out.append(GeneratedQuestion(f"Сколько стоит {_topic(sentence, m, context)}?", sentence, "price"))
    m = _TERM_RU.search(sentence)
    if m:
        unit = _RU_UNIT.get(m.group(1).lower(), "дней")
        out.append(GeneratedQuestion(f"Сколько {unit} {_topic(sentence, m, context)}?", sentence, "term"))
    if not out:
        m = _CLOCK.search(sentence)
        if m:
            out.append(GeneratedQuestion(f"Во сколько {_topic(sentence, m, context)}?", sentence, "clock"))
    m = _PERCENT.search(sentence)
    if m:
        out.append(GeneratedQuestion(f"Сколько процентов {_topic(sentence, m, context)}?", sentence, "percent"))
    m = _FREE.search(sentence)
    if m and not _PRICE.search(sentence[: m.start()]):
        what = _trim(_lower_first(_before(sentence, m) or context))
        if what:
            out.append(GeneratedQuestion(f"{what[0].upper()}{what[1:]} бесплатно?", sentence, "free"))
    m = _CAN_RU.search(sentence)
    if m:
        rest = _trim(re.split(r"[.;:]|,\s(?:но|а|если|только|когда)\s", m.group(1))[0])
        if len(_words(rest)) >= 2:
            head = _trim(sentence[: m.start()])
            if head and len(_words(head)) <= 6:  # «Оплатить заказ можно картой» -> «Можно ли оплатить заказ картой»
                rest = f"{_lower_first(head)} {rest}"
            out.append(GeneratedQuestion(f"Можно ли {rest}?", sentence, "can"))
    m = _IF_RU.match(sentence)
    if m:
        cond = _trim(m.group(1))
        if len(_words(cond)) >= 2:
            out.append(GeneratedQuestion(f"Что делать, если {cond}?", sentence, "if"))
    return out


def _en(section: str, sentence: str, context: str) -> list[GeneratedQuestion]:
    out: list[GeneratedQuestion] = []
    if not sentence:
        if section and not section.endswith("?") and not _QUESTION_START.match(section):
            out.append(GeneratedQuestion(f"{section}?", section, "heading"))
        return out
    m = _PRICE.search(sentence)
    if m:
        out.append(GeneratedQuestion(f"How much is {_topic(sentence, m, context, lower=False)}?", sentence, "price"))
    m = _TERM_EN.search(sentence)
    if m:
        unit = _EN_UNIT.get(m.group(1).lower(), "days")
        out.append(GeneratedQuestion(f"How many {unit} {_topic(sentence, m, context, lower=False)}?", sentence, "term"))
    if not out:
        m = _CLOCK.search(sentence)
        if m:
            out.append(GeneratedQuestion(f"What time {_topic(sentence, m, context, lower=False)}?", sentence, "clock"))
    m = _FREE.search(sentence)
    if m and not _PRICE.search(sentence[: m.start()]):
        what = _trim(_before(sentence, m) or context)
        if what:
            out.append(GeneratedQuestion(f"Is {what} free?", sentence, "free"))
    m = _CAN_EN.search(sentence)
    if m:
        rest = _trim(re.split(r"[.;:]|,\s(?:but|if|only|when)\s", m.group(1))[0])
        if len(_words(rest)) >= 2:
            out.append(GeneratedQuestion(f"Can I {rest}?", sentence, "can"))
    m = _IF_EN.match(sentence)
    if m:
        cond = _trim(m.group(1))
        if len(_words(cond)) >= 2:
            out.append(GeneratedQuestion(f"What if {cond}?", sentence, "if"))
    return out


def generate_questions(title: str, body: str, language: str = "ru",
                       limit: int = MAX_PER_ARTICLE) -> list[GeneratedQuestion]:
    """The questions an article's own text answers, in its language, in reading order, without repeats; none
    for a language without templates."""
    lang = (language or "ru").split("-")[0].lower()
    make = {"ru": _ru, "uk": None, "en": _en}.get(lang)
    if make is None:
        return []
    context = _lower_first(_clean(title).rstrip("?.!"))
    out: list[GeneratedQuestion] = []
    seen: set[str] = set()
    for section, sentence in _blocks(body):
        for q in make(section, sentence, _lower_first(section) if section else context):
            text = " ".join(q.text.split())
            key = text.lower()
            if len(_words(text)) < 3 or key in seen or key.rstrip("? ") in _EMPTY:
                continue
            seen.add(key)
            out.append(GeneratedQuestion(text, q.source, q.kind))
            if len(out) >= limit:
                return out
    return out
