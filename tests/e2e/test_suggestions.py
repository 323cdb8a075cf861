"""Issue 19: the suggestions above the reply box follow the conversation's language and customer. They switched
to English articles while the agent typed Russian, came unsorted, and a one-click team reply was addressed to
another customer by name, with that customer's order number."""

from __future__ import annotations

import re

import httpx

from tests.assistant.test_live import seed_kb
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in


def _inbound(base: str, ws, identity: str, name: str, text: str) -> int:
    r = httpx.post(base + "/api/v1/inbound", headers=ws.agent, timeout=60,
                   json={"identity_kind": "email", "identity": identity, "text": text, "customer_name": name})
    assert r.status_code in (200, 201), r.text
    return int(r.json()["conversation_id"])


def _reply(base: str, ws, cid: int, text: str) -> None:
    r = httpx.post(f"{base}/api/v1/conversations/{cid}/messages", headers=ws.agent, timeout=60, json={"text": text})
    assert r.status_code == 201, r.text


def test_suggestions_follow_the_conversation_and_never_carry_another_customers_data(new_page, live_server):
    ws = make_workspace("e2esuggest")
    seed_kb(ws)  # Russian articles, some with English translations
    anna = _inbound(live_server, ws, "anna@example.com", "Анна Смирнова", "Заказ 4512 опаздывает, когда привезут?")
    _reply(live_server, ws, anna, "Анна, здравствуйте! Заказ 4512 передан курьеру, привезём завтра до 18:00.")
    other = _inbound(live_server, ws, "oleg@example.com", "Олег", "Заказ опаздывает, когда привезут?")
    _reply(live_server, ws, other, "Здравствуйте! Заказ передан курьеру, привезём завтра до 18:00.")
    boris = _inbound(live_server, ws, "boris@example.com", "Борис Котов", "Мой заказ опаздывает, когда привезут?")

    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{boris}")
    for typed in ("", "Когда привезут заказ? Доставка delivery courier"):
        if typed:
            page.fill("#reply-text", typed)
            page.locator("#reply-text").press("End")
            page.wait_for_timeout(1500)  # the composer asks again after a pause in typing
            page.wait_for_load_state("networkidle")
        page.locator("#assist-suggestions .assist-item").first.wait_for(state="attached", timeout=30_000)
        kb = page.locator("#assist-suggestions .assist-item[data-source=kb]")
        titles = [t.strip() for t in kb.locator("button").all_text_contents()]
        assert titles, "no article suggested"
        # the conversation is Russian: Russian articles only, even where an English translation exists
        assert all(re.search("[А-Яа-яЁё]", t) for t in titles), titles
        scores = [int(s.rstrip("%")) for s in kb.locator(".muted").all_text_contents()]
        assert scores == sorted(scores, reverse=True), scores
        texts = [b.get_attribute("data-text") or "" for b in
                 page.locator("#assist-suggestions .assist-item button").all()]
        # never another customer's name or order in a one-click reply
        assert not any("Анна" in t or "4512" in t for t in texts), texts
        team = [b.get_attribute("data-text") or "" for b in
                page.locator("#assist-suggestions .assist-item[data-source=team] button").all()]
        assert "Здравствуйте! Заказ передан курьеру, привезём завтра до 18:00." in team, team
