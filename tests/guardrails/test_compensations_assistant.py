"""The assistant on a late order: free delivery within its own limit where the workspace allows it (a
`role:assistant` row for free_delivery), said in its answer and recorded like any compensation; once given, a
second late-order message gets no second one; a workspace that set nothing gets no offer."""

from __future__ import annotations

from otklik.knowledge import service as knowledge
from otklik.platform.db import session_scope
from tests.assistant.test_live import decisions, enable, messages
from tests.conftest import inbound


def seed_kb(ws) -> None:
    with session_scope() as session:
        knowledge.create_article(
            session, ws.actor(), title="Заказ задерживается", language="ru",
            body="Если заказ опаздывает, курьерская служба обычно доставляет его в течение 1–2 дней. Номер заказа "
                 "и новый срок доставки пришлём в SMS. Если доставка задерживается больше чем на 3 дня, напишите нам.",
            questions=["Заказ опаздывает, где он?", "Курьер не приехал, доставка задерживается",
                       "Что делать, если доставка задерживается?"])

LATE = "Здравствуйте! Заказ опаздывает уже на три дня, курьер так и не приехал. Что делать, если доставка задерживается?"


def test_the_assistant_gives_free_delivery_on_a_late_order_within_its_limit(client, ws):
    seed_kb(ws)
    enable(client, ws)
    assert client.put("/api/v1/compensation-limits", json={"subject": "role:assistant", "kind": "free_delivery",
                                                           "per_case": "300", "per_day": "5000"},
                      headers=ws.admin).status_code == 200
    got = inbound(client, ws, text=LATE, identity="late@example.com")
    cid = got["conversation_id"]
    (d,) = decisions(client, ws, cid)
    assert d["action"] == "answer", d
    reply = next(m for m in messages(client, ws, cid) if m["author_kind"] == "assistant" and not m["is_internal"])
    assert "доставку вашего следующего заказа мы сделаем бесплатной (до 300 ₽)" in reply["body_text"]
    given = client.get(f"/api/v1/conversations/{cid}/compensations", headers=ws.agent).json()["items"]
    assert [(c["kind"], c["amount"], c["status"], c["requested_by_kind"]) for c in given] == [
        ("free_delivery", "300.00", "applied", "assistant")]
    inbound(client, ws, text=LATE, identity="late@example.com")
    assert len(client.get(f"/api/v1/conversations/{cid}/compensations", headers=ws.agent).json()["items"]) == 1


def test_no_offer_where_the_workspace_allowed_none(client, ws):
    seed_kb(ws)
    enable(client, ws)
    cid = inbound(client, ws, text=LATE, identity="late2@example.com")["conversation_id"]
    assert client.get(f"/api/v1/conversations/{cid}/compensations", headers=ws.agent).json()["items"] == []
    assert not any("бесплатной" in m["body_text"] for m in messages(client, ws, cid))
