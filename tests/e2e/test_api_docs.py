"""The interactive API docs at /api/docs (issue 17): the vendored Swagger UI reads the OpenAPI 3.1 schema FastAPI
writes and renders its operations in Chromium, under the page's CSP (nothing blocked), with nothing from a CDN.
Swagger UI 4.15 rendered only «Unable to render this definition» for 3.1."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def page(browser, live_server):
    """A page with the policy in force (no bypass_csp), recording what the policy blocked and every request."""
    ctx = browser.new_context(base_url=live_server, locale="ru-RU", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    page.blocked = []  # type: ignore[attr-defined]
    page.requested = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.blocked.append(m.text) if "Content Security Policy" in m.text  # type: ignore[attr-defined]
            or "Refused to" in m.text else None)
    page.on("pageerror", lambda e: page.blocked.append(f"page error: {e}"))  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requested.append(r.url))  # type: ignore[attr-defined]
    yield page
    ctx.close()


def test_the_api_docs_render_the_operations_of_the_31_schema(page, live_server):
    schema = httpx.get(live_server + "/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    response = page.goto("/api/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".swagger-ui .errors-wrapper").count() == 0
    assert "Unable to render this definition" not in page.content()
    assert page.locator(".info .title").first.inner_text().startswith("Otklik API")
    # Swagger UI 5 renders the operations near the viewport only (a virtualized list): scroll through them all
    seen: set[str] = set()
    for _ in range(400):
        seen.update(p.replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts())
        if "/api/v1/inbound" in seen and len(seen) > 100:
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(30)
    assert "/api/v1/inbound" in seen and len(seen) > 100, (len(seen), sorted(seen)[:20])
    assert len(seen) <= len(schema["paths"])

    # an operation opens with its parameters and «Try it out»
    inbound = page.locator(".opblock-post", has=page.locator(".opblock-summary-path[data-path='/api/v1/inbound']"))
    page.mouse.wheel(0, -10_000_000)  # back to the top, then down to it (it left the rendered window)
    for _ in range(400):
        if inbound.count():
            break
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(30)
    inbound.first.locator(".opblock-summary").click()
    page.wait_for_selector(".opblock.is-open .try-out__btn")
    assert page.locator(".opblock.is-open .opblock-section-request-body").count() == 1

    assert page.blocked == []  # type: ignore[attr-defined]
    assert all(url.startswith(live_server) for url in page.requested), page.requested  # type: ignore[attr-defined]
