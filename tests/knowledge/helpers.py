"""What a browser's parser sees in a page: its elements and their attributes (for the XSS checks)."""

from __future__ import annotations

from html.parser import HTMLParser


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    found: list[tuple[str, dict[str, str | None]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(html)
    return found


def assert_inert(html: str) -> None:
    """No script element, no event handler, no javascript:/data: URL anywhere in the markup."""
    for tag, attrs in elements(html):
        assert tag not in {"script", "iframe", "object", "embed"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in {"href", "src", "action", "formaction"} and value:
                assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), (tag, value)
