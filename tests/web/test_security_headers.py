"""Security headers on every page (issue 17 §5–§6): a CSP without 'unsafe-inline' whose nonce is the one the
page's inline blocks carry, no framing by another origin (the outside test framed the API-token page from
another port), HSTS behind HTTPS; and the templates hold nothing a nonce cannot allow (inline handlers,
style="" attributes, htmx's eval'd hx-on / js: values)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from otklik.web.ui.deps import TEMPLATES_DIR

INLINE_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']""", re.IGNORECASE)


def test_templates_hold_nothing_the_policy_would_block():
    problems = []
    for path in sorted(Path(TEMPLATES_DIR).rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(TEMPLATES_DIR)
        problems += [f"{name}: inline handler {m.group(0)[:60]!r}" for m in INLINE_HANDLER.finditer(text)]
        problems += [f"{name}: style attribute" for _ in re.finditer(r'\sstyle="', text)]
        problems += [f"{name}: hx-on (eval)" for _ in re.finditer(r"hx-on", text)]
        problems += [f"{name}: js: value (eval)" for _ in re.finditer(r"""hx-vals=['"]js:""", text)]
        for tag in re.finditer(r"<(script|style)\b([^>]*)>", text):
            attrs = tag.group(2)
            inline = tag.group(1) == "style" or "src=" not in attrs
            if inline and "application/json" not in attrs and "csp_nonce()" not in attrs:
                problems.append(f"{name}: inline <{tag.group(1)}> without the nonce")
    assert problems == []


def _policy(response) -> dict[str, str]:
    csp = response.headers["content-security-policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in csp.split("; ")}


def test_every_page_gets_the_headers(client, ws):
    pages = ["/login", "/api/docs", f"/help/{ws.slug}/", "/healthz", "/api/v1/openapi.json", "/no-such-page"]
    for url in pages:
        r = client.get(url)
        policy = _policy(r)
        assert "'unsafe-inline'" not in r.headers["content-security-policy"], url
        assert "'unsafe-eval'" not in r.headers["content-security-policy"], url
        assert policy["frame-ancestors"] == "'none'" and r.headers["x-frame-options"] == "DENY", url
        assert r.headers["x-content-type-options"] == "nosniff", url  # (pages with a stricter policy keep theirs)
        assert "strict-transport-security" not in r.headers, url  # plain HTTP
    r = client.get("/api/v1/auth/me", headers=ws.admin)  # the API answers carry them too
    assert _policy(r)["frame-ancestors"] == "'none'"


def test_the_nonce_is_fresh_and_on_the_pages_inline_blocks(client):
    first, second = client.get("/api/docs"), client.get("/api/docs")
    nonces = [re.search(r"'nonce-([^']+)'", _policy(r)["script-src"]).group(1) for r in (first, second)]
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 16
    assert f'<script nonce="{nonces[0]}">' in first.text


def test_the_widget_demo_is_frameable_by_this_site_only(client, ws):
    key = client.get("/api/v1/widget/settings", headers=ws.admin).json()["public_key"]
    r = client.get(f"/widget/demo?key={key}")
    assert r.status_code == 200
    assert _policy(r)["frame-ancestors"] == "'self'" and r.headers["x-frame-options"] == "SAMEORIGIN"
    nonce = re.search(r"'nonce-([^']+)'", _policy(r)["style-src"]).group(1)
    assert f'<style nonce="{nonce}">' in r.text and f'<script nonce="{nonce}" src=' in r.text


def test_hsts_over_https(app, ws):
    with TestClient(app, base_url="https://testserver") as secure:
        r = secure.get("/login")
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
