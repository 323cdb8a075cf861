"""amoCRM against its stand-in: OAuth 2 (the redirect's signed state, the code exchanged once, refresh tokens
rotated and stored at once, a 401 refreshes), contacts by verified identity over paged results and 204, leads
with their stage names, a note once per solve, the form-encoded webhook (deleted contact, changed lead)."""

from __future__ import annotations

from otklik.crm import service
from otklik.crm.base import CrmAuthError
from otklik.crm.models import CrmConnection
from otklik.platform.db import session_scope
from tests.crm.conftest import amo_config, connect, solved_conversation


def _secrets(connection_id: int) -> dict[str, str]:
    with session_scope() as session:
        return service.decrypt_secrets(session.get(CrmConnection, connection_id).secret)


def test_oauth_redirect_exchanges_the_code_and_rotates_refresh_tokens(client, ws, amo):
    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret"})
    first = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin)
    assert first.status_code == 200 and first.json()["ok"] is False  # not authorised yet: said, not an error
    forged = client.get("/api/v1/integrations/crm/amocrm/oauth",
                        params={"code": "code-1", "state": f"{conn['id']}.forged"}, follow_redirects=False)
    assert forged.status_code == 404 and "code-1" in amo.codes
    with session_scope() as session:
        url = service.oauth_url(session.get(CrmConnection, conn["id"]))
    state = url.split("state=")[1].split("&")[0].replace("%2E", ".")
    back = client.get("/api/v1/integrations/crm/amocrm/oauth", params={"code": "code-1", "state": state},
                      follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].startswith("/settings/integrations")
    stored = _secrets(conn["id"])
    assert stored["access_token"] == "access-1" and stored["refresh_token"] == "refresh-1"
    assert not stored.get("authorization_code")
    shown = client.get(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin).json()
    assert shown["status"] == "ok" and "access" not in str(shown["secrets"]) and "refresh-1" not in str(shown)
    # the access token expires: the next call refreshes, the used refresh token is dead, the new one stored
    amo.expire_all()
    test = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin)
    assert test.status_code == 200 and "Мой магазин" in test.json()["message"]
    stored = _secrets(conn["id"])
    assert stored["refresh_token"] == "refresh-2" and "refresh-1" not in amo.refresh


def test_a_revoked_refresh_token_says_to_connect_again(client, ws, amo):
    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret",
                                                           "authorization_code": "code-1"})
    assert client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin).status_code == 200
    amo.refresh.clear()
    amo.expire_all()
    try:
        service.call(conn["id"], lambda c: c.test_connection())
    except CrmAuthError as exc:
        assert "authorization code" in exc.message
    else:
        raise AssertionError("expected an auth error")
    shown = client.get(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin).json()
    assert shown["status"] == "error" and "authorization code" in shown["last_error"]


def test_matches_over_pages_notes_once_and_shows_leads(client, ws, amo):
    amo.max_limit = 2
    for i in range(5):
        amo.add_contact(f"Однофамилец {i}", phone=f"+7916123456{i}")  # the CRM's search matches them all
    anna = amo.add_contact("Анна", phone="+7 916 123-45-67")
    lead = amo.add_lead(anna, "Кухня на заказ", 202, 120000)
    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret",
                                                           "authorization_code": "code-1"})
    conversation_id, customer_id = solved_conversation(client, ws)
    notes = list(amo.notes.values())
    assert len(notes) == 1 and notes[0]["entity_id"] == anna and notes[0]["note_type"] == "common"
    assert f"/conversations/{conversation_id}" in notes[0]["params"]["text"]
    assert service.write_conversation_note(conn["id"], conversation_id) == "already"
    assert service.refresh_customer_deals(conn["id"], customer_id) == 1
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["deals"][0]["title"] == "Кухня на заказ" and view["deals"][0]["status"] == "Переговоры"
    assert view["deals"][0]["url"].endswith(f"/leads/detail/{lead}")
    # the lead moves on in amoCRM; its webhook (a form post) refreshes the cache
    amo.leads[lead]["status_id"] = 142
    token = conn["webhook_path"].rsplit("/", 1)[1]
    hook = client.post(f"/api/v1/integrations/crm/webhook/{token}",
                       data={"leads[status][0][id]": str(lead), "leads[status][0][status_id]": "142",
                             "account[subdomain]": "127"})
    assert hook.status_code == 200, hook.text
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["deals"][0]["status"] == "Успешно реализовано"
    # a new lead of the contact: the webhook names only the lead; its contact is asked for
    amo.add_lead(anna, "Шкаф", 201, 30000)
    new_lead = max(amo.leads)
    client.post(f"/api/v1/integrations/crm/webhook/{token}", data={"leads[add][0][id]": str(new_lead)})
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert {d["title"] for d in view["deals"]} == {"Кухня на заказ", "Шкаф"}
    # the contact is deleted in amoCRM: the link and its cache go
    client.post(f"/api/v1/integrations/crm/webhook/{token}", data={"contacts[delete][0][id]": str(anna)})
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["contact_id"] is None and view["deals"] == []


def test_another_accounts_webhook_is_refused(client, ws, amo):
    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret"})
    token = conn["webhook_path"].rsplit("/", 1)[1]
    hook = client.post(f"/api/v1/integrations/crm/webhook/{token}",
                       data={"contacts[update][0][id]": "1", "account[subdomain]": "someone-else"})
    assert hook.status_code == 403


def test_creates_a_contact_with_phone_and_email_fields(client, ws, amo):
    from tests.crm.conftest import make_customer

    conn = connect(client, ws, "amocrm", amo_config(amo, create_contacts=True),
                   {"client_secret": "amo-secret", "authorization_code": "code-1"})
    customer = make_customer(ws, "Пётр", phone="+79035550101", email="petr@example.com")
    link = service.link_customer(conn["id"], customer)
    assert link is not None and link.matched_by == "created"
    made = amo.contacts[int(link.external_id)]
    codes = {f["field_code"]: f["values"][0]["value"] for f in made["custom_fields_values"]}
    assert codes == {"PHONE": "+79035550101", "EMAIL": "petr@example.com"}


def test_two_workers_refreshing_at_once_keep_the_connection(client, ws, amo):
    """Refresh tokens are single use: the worker that loses the race takes the winner's stored tokens."""
    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret",
                                                           "authorization_code": "code-1"})
    assert client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin).status_code == 200
    amo.expire_all()
    with session_scope() as session:
        snap = service.snapshot(session, session.get(CrmConnection, conn["id"]))
    slow, fast = service.open_connector(snap), service.open_connector(snap)  # both read refresh-1
    assert "Мой магазин" in fast.test_connection()  # rotates to refresh-2 and stores it
    assert "Мой магазин" in slow.test_connection()  # refresh-1 is dead: reloads, uses the stored access-2
    assert _secrets(conn["id"])["refresh_token"] == "refresh-2"
    slow.close()
    fast.close()


def test_amocrm_429_is_waited_out(client, ws, amo):
    import time

    conn = connect(client, ws, "amocrm", amo_config(amo), {"client_secret": "amo-secret",
                                                           "authorization_code": "code-1"})
    amo.inject.append((429, {"title": "Too Many Requests", "status": 429}, {"Retry-After": "1"}))
    started = time.monotonic()
    test = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin)
    assert test.status_code == 200 and time.monotonic() - started >= 1.0
