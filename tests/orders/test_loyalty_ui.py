"""Loyalty in the agent's pages (no browser): Settings → Loyalty adds, edits and deletes tiers and saves the
webhook (422 on bad input, admins only); the customer panel and page show the tier; the loyalty block makes a
referral code and links a friend's one."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import inbound
from tests.web.a2_support import sign_in


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_settings_page_edits_tiers_and_the_webhook(app, ws):
    with TestClient(app) as ui:
        sign_in(ui, ws.admin_email)
        assert 'id="settings-link-loyalty"' in ui.get("/settings").text
        page = ui.get("/settings/loyalty")
        assert page.status_code == 200 and 'id="loyalty-no-tiers"' in page.text
        token = _token(page.text)
        for name, threshold in (("Бронза", "5"), ("Серебро", "10")):
            r = ui.post("/settings/loyalty/tiers", data={"csrf_token": token, "name": name, "metric": "purchases",
                                                         "threshold": threshold, "period_days": "", "rank": ""})
            assert r.status_code == 200 and 'id="loyalty-saved"' in r.text
        bad = ui.post("/settings/loyalty/tiers", data={"csrf_token": token, "name": "X", "threshold": "-1"})
        assert bad.status_code == 422 and 'id="loyalty-error"' in bad.text and "threshold" in bad.text
        tiers = {t["name"]: t for t in ui.get("/api/v1/loyalty/tiers").json()}
        assert [tiers["Бронза"]["rank"], tiers["Серебро"]["rank"]] == [1, 2]
        silver = tiers["Серебро"]["id"]
        r = ui.post(f"/settings/loyalty/tiers/{silver}", data={
            "csrf_token": token, "name": "Серебро", "metric": "spent", "threshold": "10000", "period_days": "365",
            "rank": "2"})
        assert r.status_code == 200
        assert ui.get(f"/api/v1/loyalty/tiers/{silver}").json() == {
            "id": silver, "name": "Серебро", "metric": "spent", "threshold": 10000, "period_days": 365, "rank": 2}
        assert ui.post(f"/settings/loyalty/tiers/{silver}", data={"csrf_token": token, "delete": "1"}).status_code == 200
        assert [t["name"] for t in ui.get("/api/v1/loyalty/tiers").json()] == ["Бронза"]
        assert ui.post("/settings/loyalty/tiers/999999", data={"csrf_token": token, "name": "x",
                                                               "threshold": "1"}).status_code == 404
        saved = ui.post("/settings/loyalty/webhook", data={"csrf_token": token, "webhook_url": "https://shop.example/r",
                                                           "secret": "x" * 20, "reward": "10 %"})
        assert saved.status_code == 200 and "x" * 20 not in saved.text
        assert ui.get("/api/v1/loyalty/settings").json() == {"webhook_url": "https://shop.example/r",
                                                             "secret_set": True, "reward": "10 %"}
        bad = ui.post("/settings/loyalty/webhook", data={"csrf_token": token, "webhook_url": "javascript:alert(1)"})
        assert bad.status_code == 422
    with TestClient(app) as agent:
        sign_in(agent, ws.agent_email)
        assert agent.get("/settings/loyalty").status_code == 403


def test_panel_and_customer_page_show_the_tier_and_the_referral_code(app, client, ws):
    client.post("/api/v1/loyalty/tiers", json={"name": "Золото <b>", "threshold": 1}, headers=ws.admin)
    client.put("/api/v1/orders/L1", json={"customer": {"kind": "phone", "value": "+79165554444"}, "status": "paid",
                                          "total": 990, "paid": True}, headers=ws.agent)
    got = inbound(client, ws, kind="phone", identity="+79165554444", text="Здравствуйте")
    friend = inbound(client, ws, kind="email", identity="friend@example.com", text="Здравствуйте")
    cid = got["customer_id"]
    with TestClient(app) as ui:
        sign_in(ui, ws.agent_email)
        page = ui.get(f"/customers/{cid}").text
        assert 'id="customer-loyalty-tier"' in page and "Золото &lt;b&gt;" in page
        panel = ui.get(f"/ui/customers/{cid}/panel", headers={"HX-Request": "true"})
        assert panel.status_code == 200 and 'id="cpanel-loyalty-tier"' in panel.text
        assert f'hx-get="/ui/customers/{cid}/loyalty"' in panel.text
        listed = ui.get("/customers").text
        assert "Золото &lt;b&gt;" in listed
        block = ui.get(f"/ui/customers/{cid}/loyalty", headers={"HX-Request": "true"})
        assert block.status_code == 200 and 'id="cpanel-referral-create"' in block.text
        token = _token(ui.get(f"/customers/{cid}").text)
        made = ui.post(f"/ui/customers/{cid}/referral-code", data={"csrf_token": token}, headers={"HX-Request": "true"})
        code = re.search(r'id="cpanel-referral-code">([A-Z0-9]+)<', made.text).group(1)
        wrong = ui.post(f"/ui/customers/{friend['customer_id']}/referrer", data={"csrf_token": token, "code": "NOPE1"})
        assert wrong.status_code == 422 and 'id="cpanel-loyalty-error"' in wrong.text
        linked = ui.post(f"/ui/customers/{friend['customer_id']}/referrer", data={"csrf_token": token, "code": code},
                         headers={"HX-Request": "true"})
        assert linked.status_code == 200 and 'id="cpanel-referred-by"' in linked.text
        assert ui.get("/ui/customers/999999999/loyalty", headers={"HX-Request": "true"}).status_code == 404


def test_sla_form_and_rule_editor_take_loyalty_tiers(app, client, ws):
    from tests.web._ui import Browser

    b = Browser(app, ws.admin_email)
    r = b.post("/settings/sla", {"name": "Золото и Серебро", "first": "15", "enabled": "on",
                                 "loyalty_tiers": "Золото, Серебро"}, htmx=False)
    assert r.status_code == 303, r.text
    (p,) = client.get("/api/v1/sla-policies", headers=ws.agent).json()
    assert p["conditions"]["loyalty_tiers"] == ["Золото", "Серебро"]
    page = b.get("/settings/sla").text
    assert 'value="Золото, Серебро"' in page
    rules = b.get("/settings/rules/new")
    assert rules.status_code == 200 and '<option value="loyalty_tier"' in rules.text
