"""The browser harness itself: the server answers and Chromium renders its pages."""

from tests.e2e.conftest import screenshot


def test_server_page_renders_in_chromium(page):
    page.goto("/healthz")
    assert '"status":"ok"' in page.content().replace(" ", "")
    assert screenshot(page, "00-health").stat().st_size > 0
