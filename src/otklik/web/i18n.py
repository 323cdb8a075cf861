"""UI languages: Babel `.po` catalogs under web/locale, compiled in memory at first use (no build step).

Russian first, English second. Message ids are the English text; `ru` translates them, `en` may stay empty.
This module only translates and formats; it never decides which user sees which language (deps.py does).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import re
from functools import cache, lru_cache
from pathlib import Path

from babel.core import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}

# Contact reasons (the seeds' list, as the assistant and the demo use them) in English; the catalogs translate
# them. A workspace's own categories are shown as they are.
CATEGORY_LABELS = {
    "return_good_quality": "Return of a good-quality item", "damaged_in_delivery": "Damaged in delivery",
    "defective": "Defective item", "warranty_repair": "Warranty repair", "installation": "Installation",
    "missing_parts": "Missing parts", "how_to_use": "How to use", "late_delivery": "Late delivery",
    "order_status": "Order status", "cancel_change": "Cancel or change an order", "payment_refund": "Payment and refund",
    "delivery_info": "Delivery information", "loyalty_promo": "Loyalty and promo codes",
    "account_data": "Account and personal data", "business_documents": "Documents for companies",
    "product_question": "Product question", "complaint": "Complaint", "other": "Other",
}


def coded(language: str, prefix: str, value: str | None) -> str:
    """A code a person is about to read («assistant:handoff», a contact reason, an attribute key) in words: its
    catalog entry `prefix:value`, else the shipped contact reason's label, else the code with spaces (never a
    raw `snake_case` or an untranslated msgid)."""
    if not value:
        return "—"
    gettext = gettext_for(language).gettext
    key = f"{prefix}:{value}"
    text = gettext(key)
    if text and text != key:
        return text
    if value in CATEGORY_LABELS:
        return gettext(CATEGORY_LABELS[value])
    return value.replace("_", " ")


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (the .po is the source of truth, so nothing can go stale)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language not in LANGUAGES or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@cache
def russian_source_texts(language: str) -> dict[str, str]:
    """Texts written in Russian in the code (the channel plugins' titles and field hints, which the web layer
    may not import) and translated in this language's catalog: Russian msgid -> text. Empty for Russian."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "ru" or not po.exists():
        return {}
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    return {m.id: m.string for m in catalog
            if isinstance(m.id, str) and isinstance(m.string, str) and m.string and _CYRILLIC.search(m.id)}


_CYRILLIC = re.compile("[А-Яа-яЁё]")


def normalise(language: str | None) -> str | None:
    """'en-GB' -> 'en'; None for anything we do not have."""
    if not language:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """Pick from an Accept-Language header by quality; Russian when nothing matches."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = normalise(tag)
        if code and quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, code)
    return best[2] if best else DEFAULT_LANGUAGE


def gettext_for(language: str) -> gettext.NullTranslations:
    return translations(language if language in LANGUAGES else DEFAULT_LANGUAGE)


_UNITS = {"ru": ("с", "мин", "ч", "д"), "en": ("s", "min", "h", "d")}


def wait_text(seconds: float, language: str) -> str:
    """'5 мин', '2 ч 10 мин', '3 д' — how long a customer has waited, short enough for a list row.

    Hand-rolled rather than Babel's format_timedelta: it runs for every row of every inbox page.
    """
    s, (sec, minute, hour, day) = int(max(seconds, 0)), _UNITS.get(language, _UNITS["ru"])
    if s < 60:
        return f"{s} {sec}"
    if s < 3600:
        return f"{s // 60} {minute}"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} {hour} {m} {minute}" if m and h < 10 else f"{h} {hour}"
    return f"{s // 86400} {day}"


def datetime_text(value: dt.datetime, language: str, tz: str = "Europe/Moscow") -> str:
    return format_datetime(value, "short", tzinfo=_tz(tz), locale=_locale(language))


@lru_cache(maxsize=8)
def _locale(language: str) -> Locale:
    return Locale.parse(language)


@lru_cache(maxsize=64)
def _tz(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Moscow")
