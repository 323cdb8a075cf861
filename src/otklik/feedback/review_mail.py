"""Review sites' notification e-mails («Новый отзыв…») read into the one inbound shape, `reviews.ReviewIn`.

A business gets an e-mail from Yandex Maps (Яндекс Бизнес), 2GIS, Flamp or Otzovik for each new review; forwarding
them to `POST /api/v1/reviews/email` (the raw message) turns each into a review conversation. One small parser per
site: recognised by the sender's domain, then the rating, the author, the text and the link read from the
plain-text part (the HTML part with its tags removed when there is none). The review's id on the site comes from
the link, so a notification forwarded twice is one review. The formats are those of the samples in
tests/feedback/test_review_mail.py, written after the sites' notifications; a site that changes its wording
gets a 422 naming what was not found, never a wrong review.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime

from otklik.feedback.reviews import ReviewIn
from otklik.platform.errors import field_error

MAX_MAIL = 1_000_000
_TAG = re.compile(r"<[^>]+>")
_LINK = re.compile(r"https?://[^\s<>\"')]+")


@dataclass(frozen=True)
class Site:
    platform: str
    domains: tuple[str, ...]
    rating: re.Pattern[str]
    author: re.Pattern[str]
    text: re.Pattern[str]
    link_host: str
    review_id: re.Pattern[str]


SITES = (
    Site("yandex_maps", ("yandex.ru", "yandex.com", "yandex-team.ru", "maps.yandex.ru"),
         re.compile(r"Оценка:\s*(\d)\s*(?:из\s*5)?", re.I),
         re.compile(r"Пользователь\s+(.+?)\s+оставил", re.I),
         re.compile(r"Текст отзыва:\s*\n(.+?)\n\s*\n", re.S | re.I),
         "yandex.", re.compile(r"[?&]review(?:_id)?=([\w-]+)")),
    Site("2gis", ("2gis.ru", "2gis.com"),
         re.compile(r"(?:на|оценка:?)\s*(\d)\s*(?:★|звезд|из\s*5)", re.I),
         re.compile(r"^(.+?)\s+(?:оценил|оставил)", re.M | re.I),
         re.compile(r"Текст отзыва:\s*\n(.+?)\n\s*\n", re.S | re.I),
         "2gis.", re.compile(r"/reviews?/(\d+)")),
    Site("flamp", ("flamp.ru",),
         re.compile(r"Оценка:\s*(\d)", re.I),
         re.compile(r"Автор:\s*(.+)", re.I),
         re.compile(r"Отзыв:\s*\n(.+?)\n\s*\n", re.S | re.I),
         "flamp.ru", re.compile(r"otzyv-(\d+)")),
    Site("otzovik", ("otzovik.com",),
         re.compile(r"Рейтинг:\s*(\d)\s*/\s*5", re.I),
         re.compile(r"Автор:\s*(.+)", re.I),
         re.compile(r"Отзыв:\s*\n(.+?)\n\s*\n", re.S | re.I),
         "otzovik.com", re.compile(r"review_(\d+)")),
)


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        return str(part.get_content())
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return ""
    raw = re.sub(r"<br\s*/?>|</p>|</div>", "\n", str(part.get_content()), flags=re.I)
    raw = re.sub(r"<a\s[^>]*href=[\"']([^\"']+)[\"'][^>]*>", r" \1 ", raw, flags=re.I)  # the links stay
    return html.unescape(_TAG.sub("", raw))


def site_of(sender: str) -> Site | None:
    domain = parseaddr(sender)[1].rpartition("@")[2].lower()
    for site in SITES:
        if any(domain == d or domain.endswith("." + d) for d in site.domains):
            return site
    return None


def parse(raw: bytes) -> ReviewIn:
    """The review of one notification e-mail; 422 naming what is missing (`from`: not a review site's)."""
    if len(raw) > MAX_MAIL:
        raise field_error("message", f"at most {MAX_MAIL} bytes")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    site = site_of(str(message.get("From", "")))
    if site is None:
        raise field_error("from", "not a notification of Yandex Maps, 2GIS, Flamp or Otzovik")
    text = _body(message).replace("\r\n", "\n") + "\n\n"
    return _read(site, text, str(message.get("Date", "")))


def _first(pattern: re.Pattern[str], text: str) -> str:
    m = pattern.search(text)
    return m.group(1).strip() if m else ""


def _read(site: Site, text: str, date: str) -> ReviewIn:
    rating = _first(site.rating, text)
    body = " ".join(_first(site.text, text).split())
    link = next((u for u in _LINK.findall(text) if site.link_host in u and site.review_id.search(u)), "")
    if not link:
        raise field_error("message", f"{site.platform}: no link to the review found")
    if not body and not rating:
        raise field_error("message", f"{site.platform}: neither a rating nor a text found")
    review_id = site.review_id.search(link)
    try:
        posted = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        posted = None
    return ReviewIn(platform=site.platform, text=body, rating=int(rating) if rating and 1 <= int(rating) <= 5
                    else None, author=_first(site.author, text)[:200], link=link[:1000], posted_at=posted,
                    external_id=review_id.group(1) if review_id else "", source="email")


