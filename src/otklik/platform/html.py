"""Customer-supplied HTML is sanitised once, on the way in; plain text is escaped on the way out."""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = {
    "a", "b", "strong", "i", "em", "u", "s", "p", "br", "ul", "ol", "li", "blockquote", "code", "pre",
    "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "td", "th", "span", "div", "hr", "img",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan"},
                      "th": {"colspan"}}
_BLOCK_END = re.compile(r"</(p|div|li|tr|h[1-4]|blockquote|pre)>|<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def sanitize_html(raw: str) -> str:
    return nh3.clean(raw, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto",
                                                                                         "tel", "cid"},
                     link_rel="noopener noreferrer nofollow")


def html_to_text(raw: str) -> str:
    with_breaks = _BLOCK_END.sub("\n", raw)
    stripped = html.unescape(nh3.clean(with_breaks, tags=set()))
    lines = [_SPACES.sub(" ", line).strip() for line in stripped.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)
