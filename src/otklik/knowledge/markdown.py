"""Article bodies are Markdown: rendered to HTML by markdown-it-py (raw HTML off) and then sanitised by nh3,
so a hostile body (a <script>, a javascript: link, an onerror attribute) never reaches a page."""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from otklik.platform.html import html_to_text, sanitize_html

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya",
})
_NON_SLUG = re.compile(r"[^a-z0-9]+")
SLUG_RE = r"^[a-z0-9][a-z0-9._-]{0,119}$"


@lru_cache(maxsize=2048)
def render(body: str) -> str:
    """Safe HTML of a Markdown body (cached: the help center renders the same bodies over and over)."""
    return sanitize_html(_MD.render(body))


def plain_text(body: str) -> str:
    """The body as plain text (for snippets and the assistant's prompt)."""
    return html_to_text(render(body))


def slugify(text: str, *, fallback: str = "article") -> str:
    """A URL-safe slug from a title in Russian or English: «Сроки доставки» -> "sroki-dostavki"."""
    slug = _NON_SLUG.sub("-", text.lower().translate(_TRANSLIT)).strip("-")[:80].strip("-")
    return slug or fallback
