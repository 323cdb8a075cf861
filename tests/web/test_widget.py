"""The chat widget's public API, visitor socket, identity verification, callbacks, pages and settings."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

import pytest
from sqlalchemy import select

from otklik.conversations.models import Conversation
from otklik.customers.models import Identity
from otklik.customers.tasks import Task
from otklik.platform.db import session_scope
from otklik.web.widget import service
from otklik.web.widget.models import WidgetVisitor
from tests.conftest import PASSWORD

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def fresh_limits():
    """The per-process rate limits count per address; every test starts from zero (one test checks them)."""
    from otklik.web.widget import api

    for limiter in (api.sessions_per_ip, api.messages_per_visitor, api.pages_per_visitor, api.typing_per_visitor,
                    api.uploads_per_visitor, api.forms_per_ip):
        limiter._hits.clear()


def cid() -> str:
    return uuid.uuid4().hex


def widget_key(client, ws) -> str:
    r = client.get("/api/v1/widget/settings", headers=ws.admin)
    assert r.status_code == 200, r.text
    return r.json()["public_key"]


def visitor(client, ws, **extra) -> dict:
    r = client.post("/api/v1/widget/session", json={"key": widget_key(client, ws), "language": "ru", **extra})
    assert r.status_code == 200, r.text
    return r.json()


def vh(session: dict) -> dict[str, str]:
    return {"X-Otklik-Visitor": session["token"]}


def say(client, session: dict, text: str, client_id: str | None = None, **extra) -> dict:
    r = client.post("/api/v1/widget/messages", json={"client_id": client_id or cid(), "text": text, **extra},
                    headers=vh(session))
    assert r.status_code == 201, r.text
    return r.json()


def test_visitor_message_opens_a_widget_conversation_and_retries_do_not_duplicate(client, ws):
    v = visitor(client, ws)
    assert v["new"] and v["token"].startswith("wv_") and v["messages"] == []
    first_id = cid()
    sent = say(client, v, "Здравствуйте, где мой заказ?", first_id)
    again = say(client, v, "Здравствуйте, где мой заказ?", first_id)  # the same client id: a network retry
    assert again["duplicate"] and again["message"]["id"] == sent["message"]["id"]
    second = say(client, v, "Номер 123")
    assert second["conversation_id"] == sent["conversation_id"]
    conv = client.get(f"/api/v1/conversations/{sent['conversation_id']}", headers=ws.agent).json()
    assert conv["channel"] == "widget"
    msgs = client.get(f"/api/v1/conversations/{sent['conversation_id']}/messages", headers=ws.agent).json()["items"]
    assert [m["body_text"] for m in msgs] == ["Здравствуйте, где мой заказ?", "Номер 123"]
    with session_scope(write=False) as db:
        row = db.scalar(select(WidgetVisitor).where(WidgetVisitor.conversation_id == sent["conversation_id"]))
        assert row is not None and row.token_hash == hashlib.sha256(v["token"].encode()).hexdigest()
        assert v["token"] not in (row.token_hash, row.public_id)  # the credential itself is never stored
        kinds = {i.kind for i in db.scalars(select(Identity).where(Identity.customer_id == row.customer_id))}
        assert kinds == {"widget"}


def test_history_survives_a_reload_and_agent_replies_come_back_with_read_receipts(client, ws):
    v = visitor(client, ws)
    sent = say(client, v, "Вопрос про доставку")
    conv_id = sent["conversation_id"]
    r = client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": "Доставим завтра"}, headers=ws.agent)
    assert r.status_code == 201, r.text
    reply_id = r.json()["id"]
    client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": "секретная заметка", "is_internal": True},
                headers=ws.agent)
    again = visitor(client, ws, token=v["token"])  # a page reload: the same token from localStorage
    assert not again["new"] and again["token"] == v["token"]
    texts = [(m["from"], m["text"]) for m in again["messages"]]
    assert texts == [("visitor", "Вопрос про доставку"), ("agent", "Доставим завтра")]
    assert again["messages"][1]["author"] == "Agent"  # the agent's first name only
    polled = client.get(f"/api/v1/widget/messages?after={sent['message']['id']}", headers=vh(v)).json()["messages"]
    assert [m["id"] for m in polled] == [reply_id]
    r = client.post("/api/v1/widget/read", json={"up_to_id": reply_id, "status": "read"}, headers=vh(v))
    assert r.json() == {"updated": 1}
    msgs = client.get(f"/api/v1/conversations/{conv_id}/messages", headers=ws.agent).json()["items"]
    assert {m["id"]: m["delivery_status"] for m in msgs}[reply_id] == "read"
    # a receipt never moves backwards, and a foreign token sees nothing of this conversation
    assert client.post("/api/v1/widget/read", json={"up_to_id": reply_id, "status": "delivered"},
                       headers=vh(v)).json() == {"updated": 0}
    other = visitor(client, ws)
    assert client.get("/api/v1/widget/messages", headers=vh(other)).json()["messages"] == []


def test_visitor_socket_sends_acks_and_receives_replies_and_typing(client, ws):
    v = visitor(client, ws)
    with client.websocket_connect("/api/v1/widget/ws") as sock:
        sock.send_json({"type": "auth", "token": v["token"]})
        assert sock.receive_json()["type"] == "ready"
        sock.send_json({"type": "message", "client_id": "abcdef123456", "text": "<img src=x onerror=alert(1)>"})
        ack = sock.receive_json()
        while ack["type"] != "ack":
            ack = sock.receive_json()
        conv_id = ack["conversation_id"]
        assert ack["message"]["text"] == "<img src=x onerror=alert(1)>"
        sock.send_json({"type": "typing", "typing": True})
        r = client.post("/api/v1/widget/agent-typing", json={"conversation_id": conv_id}, headers=ws.agent)
        assert r.status_code == 204, r.text
        client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": "Смотрю"}, headers=ws.agent)
        seen = []
        for _ in range(10):
            frame = sock.receive_json()
            seen.append(frame["type"])
            if frame["type"] == "message" and frame["message"]["from"] == "agent":
                assert frame["message"]["text"] == "Смотрю"
                break
        assert "typing" in seen and seen[-1] == "message"
        sock.send_json({"type": "bogus"})
        assert sock.receive_json()["error"]["code"] == "invalid"
        sock.send_json({"type": "message", "client_id": "x", "text": "too short id"})
        assert sock.receive_json()["type"] == "error"


def test_socket_refuses_an_unknown_token(client):
    with client.websocket_connect("/api/v1/widget/ws") as sock:
        sock.send_json({"type": "auth", "token": "wv_nope"})
        assert sock.receive_json()["error"]["code"] == "visitor_unknown"


def test_long_poll_returns_a_reply(client, ws):
    v = visitor(client, ws)
    sent = say(client, v, "Есть кто?")
    client.post(f"/api/v1/conversations/{sent['conversation_id']}/messages", json={"text": "Да"}, headers=ws.agent)
    r = client.get(f"/api/v1/widget/poll?after={sent['message']['id']}&wait=1", headers=vh(v))
    assert [m["text"] for m in r.json()["messages"]] == ["Да"]
    assert client.get("/api/v1/widget/poll?wait=0.2", headers={"X-Otklik-Visitor": "wv_bad"}).status_code == 401


def sign(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_identity_verification_merges_with_the_same_email_on_another_channel(client, ws):
    existing = client.post("/api/v1/customers", json={"name": "Анна", "identities": [
        {"kind": "email", "external_id": "anna@example.com"}]}, headers=ws.admin).json()
    secret = client.post("/api/v1/widget/settings/identity-secret", headers=ws.admin).json()["identity_secret"]
    anonymous = visitor(client, ws)
    say(client, anonymous, "Я пока не вошла")
    v = visitor(client, ws, token=anonymous["token"], identity={
        "user_id": "shop-42", "email": "Anna@Example.com", "name": "Анна", "user_hash": sign(secret, "shop-42")})
    assert v["verified"]
    customer = client.get(f"/api/v1/customers/{existing['id']}", headers=ws.admin).json()
    idents = {(i["kind"], i["external_id"], i["verified"]) for i in customer["identities"]}
    assert ("external", "shop-42", True) in idents and ("email", "anna@example.com", True) in idents
    assert any(k == "widget" for k, _, _ in idents)  # the anonymous visitor's profile was merged in
    assert [m["text"] for m in v["messages"]] == ["Я пока не вошла"]
    # another browser of the same signed-in customer is recognised too
    other = visitor(client, ws, identity={"user_id": "shop-42", "user_hash": sign(secret, "shop-42")})
    assert [m["text"] for m in other["messages"]] == ["Я пока не вошла"]


def test_a_bad_signature_is_refused_and_nothing_is_attached(client, ws):
    secret = client.post("/api/v1/widget/settings/identity-secret", headers=ws.admin).json()["identity_secret"]
    key = widget_key(client, ws)
    for claim in ({"user_id": "7", "user_hash": sign("wrong", "7"), "email": "boss@example.com"},
                  {"user_id": "7", "user_hash": "ж" * 64},
                  {"user_id": "7", "user_hash": sign(secret, "8")}):
        r = client.post("/api/v1/widget/session", json={"key": key, "identity": claim})
        assert r.status_code == 403 and r.json()["error"]["code"] == "identity_rejected"
    with session_scope(write=False) as db:
        assert db.scalar(select(Identity).where(Identity.workspace_id == ws.id, Identity.kind == "external")) is None
        assert db.scalar(select(Identity).where(Identity.workspace_id == ws.id,
                                                Identity.external_id == "boss@example.com")) is None



def test_without_a_secret_every_claim_is_refused(client, other_ws):
    r = client.post("/api/v1/widget/session", json={"key": widget_key(client, other_ws), "identity": {
        "user_id": "1", "user_hash": sign("", "1")}})
    assert r.status_code == 403 and r.json()["error"]["code"] == "identity_rejected"


def test_callback_request_validates_the_phone_and_creates_a_phone_conversation_and_a_task(client, ws):
    v = visitor(client, ws)
    bad = client.post("/api/v1/widget/callback", json={"name": "Олег", "phone": "12", "client_id": cid()},
                      headers=vh(v))
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "phone"
    body = {"name": "Олег", "phone": "8 (999) 123-45-67", "preferred_time": "после 18:00", "client_id": cid()}
    r = client.post("/api/v1/widget/callback", json=body, headers=vh(v))
    assert r.status_code == 201, r.text
    again = client.post("/api/v1/widget/callback", json=body, headers=vh(v)).json()
    assert again["duplicate"] and again["task_id"] == r.json()["task_id"]
    with session_scope(write=False) as db:
        conv = db.get(Conversation, r.json()["conversation_id"])
        assert conv is not None and conv.channel == "phone"
        # a typed number is a claim of its own (customers.suggestions): never a stranger's verified phone
        ident = db.scalar(select(Identity).where(Identity.customer_id == conv.customer_id))
        assert ident is not None and ident.kind == "external" and not ident.verified
        assert ident.external_id == "claim:phone:+79991234567"
        task = db.get(Task, r.json()["task_id"])
        assert task is not None and task.conversation_id == conv.id and "+79991234567" in task.title
        assert len(list(db.scalars(select(Task).where(Task.conversation_id == conv.id)))) == 1


def test_offline_form_keeps_the_contact_unverified_and_never_merges(client, ws):
    owner = client.post("/api/v1/customers", json={"name": "Владелец", "identities": [
        {"kind": "email", "external_id": "owner@example.com"}]}, headers=ws.admin).json()
    v = visitor(client, ws)
    r = client.post("/api/v1/widget/offline", json={"text": "Перезвоните", "client_id": cid()}, headers=vh(v))
    assert r.status_code == 422
    r = client.post("/api/v1/widget/offline", json={"name": "Гость", "email": "owner@example.com",
                                                    "text": "Хочу вернуть товар", "client_id": cid()}, headers=vh(v))
    assert r.status_code == 201, r.text
    conv = client.get(f"/api/v1/conversations/{r.json()['conversation_id']}", headers=ws.agent).json()
    assert conv["customer"]["id"] != owner["id"]  # a typed address proves nothing
    assert "owner@example.com" in r.json()["message"]["text"]


def test_page_views_are_recorded_and_greetings_match_by_pattern(client, ws):
    config = client.get("/api/v1/widget/settings", headers=ws.admin).json()["config"]
    config["greetings"] = [{"url_pattern": "/catalog/*", "delay_seconds": 2,
                            "message": {"ru": "Помочь с выбором?", "en": "Need help choosing?"}}]
    r = client.put("/api/v1/widget/settings", json={"config": config}, headers=ws.admin)
    assert r.status_code == 200, r.text
    rule_id = r.json()["config"]["greetings"][0]["id"]
    v = visitor(client, ws)
    r = client.post("/api/v1/widget/pages", json={"url": "https://shop.example/catalog/kettles?x=1",
                                                  "title": "Чайники"}, headers=vh(v))
    assert r.json()["greeting"] == {"id": rule_id, "text": "Помочь с выбором?", "delay_seconds": 2}
    r = client.post("/api/v1/widget/pages", json={"url": "https://shop.example/about", "title": "О нас"},
                    headers=vh(v))
    assert r.json()["greeting"] is None
    for url in ("javascript:alert(1)", "ftp://x/y", "https://" + "a" * 2100):
        assert client.post("/api/v1/widget/pages", json={"url": url}, headers=vh(v)).status_code == 422
    sent = say(client, v, "Здравствуйте")
    customer_id = client.get(f"/api/v1/conversations/{sent['conversation_id']}", headers=ws.agent).json()["customer"]["id"]
    visits = client.get(f"/api/v1/widget/visits?customer_id={customer_id}", headers=ws.agent).json()
    assert [x["title"] for x in visits] == ["О нас", "Чайники"]
    with session_scope(write=False) as db:
        assert [x["url"] for x in service.recent_visits(db, ws.id, customer_id, limit=1)] == ["https://shop.example/about"]


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("/catalog/*", "/catalog/a/b", True), ("/catalog/*", "/catalogue", False), ("*", "/", True),
    ("*/delivery*", "/help/delivery?x", True), ("/a*b*c", "/axxbyyc", True), ("/a*b*c", "/axxbyy", False),
    ("/" + "*a" * 40 + "b", "/" + "a" * 3000, False),  # stays linear on a hostile pattern
])
def test_glob_match(pattern, text, expected):
    assert service.glob_match(pattern, text) is expected


def test_attachments_are_images_or_pdf_and_bound_to_their_uploader(client, ws):
    v, stranger = visitor(client, ws), visitor(client, ws)
    up = client.post("/api/v1/widget/attachments", files={"file": ("фото.png", PNG, "image/png")}, headers=vh(v))
    assert up.status_code == 201, up.text
    pdf = client.post("/api/v1/widget/attachments", files={"file": ("заказ.pdf", PDF, "application/pdf")},
                      headers=vh(v)).json()
    bad = client.post("/api/v1/widget/attachments", files={"file": ("x.html", b"<script>", "text/html")},
                      headers=vh(v))
    assert bad.status_code == 415
    fake = client.post("/api/v1/widget/attachments", files={"file": ("x.png", b"not a png", "image/png")},
                       headers=vh(v))
    assert fake.status_code == 415
    r = client.post("/api/v1/widget/messages", json={"client_id": cid(), "text": "", "attachments": [up.json()["handle"]]},
                    headers=vh(stranger))
    assert r.status_code == 422  # another visitor's upload
    sent = say(client, v, "Вот фото и счёт", attachments=[up.json()["handle"], pdf["handle"]])
    atts = sent["message"]["attachments"]
    assert [a["type"] for a in atts] == ["image/png", "application/pdf"]
    got = client.get(atts[0]["url"])
    assert got.status_code == 200 and got.content == PNG and got.headers["x-content-type-options"] == "nosniff"
    forged = re.sub(r"s=[^&]+", "s=AAAA", atts[0]["url"])
    assert client.get(forged).status_code == 404
    msgs = client.get(f"/api/v1/conversations/{sent['conversation_id']}/messages", headers=ws.agent).json()["items"]
    assert len(msgs[-1]["attachments"]) == 2


def test_allowed_origins_and_cors(client, ws):
    r = client.put("/api/v1/widget/settings", json={"allowed_origins": ["https://shop.example/"]}, headers=ws.admin)
    assert r.json()["allowed_origins"] == ["https://shop.example"]
    key = widget_key(client, ws)
    ok = client.post("/api/v1/widget/session", json={"key": key}, headers={"Origin": "https://shop.example"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-credentials" not in ok.headers
    evil = client.post("/api/v1/widget/session", json={"key": key}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"]["code"] == "origin_not_allowed"
    r = client.get("/api/v1/widget/messages", headers={**vh(ok.json()), "Origin": "https://evil.example"})
    assert r.status_code == 403
    pre = client.options("/api/v1/widget/messages", headers={"Origin": "https://shop.example",
                                                             "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and "x-otklik-visitor" in pre.headers["access-control-allow-headers"]
    bad = client.put("/api/v1/widget/settings", json={"allowed_origins": ["javascript:alert(1)"]}, headers=ws.admin)
    assert bad.status_code == 422


def test_settings_are_validated_and_admin_only(client, ws, other_ws):
    assert client.put("/api/v1/widget/settings", json={"enabled": False}, headers=ws.agent).status_code == 403
    assert client.post("/api/v1/widget/settings/identity-secret", headers=ws.agent).status_code == 403
    config = client.get("/api/v1/widget/settings", headers=ws.admin).json()["config"]
    for button in ({"kind": "telegram", "target": "javascript:alert(1)"}, {"kind": "vk", "target": "https://evil.example"},
                   {"kind": "email", "target": "not-an-email"}, {"kind": "bogus"}, {"kind": "whatsapp"}):
        r = client.put("/api/v1/widget/settings", json={"config": {**config, "buttons": [button]}}, headers=ws.admin)
        assert r.status_code == 422, (button, r.text)
    config["buttons"] = [{"kind": "chat"}, {"kind": "telegram", "target": "https://t.me/shop"},
                         {"kind": "email", "target": "Help@Shop.example"}, {"kind": "phone", "target": "8 999 123 45 67"}]
    config["color"] = "#aa0000"
    config["texts"] = {"en": {"title": "<b>Hi</b>", "welcome": "", "offline": ""}}
    assert client.put("/api/v1/widget/settings", json={"config": config}, headers=ws.admin).status_code == 200
    public = client.get(f"/api/v1/widget/config?key={widget_key(client, ws)}&lang=en-GB").json()
    assert public["language"] == "en" and public["color"] == "#aa0000" and public["texts"]["title"] == "<b>Hi</b>"
    assert [b["href"] for b in public["buttons"]] == ["", "https://t.me/shop", "mailto:help@shop.example",
                                                      "tel:+79991234567"]
    assert widget_key(client, ws) != widget_key(client, other_ws)
    # a visitor token of workspace A does not resume anything in workspace B
    v = visitor(client, ws)
    moved = visitor(client, other_ws, token=v["token"])
    assert moved["new"] and moved["token"] != v["token"]
    assert client.put("/api/v1/widget/settings", json={"enabled": False}, headers=ws.admin).status_code == 200
    assert client.get(f"/api/v1/widget/config?key={widget_key(client, ws)}").status_code == 404
    assert client.get("/api/v1/widget/messages", headers=vh(v)).status_code == 404


def test_hostile_input_gets_precise_4xx(client, ws):
    v = visitor(client, ws)
    cases = [
        ("POST", "/api/v1/widget/session", {"key": "wk_unknown"}, 404),
        ("POST", "/api/v1/widget/session", {"key": "x" * 41}, 422),
        ("POST", "/api/v1/widget/messages", {"client_id": cid(), "text": "x" * 5001}, 422),
        ("POST", "/api/v1/widget/messages", {"client_id": "../../etc", "text": "x"}, 422),
        ("POST", "/api/v1/widget/messages", {"client_id": cid(), "text": "  "}, 422),
        ("POST", "/api/v1/widget/messages", {"client_id": cid(), "text": "x", "extra": 1}, 422),
        ("POST", "/api/v1/widget/read", {"up_to_id": 2**70}, 422),
        ("POST", "/api/v1/widget/callback", {"name": "", "phone": "+79991234567", "client_id": cid()}, 422),
        ("GET", "/api/v1/widget/file?a=1&w=1&s=x", None, 404),
        ("GET", "/api/v1/widget/file?a=1&w=1&s=ж", None, 404),
        ("POST", "/api/v1/widget/messages", {"client_id": cid(), "text": "x", "attachments": ["1.ж"]}, 422),
        ("POST", "/api/v1/widget/messages", {"client_id": cid(), "text": "x", "attachments": ["٣.abc"]}, 422),
    ]
    for method, path, body, status in cases:
        r = client.request(method, path, json=body, headers=vh(v))
        assert r.status_code == status, (path, body, r.status_code, r.text)
    assert client.post("/api/v1/widget/messages", json={"client_id": cid(), "text": "x"}).status_code == 401
    r = client.post("/api/v1/widget/messages", content=b"{not json", headers={**vh(v), "Content-Type": "application/json"})
    assert r.status_code == 400


def test_settings_page_renders_with_snippet_and_escapes(client, ws):
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"email": ws.admin_email, "password": PASSWORD, "csrf_token": token},
                follow_redirects=False)
    r = client.get("/settings/widget")
    assert r.status_code == 200, r.text[-2000:]
    key = widget_key(client, ws)
    assert f'data-key="{key}"' in r.text.replace("&#34;", '"').replace("&quot;", '"')
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    form = {"csrf_token": csrf, "enabled": "on", "color": "#112233", "text_color": "#ffffff", "position": "left",
            "title_ru": "<script>alert(1)</script>", "welcome_ru": "Привет", "offline_ru": "", "title_en": "",
            "welcome_en": "", "offline_en": "", "button_chat": "on", "button_telegram": "on",
            "target_telegram": "https://t.me/shop", "quick_ru": "Где заказ?\nВозврат", "quick_en": "",
            "greetings": "/catalog/* | 5 | Помочь? | Help?", "hours_mode": "always", "timezone": "Europe/Moscow",
            "hours_start": "09:00", "hours_end": "18:00", "allowed_origins": ""}
    saved = client.post("/settings/widget", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text[-1500:]
    page = client.get("/settings/widget?saved=1").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    settings = client.get("/api/v1/widget/settings", headers=ws.admin).json()["config"]
    assert settings["position"] == "left" and settings["greetings"][0]["delay_seconds"] == 5
    bad = client.post("/settings/widget", data={**form, "target_telegram": "javascript:alert(1)"})
    assert bad.status_code == 422 and "widget-errors" in bad.text
    secret_page = client.post("/settings/widget/secret", data={"csrf_token": csrf})
    assert re.search(r'id="widget-secret">wis_', secret_page.text)
    demo = client.get(f"/widget/demo?key={key}")
    assert demo.status_code == 200 and "otklik-widget.js" in demo.text
    js = client.get("/widget/otklik-widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    client.cookies.clear()


def test_a_typed_address_never_joins_two_visitors_into_one_history(client, ws):
    secret = client.post("/api/v1/widget/settings/identity-secret", headers=ws.admin).json()["identity_secret"]
    planter = visitor(client, ws)
    r = client.post("/api/v1/widget/offline", json={"email": "victim@example.com", "text": "чужой адрес",
                                                    "client_id": cid()}, headers=vh(planter))
    assert r.status_code == 201, r.text
    victim = visitor(client, ws, identity={"user_id": "v-1", "email": "victim@example.com",
                                           "user_hash": sign(secret, "v-1")})
    assert victim["verified"] and victim["messages"] == []
    say(client, victim, "мой личный вопрос")
    seen_by_planter = client.get("/api/v1/widget/messages", headers=vh(planter)).json()["messages"]
    assert [m["text"] for m in seen_by_planter if "личный" in m["text"]] == []


def test_a_callback_never_lands_on_a_verified_customers_profile(client, ws):
    owner = client.post("/api/v1/customers", json={"name": "Владелец", "identities": [
        {"kind": "phone", "external_id": "+79990001122", "verified": True}]}, headers=ws.admin).json()
    v = visitor(client, ws)
    r = client.post("/api/v1/widget/callback", json={"name": "Кто-то", "phone": "+7 999 000-11-22",
                                                     "client_id": cid()}, headers=vh(v))
    assert r.status_code == 201, r.text
    conv = client.get(f"/api/v1/conversations/{r.json()['conversation_id']}", headers=ws.agent).json()
    assert conv["customer"]["id"] != owner["id"] and conv["channel"] == "phone"


def test_public_forms_and_messages_are_rate_limited(client, ws):
    v = visitor(client, ws)
    codes = [client.post("/api/v1/widget/callback", json={"name": "Спам", "phone": "+79991234567",
                                                          "client_id": cid()}, headers=vh(v)).status_code
             for _ in range(6)]
    assert codes == [201] * 5 + [429]
    codes = [client.post("/api/v1/widget/messages", json={"client_id": cid(), "text": f"спам {i}"},
                         headers=vh(v)).status_code for i in range(31)]
    assert codes[-1] == 429 and codes[:30] == [201] * 30
