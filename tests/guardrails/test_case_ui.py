"""The conversation side bar's «Сроки по закону»: the situation from the contact reason, the agent enters the
dates and sums, the obligations show with their articles, an overdue one in red with its penalty; 422 on
impossible dates; the API GET/PUT of the same case; isolation."""

from __future__ import annotations

import datetime as dt

from tests.conftest import inbound
from tests.web._ui import Browser


def test_side_bar_counts_the_refund_for_a_defect(app, client, ws, other_ws):
    got = inbound(client, ws, text="Сломался чайник, хочу вернуть деньги", identity="law@example.com")
    cid = got["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"category": "defective"}, headers=ws.agent)
    b = Browser(app, ws.agent_email)
    frag = b.get(f"/ui/conversations/{cid}/legal")
    assert frag.status_code == 200 and 'data-situation="defect"' in frag.text
    assert "дата требования клиента" in frag.text  # asked for by name
    demanded = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    r = b.post(f"/ui/conversations/{cid}/legal", {"demanded_on": demanded, "price": "10 000", "in_stock": "yes",
                                                  "quality_check": "no"})
    assert r.status_code == 200, r.text
    assert 'data-key="refund"' in r.text and "ЗоЗПП ст. 22" in r.text and "ЗоЗПП ст. 21 п. 1" in r.text
    assert 'class="legal-obligation overdue"' in r.text and "неустойка" in r.text
    case = client.get(f"/api/v1/conversations/{cid}/consumer-law", headers=ws.agent).json()
    refund = next(o for o in case["obligations"] if o["key"] == "refund")
    assert refund["overdue_days"] >= 15 and refund["penalty"] == f"{100 * refund['overdue_days']}.00"
    assert case["situation"] == "defect" and case["chosen"] is False and case["inputs"]["price"] == "10 000"
    bad = b.post(f"/ui/conversations/{cid}/legal", {"purchased_on": "2026-05-01", "demanded_on": "2026-04-01"})
    assert bad.status_code == 422 and "demanded_on" in bad.text
    put = client.put(f"/api/v1/conversations/{cid}/consumer-law",
                     json={"situation": "warranty_repair", "inputs": {"demanded_on": "2026-11-17", "price": "30000"}},
                     headers=ws.agent)
    assert put.status_code == 200 and put.json()["obligations"][0]["due_on"] == "2027-01-11"
    assert client.put(f"/api/v1/conversations/{cid}/consumer-law", json={"situation": "nope"},
                      headers=ws.agent).status_code == 422
    assert client.put(f"/api/v1/conversations/{cid}/consumer-law", json={"inputs": {"price": "много"}},
                      headers=ws.agent).status_code == 422
    assert client.get(f"/api/v1/conversations/{cid}/consumer-law", headers=other_ws.admin).status_code == 404
