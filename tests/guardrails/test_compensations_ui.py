"""The compensations block of the conversation side bar, the «Ждут согласования» queue and Settings →
«Полномочия»: forms with CSRF, escaped text, roles, 422s re-rendering the form, 404 across workspaces."""

from __future__ import annotations

from otklik.accounts.models import Role, User
from otklik.platform.db import session_scope
from tests.conftest import inbound
from tests.guardrails.test_compensations import user
from tests.web._ui import Browser


def test_agent_gives_and_asks_supervisor_decides_in_the_queue(app, client, ws, other_ws):
    cid = inbound(client, ws, identity="ui-buyer@example.com", text="Курьер опоздал")["conversation_id"]
    agent = Browser(app, ws.agent_email)
    panel = agent.get(f"/ui/conversations/{cid}/compensations")
    assert panel.status_code == 200 and "Дать компенсацию" in panel.text and "1\u00a0000 ₽ за обращение" in panel.text
    ok = agent.post(f"/ui/conversations/{cid}/compensations",
                    {"kind": "free_delivery", "amount": "300", "reason": "<script>alert(1)</script>"})
    assert ok.status_code == 200 and 'data-status="applied"' in ok.text
    assert "<script>alert(1)</script>" not in ok.text and "&lt;script&gt;" in ok.text
    bad = agent.post(f"/ui/conversations/{cid}/compensations", {"kind": "refund", "amount": "-1", "reason": "x"})
    assert bad.status_code == 422 and "amount" in bad.text and 'value="-1"' in bad.text
    no_csrf = agent.post(f"/ui/conversations/{cid}/compensations",
                         {"kind": "refund", "amount": "1", "reason": "x"}, csrf=False)
    assert no_csrf.status_code == 403
    asked = agent.post(f"/ui/conversations/{cid}/compensations", {"kind": "refund", "amount": "2500",
                                                                  "reason": "брак"})
    assert 'data-status="pending"' in asked.text and "Согласовать" not in asked.text  # not their own
    pending_id = int(asked.text.split('data-status="pending"')[0].rsplit('data-compensation-id="', 1)[1]
                     .split('"')[0])
    assert "Ничего не ждёт" in agent.get("/approvals").text
    assert agent.get("/ui/approvals/count").json() == {"count": 0}
    assert agent.get("/settings/authority").status_code == 403

    sup_id, _ = user(ws, Role.supervisor)
    with session_scope(write=False) as session:
        sup_email = session.get(User, sup_id).email
    sup = Browser(app, sup_email)
    assert sup.get("/ui/approvals/count").json() == {"count": 1}
    queue = sup.get("/approvals")
    assert f'id="approval-{pending_id}"' in queue.text and "брак" in queue.text and "Ждут согласования" in queue.text
    decided = sup.post(f"/ui/compensations/{pending_id}/decide",
                       {"decision": "approve", "comment": "ок", "back": "queue"}, htmx=False)
    assert decided.status_code == 303 and decided.headers["location"] == "/approvals"
    after = agent.get(f"/ui/conversations/{cid}/compensations").text
    assert f'id="compensation-{pending_id}"' in after and "согласована" in after and "«ок»" in after
    # another workspace: 404
    stranger = Browser(app, other_ws.admin_email)
    assert stranger.get(f"/ui/conversations/{cid}/compensations").status_code == 404
    assert stranger.post(f"/ui/compensations/{pending_id}/decide", {"decision": "reject"}).status_code == 404


def test_admin_sets_limits_and_the_webhook_in_settings(app, ws):
    admin = Browser(app, ws.admin_email)
    page = admin.get("/settings/authority")
    assert page.status_code == 200 and "Полномочия" in page.text and 'data-subject="role:agent"' in page.text
    saved = admin.post("/settings/authority/limits", {"subject": f"user:{ws.agent_id}", "kind": "refund",
                                                      "per_case": "2 000", "per_day": ""}, htmx=False)
    assert saved.status_code == 303
    page = admin.get("/settings/authority").text
    assert f'data-subject="user:{ws.agent_id}" data-kind="refund"' in page and "2000.00 ₽" in page
    bad = admin.post("/settings/authority/limits", {"subject": "role:agent", "kind": "refund", "per_case": "1.234"},
                     htmx=False)
    assert bad.status_code == 422 and "per_case" in bad.text
    bad = admin.post("/settings/authority/webhook", {"url": "http://shop.example/hook", "secret": "short"},
                     htmx=False)
    assert bad.status_code == 422 and "secret" in bad.text
    assert admin.post("/settings/authority/webhook", {"url": "http://shop.example/hook",
                                                      "secret": "a-long-enough-secret"}, htmx=False).status_code == 303
    assert 'value="http://shop.example/hook"' in admin.get("/settings/authority").text
    assert "settings-link-authority" in admin.get("/settings").text


def test_the_customer_panel_lists_what_the_customer_was_given(app, client, ws, other_ws):
    cid = inbound(client, ws, identity="panel-buyer@example.com", text="Опоздали")["conversation_id"]
    customer_id = client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()["customer"]["id"]
    agent = Browser(app, ws.agent_email)
    assert agent.get(f"/ui/customers/{customer_id}/compensations").text.strip() == ""
    assert 'id="cpanel-compensations"' in agent.get(f"/ui/customers/{customer_id}/panel?conversation_id={cid}").text
    agent.post(f"/ui/conversations/{cid}/compensations", {"kind": "gift", "amount": "1500.5", "reason": "извинение"})
    agent.post(f"/ui/conversations/{cid}/compensations", {"kind": "bonus_points", "amount": "200", "reason": "x"})
    block = agent.get(f"/ui/customers/{customer_id}/compensations").text
    assert "Компенсации" in block and 'data-status="pending"' in block and "Выдано: 0 ₽" in block
    assert Browser(app, other_ws.admin_email).get(f"/ui/customers/{customer_id}/compensations").status_code == 404
