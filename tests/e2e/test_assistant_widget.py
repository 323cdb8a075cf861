"""The AI operator in the chat widget, in a real browser, on a workspace whose KB is plain help pages (the
clinic demo's: titles and bodies, no question variants). The visitor asks; the assistant decides; the widget
shows the answer live: it
says it is the AI assistant, gives the passage that answers with a link to the help center, and nothing is
echoed as Markdown. Screenshots: artifacts/screenshots/assistant-*.png."""

from __future__ import annotations

import httpx

from otklik.knowledge import transfer as knowledge_transfer
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import api, eventually, shop, shop_page, widget_conversation  # noqa: F401 - fixture


def test_the_assistant_answers_in_the_widget_from_plain_help_pages(new_page, live_server, shop):  # noqa: F811
    ws = make_workspace("clinic")
    with session_scope() as session:
        knowledge_transfer.import_rows(session, ws.actor(), knowledge_transfer.clinic_kb_rows())
    assert api(live_server, ws, "PATCH", "/assistant/settings", role="admin", json={"enabled": True}).status_code == 200
    key = api(live_server, ws, "GET", "/widget/settings", role="admin").json()["public_key"]
    page = new_page(locale="ru-RU")
    page.goto(shop_page(shop, live_server, key, "clinic.html", title="Клиника «Меридиан»"))
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    page.locator(".ow-menu [data-kind=chat]").click()
    page.locator(".ow-input").fill("справка для налогового вычета как получить")
    page.locator(".ow-input").press("Enter")
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict)
    decided = eventually(lambda: [d for d in api(live_server, ws, "GET", f"/conversations/{conv['id']}/assistant/decisions")
                                  .json() if d["action"] == "answer"], timeout=60)
    assert decided
    page.reload()  # the history as the visitor sees it when they come back
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    page.locator(".ow-menu [data-kind=chat]").click()
    answer = page.locator(".ow-agent:not(.ow-welcome) .ow-text").last
    answer.wait_for(timeout=30_000)
    text = answer.text_content() or ""
    assert text.startswith("Здравствуйте! Я ИИ-ассистент")
    assert "налогов" in text and "**" not in text and "…" not in text
    assert f"/help/{ws.slug}/a/" in text  # the full article in the help center, as a link to the server's page
    link = answer.locator("a").first
    assert link.get_attribute("href") == f"{live_server}/help/{ws.slug}/a/tax-deduction"
    assert httpx.get(link.get_attribute("href") or "", timeout=10).status_code == 200
    screenshot(page, "assistant-01-widget-answer-plain-kb")
