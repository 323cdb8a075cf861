"""Identity across channels: verified identities merge by themselves, everything weaker is only suggested.

The leak this guards against: a stranger types someone else's e-mail into a web form, and the message (and
the agent's answer in context) lands in that person's history."""

from __future__ import annotations

from otklik.customers.suggestions import link_verified_identity, suggestions_for
from otklik.platform.db import session_scope


def make_customer(client, ws, name, *identities, attributes=None):
    body = {"name": name, "identities": [{"kind": k, "external_id": v, "verified": ver} for k, v, ver in identities],
            "attributes": attributes or {}}
    r = client.post("/api/v1/customers", json=body, headers=ws.agent)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def suggestions(client, ws, customer_id):
    r = client.get(f"/api/v1/customers/{customer_id}/suggestions", headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()


def form(client, ws):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={"kind": "form", "config": {}})
    return "/forms/" + r.json()["webhook_path"].rsplit("/", 1)[-1]


def test_an_unverified_form_claim_never_lands_in_a_verified_customers_history(client, ws):
    olga = make_customer(client, ws, "Ольга Смирнова", ("email", "olga@example.ru", True))
    url = form(client, ws)
    r = client.post(url, json={"name": "Ольга", "email": "olga@example.ru", "message": "Смените адрес доставки"})
    assert r.status_code == 202
    olga_convs = client.get(f"/api/v1/conversations?customer_id={olga}", headers=ws.agent).json()["items"]
    assert olga_convs == []  # nothing attached to the verified profile
    conv = client.get("/api/v1/conversations?channel=form", headers=ws.agent).json()["items"][0]
    claimant = conv["customer"]["id"]
    assert claimant != olga
    claimant_ids = client.get(f"/api/v1/customers/{claimant}", headers=ws.agent).json()["identities"]
    assert [(i["kind"], i["external_id"], i["verified"]) for i in claimant_ids] == [
        ("external", "claim:email:olga@example.ru", False)]
    # the agent is shown the probable match from both sides, and accepting it is the ordinary merge
    found = suggestions(client, ws, olga)
    assert [s["other_id"] for s in found] == [claimant] and found[0]["score"] >= 0.8
    assert "olga@example.ru" in found[0]["reasons"][0]
    assert [s["other_id"] for s in suggestions(client, ws, claimant)] == [olga]
    merged = client.post(f"/api/v1/customers/{olga}/merge", json={"source_id": claimant}, headers=ws.agent)
    assert merged.status_code == 200
    assert len(client.get(f"/api/v1/conversations?customer_id={olga}", headers=ws.agent).json()["items"]) == 1


def test_the_same_claim_twice_lands_on_one_profile_and_never_joins_another(client, ws):
    unverified = make_customer(client, ws, "Анна", ("email", "anna@example.ru", False))
    url = form(client, ws)
    client.post(url, json={"email": "anna@example.ru", "message": "Первое"})
    client.post(url, json={"email": "Anna@Example.ru", "message": "Второе"})
    convs = client.get("/api/v1/conversations?channel=form", headers=ws.agent).json()["items"]
    assert len(convs) == 1 and convs[0]["message_count"] == 2
    claimant = convs[0]["customer"]["id"]
    assert claimant != unverified
    assert [s["other_id"] for s in suggestions(client, ws, unverified)] == [claimant]


def test_a_later_verified_identity_does_not_merge_with_a_claim(client, ws):
    url = form(client, ws)
    client.post(url, json={"phone": "+7 916 777-66-55", "message": "Перезвоните"})
    claimant = client.get("/api/v1/conversations?channel=form", headers=ws.agent).json()["items"][0]["customer"]["id"]
    whatsapp = make_customer(client, ws, "Вера", ("whatsapp", "+79167776655", True))
    with session_scope() as s:  # WhatsApp proves the number belongs to its user
        survivor = link_verified_identity(s, ws.id, whatsapp, kind="phone", value="+79167776655")
    assert survivor == whatsapp
    assert client.get(f"/api/v1/customers/{claimant}", headers=ws.agent).json()["merged_into_id"] is None
    found = suggestions(client, ws, whatsapp)
    assert [s["other_id"] for s in found] == [claimant] and "without verification" in found[0]["reasons"][0]


def test_probable_matches_are_scored_and_dismissable(client, ws):
    ivan = make_customer(client, ws, "Иван Петров", ("phone", "+79161234567", True), ("email", "ivan.petrov@mail.ru", False),
                         attributes={"city": "Казань"})
    typo = make_customer(client, ws, "петров иван", ("phone", "+79161234576", False))
    other_domain = make_customer(client, ws, "Ivan P.", ("email", "ivan.petrov@yandex.ru", False))
    same_city = make_customer(client, ws, "Иван  Петров", attributes={"city": "казань"})
    stranger = make_customer(client, ws, "Иван Петров", ("phone", "+79031112233", False))
    found = {s["other_id"]: s for s in suggestions(client, ws, ivan)}
    assert set(found) == {typo, other_domain, same_city}
    assert stranger not in found  # a common name alone is no evidence
    assert found[typo]["score"] > found[other_domain]["score"]
    assert "last digits" in found[typo]["reasons"][0]
    assert "Казань".lower() in found[same_city]["reasons"][0]
    r = client.post(f"/api/v1/customers/{ivan}/suggestions/{typo}/dismiss", json={"reason": "разные люди"},
                    headers=ws.agent)
    assert r.status_code == 204
    assert client.post(f"/api/v1/customers/{typo}/suggestions/{ivan}/dismiss", headers=ws.agent).status_code == 204
    assert typo not in {s["other_id"] for s in suggestions(client, ws, ivan)}
    assert ivan not in {s["other_id"] for s in suggestions(client, ws, typo)}
    # nothing was merged along the way
    for cid in (ivan, typo, other_domain, same_city):
        assert client.get(f"/api/v1/customers/{cid}", headers=ws.agent).json()["merged_into_id"] is None


def test_dismiss_checks_the_workspace(client, ws, other_ws):
    mine = make_customer(client, ws, "А")
    theirs = make_customer(client, other_ws, "Б")
    r = client.post(f"/api/v1/customers/{mine}/suggestions/{theirs}/dismiss", headers=ws.agent)
    assert r.status_code == 404
    assert client.get(f"/api/v1/customers/{theirs}/suggestions", headers=ws.agent).status_code == 404
    assert client.post(f"/api/v1/customers/{mine}/suggestions/{mine}/dismiss", headers=ws.agent).status_code == 422


def test_verified_identities_merge_by_themselves_unverified_do_not(client, ws):
    by_phone = make_customer(client, ws, "Ольга", ("phone", "+79161230000", True))
    by_whatsapp = make_customer(client, ws, "Ольга С.", ("whatsapp", "+79161230000", True))
    unverified = make_customer(client, ws, "Кто-то", ("phone", "+79161239999", False))
    claimer = make_customer(client, ws, "Ольга", ("whatsapp", "+79161239999", True))
    with session_scope() as s:
        survivor = link_verified_identity(s, ws.id, by_whatsapp, kind="phone", value="+7 916 123-00-00")
        kept = link_verified_identity(s, ws.id, claimer, kind="phone", value="+79161239999")
    assert survivor == by_phone
    assert client.get(f"/api/v1/customers/{by_whatsapp}", headers=ws.agent).json()["merged_into_id"] == by_phone
    assert kept == claimer
    assert client.get(f"/api/v1/customers/{unverified}", headers=ws.agent).json()["merged_into_id"] is None
    with session_scope(write=False) as s:
        found = suggestions_for(s, ws.id, unverified)
    assert [x.other_id for x in found] == [claimer] and "the same phone number" in found[0].reasons[0]
