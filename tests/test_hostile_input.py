"""Hostile bodies at every public inbound path get a precise 4xx in the error shape, never a 500.

An outside security test found 500s (some unauthenticated, each logging ~5 KB of traceback) for deeply nested
JSON (RecursionError) and for a lone surrogate such as "\\ud800" in a string (UnicodeEncodeError when it is
encoded, stored or compared). Every path that takes a JSON body from outside is listed here, with a real
configured account (so the body gets as far as the channel's own checks) and with an unknown token, and gets:
deep nesting, a lone surrogate in each string value and in keys (as a JSON escape and as raw UTF-8 bytes),
invalid UTF-8, UTF-16, JSON that is not an object, an empty body, NaN, a number with thousands of digits and a
body over the size limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from otklik.platform.config import get_settings
from tests.channels.conftest import BOT_TOKEN, MAX_TOKEN
from tests.channels.helpers import create_account
from tests.conftest import PASSWORD, make_workspace

FIXTURES = Path(__file__).parent / "channels" / "fixtures"
TG_SECRET, MAX_SECRET, VK_SECRET, WA_SECRET, PHONE_SECRET = "tg-hostile-0123456789", "max-hostile-0123456789", \
    "vk-hostile-secret", "wa-app-secret", "pbx-hostile-secret"
VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-hostile00000"
IG_SECRET = "ig-hostile-app-secret"
DEEP = 50_000
SURROGATE_ESCAPE = "\ud800"          # json.dumps writes it as the escape \ud800
SURROGATE_BYTES = b"\xed\xa0\x80"     # the same code point encoded as UTF-8 bytes: not valid UTF-8
STRICT = "strict"                     # the body is read before anything else refuses the request: exact 400/413


def vendor(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def hub_signature(secret: str) -> Callable[[bytes], dict[str, str]]:
    return lambda body: {"x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def pbx_signature(secret: str) -> Callable[[bytes], dict[str, str]]:
    return lambda body: {"x-otklik-signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def viber_signature(token: str) -> Callable[[bytes], dict[str, str]]:
    return lambda body: {"x-viber-content-signature": hmac.new(token.encode(), body, hashlib.sha256).hexdigest()}


def fixed(headers: dict[str, str]) -> Callable[[bytes], dict[str, str]]:
    return lambda _body: dict(headers)


@dataclass
class Target:
    name: str
    url: str
    base: dict[str, Any]  # a body this path accepts
    headers: Callable[[bytes], dict[str, str]] = field(default=lambda _body: {})
    reads_body_first: bool = True  # False: an unknown token is refused (404) before the body is parsed
    fresh: Callable[[dict[str, Any], int], None] = field(default=lambda _payload, _n: None)  # no de-duplication


def _set(path: tuple, value: Any) -> Callable[[dict[str, Any], int], None]:
    def fresh(payload: dict[str, Any], n: int) -> None:
        node = payload
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(n)
    return fresh


@pytest.fixture(scope="module")
def targets(client) -> list[Target]:
    ws = make_workspace("hostile")
    tg = create_account(client, ws, "telegram", config={"api_base_url": "http://127.0.0.1:9"},
                        secrets={"bot_token": BOT_TOKEN, "webhook_secret": TG_SECRET})
    mx = create_account(client, ws, "max", config={"api_base_url": "http://127.0.0.1:9"},
                        secrets={"bot_token": MAX_TOKEN, "webhook_secret": MAX_SECRET})
    vk = create_account(client, ws, "vk", config={"group_id": 218000001, "confirmation_code": "c",
                                                  "api_base": "http://127.0.0.1:9/method"},
                        secrets={"access_token": "t", "secret_key": VK_SECRET})
    wa = create_account(client, ws, "whatsapp", config={"phone_number_id": "106540352242922",
                                                        "api_base": "http://127.0.0.1:9"},
                        secrets={"access_token": "t", "app_secret": WA_SECRET, "verify_token": "v"})
    phone = create_account(client, ws, "phone", config={}, secrets={"signing_secret": PHONE_SECRET})
    instagram = create_account(client, ws, "instagram", config={"account_id": "17841405822304914",
                                                                "api_base": "http://127.0.0.1:9"},
                               secrets={"access_token": "t", "app_secret": IG_SECRET, "verify_token": "v"})
    viber = create_account(client, ws, "viber", config={"api_base_url": "http://127.0.0.1:9"},
                           secrets={"auth_token": VIBER_TOKEN})
    form = create_account(client, ws, "form", config={"per_ip_per_hour": 10_000, "per_form_per_hour": 10_000},
                          secrets={})
    key = client.get("/api/v1/widget/settings", headers=ws.admin).json()["public_key"]
    session = client.post("/api/v1/widget/session", json={"key": key, "language": "ru"})
    assert session.status_code == 200, session.text
    visitor = {"X-Otklik-Visitor": session.json()["token"]}

    vk_base = {**vendor("vk/message_new"), "secret": VK_SECRET}
    form_base = {"name": "Ольга", "email": "olga@example.ru", "message": "Вопрос о заказе"}
    unknown = "no-such-token-0123456789"
    out = [
        Target("telegram", tg["webhook_path"], vendor("telegram/update_text"),
               fixed({"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}), fresh=_set(("update_id",), lambda n: 900_000 + n)),
        Target("max", mx["webhook_path"], vendor("max/message_created_text"),
               fixed({"X-Max-Bot-Api-Secret": MAX_SECRET}), fresh=_set(("timestamp",), lambda n: 1_763_950_000_000 + n)),
        Target("vk", vk["webhook_path"], vk_base, fresh=_set(("event_id",), lambda n: f"hostile-{n}")),
        Target("whatsapp", wa["webhook_path"], vendor("whatsapp/text"), hub_signature(WA_SECRET)),
        Target("phone", phone["webhook_path"], vendor("phone/call_ended"), pbx_signature(PHONE_SECRET),
               fresh=_set(("call_id",), lambda n: f"pbx-hostile-{n}")),
        Target("viber", viber["webhook_path"], vendor("viber/message_text"), viber_signature(VIBER_TOKEN),
               fresh=_set(("message_token",), lambda n: 6_000_000_000_000_000_000 + n)),
        Target("instagram", instagram["webhook_path"], vendor("instagram/message_text"), hub_signature(IG_SECRET)),
        Target("phone events", phone["webhook_path"].replace("/channels/phone/webhook/", "/phone/events/"),
               vendor("phone/call_ended"), pbx_signature(PHONE_SECRET),
               fresh=_set(("call_id",), lambda n: f"pbx-events-{n}")),
        Target("form", form["webhook_path"], form_base),
        Target("form at /forms", "/forms/" + form["webhook_path"].rsplit("/", 1)[1], form_base),
        # unknown addresses: VK has to read the body to check it (group_id, secret); the others refuse first
        Target("vk unknown", f"/api/v1/channels/vk/webhook/{unknown}", vk_base),
        Target("telegram unknown", f"/api/v1/channels/telegram/webhook/{unknown}", vendor("telegram/update_text"),
               fixed({"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}), reads_body_first=False),
        Target("max unknown", f"/api/v1/channels/max/webhook/{unknown}", vendor("max/message_created_text"),
               reads_body_first=False),
        Target("whatsapp unknown", f"/api/v1/channels/whatsapp/webhook/{unknown}", vendor("whatsapp/text"),
               hub_signature(WA_SECRET), reads_body_first=False),
        Target("viber unknown", f"/api/v1/channels/viber/webhook/{unknown}", vendor("viber/message_text"),
               viber_signature(VIBER_TOKEN), reads_body_first=False),
        Target("instagram unknown", f"/api/v1/channels/instagram/webhook/{unknown}", vendor("instagram/message_text"),
               hub_signature(IG_SECRET), reads_body_first=False),
        Target("phone unknown", f"/api/v1/channels/phone/webhook/{unknown}", vendor("phone/call_ended"),
               pbx_signature(PHONE_SECRET), reads_body_first=False),
        Target("form unknown", f"/forms/{unknown}", form_base, reads_body_first=False),
        # the chat widget's visitor API (FastAPI models), with and without a visitor token
        Target("widget session", "/api/v1/widget/session", {"key": key, "language": "ru"}),
        Target("widget messages", "/api/v1/widget/messages", {"client_id": "c" * 16, "text": "Здравствуйте"},
               fixed(visitor), fresh=_set(("client_id",), lambda _n: uuid.uuid4().hex)),
        Target("widget messages, no visitor", "/api/v1/widget/messages", {"client_id": "c" * 16, "text": "x"}),
        Target("widget read", "/api/v1/widget/read", {"up_to_id": 1, "status": "read"}, fixed(visitor)),
        Target("widget typing", "/api/v1/widget/typing", {"typing": True}, fixed(visitor)),
        Target("widget pages", "/api/v1/widget/pages", {"url": "https://shop.example/cart", "title": "Корзина"},
               fixed(visitor)),
        Target("widget callback", "/api/v1/widget/callback",
               {"name": "Ольга", "phone": "+79161234567", "preferred_time": "вечером", "client_id": "d" * 16},
               fixed(visitor), fresh=_set(("client_id",), lambda _n: uuid.uuid4().hex)),
        Target("widget offline", "/api/v1/widget/offline",
               {"name": "Ольга", "email": "olga@example.ru", "text": "Вопрос", "client_id": "e" * 16},
               fixed(visitor), fresh=_set(("client_id",), lambda _n: uuid.uuid4().hex)),
        # the API channel (a token, but the body is read before the token is checked) and the public auth forms
        Target("api inbound", "/api/v1/inbound",
               {"identity_kind": "email", "identity": "ivan@example.com", "text": "Где заказ?"}, fixed(ws.agent),
               fresh=_set(("message_id",), lambda n: f"hostile-{n}")),
        Target("api inbound, no token", "/api/v1/inbound",
               {"identity_kind": "email", "identity": "ivan@example.com", "text": "Где заказ?"}),
        Target("api inbound batch", "/api/v1/inbound/batch",
               {"messages": [{"identity_kind": "email", "identity": "ivan@example.com", "text": "Где заказ?"}]},
               fixed(ws.agent)),
        Target("login", "/api/v1/auth/login", {"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug}),
        Target("password reset", "/api/v1/auth/password-reset", {"email": ws.agent_email}),
        Target("password reset confirm", "/api/v1/auth/password-reset/confirm", {"token": "x" * 20, "password": "p"}),
    ]
    return out


TARGET_NAMES = ["telegram", "max", "vk", "whatsapp", "phone", "phone events", "form", "form at /forms",
                "vk unknown", "telegram unknown", "max unknown", "whatsapp unknown", "phone unknown", "form unknown",
                "widget session", "widget messages", "widget messages, no visitor", "widget read", "widget typing",
                "widget pages", "widget callback", "widget offline", "api inbound", "api inbound, no token",
                "api inbound batch", "login", "password reset", "password reset confirm", "viber", "viber unknown",
                "instagram", "instagram unknown"]


def string_leaves(data: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from string_leaves(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data[:3]):
            yield from string_leaves(value, (*path, i))
    elif isinstance(data, str):
        yield path


def replaced(data: Any, path: tuple, value: Any) -> Any:
    data = json.loads(json.dumps(data))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def nested(depth: int) -> Any:
    value: Any = "дно"
    for _ in range(depth):
        value = {"x": [value]}
    return value


def raw_surrogate(payload: Any) -> bytes:
    """The payload as UTF-8 with each escaped lone surrogate written as its (invalid) UTF-8 bytes instead."""
    return json.dumps(payload).encode().replace(b"\\ud800", SURROGATE_BYTES)


def hostile_bodies(target: Target, n: Iterator[int]) -> Iterator[tuple[str, bytes, str]]:
    """(what, body, expectation): STRICT cases must be exactly the malformed-JSON 400 (413 when oversize)
    wherever the body is read first; every case must be a 4xx in the error shape everywhere."""

    def base() -> dict[str, Any]:
        payload = json.loads(json.dumps(target.base))
        target.fresh(payload, next(n))
        return payload

    first_leaf = next(string_leaves(target.base), None) or (next(iter(target.base)),)
    yield "nested arrays", b"[" * DEEP + b"]" * DEEP, STRICT
    yield "nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, STRICT
    yield "nested 200 levels inside a valid body", json.dumps({**base(), "extra": nested(100)}).encode(), STRICT
    yield "nested 200 levels as a field's value", json.dumps(replaced(base(), first_leaf, nested(100))).encode(), STRICT
    for path in string_leaves(target.base):
        yield f"lone surrogate escape at {path}", json.dumps(replaced(base(), path, SURROGATE_ESCAPE)).encode(), STRICT
        yield f"lone surrogate bytes at {path}", raw_surrogate(replaced(base(), path, "x" + SURROGATE_ESCAPE)), STRICT
    yield "lone surrogate in a key", json.dumps({**base(), SURROGATE_ESCAPE: "x"}).encode(), STRICT
    yield "lone surrogate bytes in a key", raw_surrogate({**base(), SURROGATE_ESCAPE + "k": "x"}), STRICT
    first_object = next((k for k, v in target.base.items() if isinstance(v, dict)), None)
    if first_object is not None:
        payload = base()
        payload[first_object] = {**payload[first_object], "ok" + SURROGATE_ESCAPE: 1}
        yield "lone surrogate in a nested key", json.dumps(payload).encode(), STRICT
    yield "low surrogate first", json.dumps(replaced(base(), first_leaf, "\udc00\ud800")).encode(), STRICT
    yield "invalid UTF-8", json.dumps(base()).encode()[:-1] + b', "z": "\xff\xfe\xc3"}', STRICT
    yield "UTF-16", json.dumps(base()).encode("utf-16"), STRICT
    yield "NaN", json.dumps({**base(), "n": float("nan")}).encode(), STRICT
    yield "a number with 5000 digits", json.dumps(base()).encode()[:-1] + b', "n": ' + b"9" * 5000 + b"}", STRICT
    yield "truncated", json.dumps(base()).encode()[:-3], STRICT
    yield "oversize", json.dumps({**base(), "pad": "я" * get_settings().max_request_bytes}).encode(), STRICT
    for what, body in [("array", b"[1, 2]"), ("array of the object", json.dumps([base()]).encode()),
                       ("number", b"42"), ("string", b'"text"'), ("null", b"null"), ("true", b"true"),
                       ("empty", b""), ("whitespace", b" \r\n "), ("a lone surrogate string", b'"\\ud800"')]:
        yield what, body, "4xx"


def reset_limits() -> None:
    """The per-process rate limits would answer 429 before the body is looked at; every request starts at zero."""
    from otklik.accounts import password_reset_api, signin
    from otklik.channels.webforms import plugin as forms
    from otklik.web.widget import api as widget

    for limiter in (widget.sessions_per_ip, widget.messages_per_visitor, widget.pages_per_visitor,
                    widget.typing_per_visitor, widget.uploads_per_visitor, widget.forms_per_ip,
                    password_reset_api._per_client, password_reset_api._per_address, *forms._limiters.values()):
        limiter._hits.clear()
    signin.per_account.clear()
    signin.per_address.clear()


@pytest.fixture(scope="module")
def loose(app, client) -> TestClient:
    """A client that reports a server error as a 500 answer instead of raising it (the lifespan runs in `client`)."""
    return TestClient(app, raise_server_exceptions=False)


def check(r, what: str, expectation: str, strict: bool) -> str | None:
    """None when the answer is right, else what was wrong."""
    if not 400 <= r.status_code < 500:
        return f"{what}: {r.status_code} {r.text[:150]}"
    try:
        error = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{what}: {r.status_code} not in the error shape: {r.text[:150]}"
    if not (isinstance(error, dict) and set(error) >= {"code", "message", "fields"} and error["message"]
            and isinstance(error["fields"], list)):
        return f"{what}: {r.status_code} not in the error shape: {r.text[:150]}"
    if strict and expectation == STRICT:
        wanted = (413, "too_large") if what == "oversize" else (400, "malformed_json")
        if (r.status_code, error["code"]) != wanted:
            return f"{what}: {r.status_code} {error['code']} (wanted {wanted}): {error['message'][:120]}"
    return None


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_hostile_bodies_get_a_precise_4xx(loose, targets, name):
    target = next(t for t in targets if t.name == name)
    counter = iter(range(10**9))
    failures = []
    for what, body, expectation in hostile_bodies(target, counter):
        reset_limits()
        headers = {"content-type": "application/json", **target.headers(body)}
        r = loose.post(target.url, content=body, headers=headers)
        problem = check(r, what, expectation, strict=target.reads_body_first)
        if problem:
            failures.append(problem)
    assert failures == [], f"{target.name} {target.url}:\n" + "\n".join(failures)


def test_every_inbound_route_is_listed(targets):
    """A new webhook or widget endpoint must join the list above (the agents' and admins' widget endpoints and
    the multipart upload are not JSON from strangers)."""
    import re

    from otklik.channels.base import plugins
    from otklik.channels.webforms.plugin import public_router
    from otklik.web.widget.api import router as widget_router

    assert sorted(t.name for t in targets) == sorted(TARGET_NAMES)
    routes = [f"/api/v1{r.path}" for p in plugins().values() if p.router is not None for r in p.router.routes
              if "{token}" in r.path and "POST" in r.methods]
    routes += [r.path for r in public_router.routes if "POST" in r.methods]
    routes += [f"/api/v1{r.path}" for r in widget_router.routes if getattr(r, "methods", None) and "POST" in r.methods
               and r.path not in ("/widget/attachments", "/widget/agent-typing", "/widget/settings/identity-secret")]
    assert len(routes) >= 14
    missing = [path for path in routes
               if not any(re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", path), t.url) for t in targets)]
    assert missing == []


def test_the_base_bodies_are_accepted(loose, targets):
    """The hostile cases are mutations of bodies that work: otherwise a 4xx would prove nothing."""
    wrong, counter = [], iter(range(10**8, 10**9))
    for target in targets:
        if "unknown" in target.name or "no " in target.name or target.name.startswith(("login", "password")):
            continue
        reset_limits()
        payload = json.loads(json.dumps(target.base))
        target.fresh(payload, next(counter))
        body = json.dumps(payload).encode()
        r = loose.post(target.url, content=body, headers={"content-type": "application/json", **target.headers(body)})
        if r.status_code >= 300:
            wrong.append((target.name, r.status_code, r.text[:200]))
    assert wrong == []


def test_form_fields_in_urlencoded_and_multipart_bodies(loose, targets):
    url = next(t.url for t in targets if t.name == "form at /forms")
    failures = []
    for body, ctype in [(b"name=%ED%A0%80&email=a%40example.ru&message=%ED%A0%80", "application/x-www-form-urlencoded"),
                        (b"name=\xed\xa0\x80&email=a%40example.ru&message=x", "application/x-www-form-urlencoded"),
                        (b"--b\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n\xed\xa0\x80\r\n--b--\r\n",
                         "multipart/form-data; boundary=b")]:
        reset_limits()
        r = loose.post(url, content=body, headers={"content-type": ctype})
        if r.status_code >= 500:
            failures.append((body, r.status_code, r.text[:200]))
    assert failures == []


# -- the sockets: the widget's (public) and the agents' (the first frame is anonymous) -------------------------

def answer_of(sock, types: tuple[str, ...], seconds: float = 10) -> dict:
    """The next frame of one of `types`; fails (instead of hanging the run) when the server stopped answering."""
    got: list[Any] = []

    def read() -> None:
        try:
            frame = sock.receive_json()
            while frame.get("type") not in types:
                frame = sock.receive_json()
            got.append(frame)
        except BaseException as exc:
            got.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    if not got:
        pytest.fail(f"no {types} frame within {seconds} s: the socket stopped answering")
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0]


def test_widget_socket_refuses_hostile_frames_and_stays_usable(client, targets):
    visitor = next(t for t in targets if t.name == "widget messages").headers(b"")["X-Otklik-Visitor"]
    with client.websocket_connect("/api/v1/widget/ws") as sock:
        sock.send_text("[" * DEEP + "]" * DEEP)
        with pytest.raises(WebSocketDisconnect) as closed:
            sock.receive_json()
        assert closed.value.code == 4400
    with client.websocket_connect("/api/v1/widget/ws") as sock:
        sock.send_text('{"type": "auth", "token": "\\ud800"}')
        with pytest.raises(WebSocketDisconnect) as closed:
            sock.receive_json()
        assert closed.value.code == 4400
    with client.websocket_connect("/api/v1/widget/ws") as sock:
        sock.send_json({"type": "auth", "token": visitor})
        assert sock.receive_json()["type"] == "ready"
        for frame in ("[" * 10_000 + "]" * 10_000, json.dumps({"type": "message", "client_id": uuid.uuid4().hex,
                                                                "text": "привет \ud800"}),
                      json.dumps({"type": "page", "url": "https://shop.example/\udfff", "title": "x"}),
                      json.dumps({"type": "ping", "\ud800": 1}), "[1]", "NaN"):
            sock.send_text(frame)
            answer = answer_of(sock, ("error", "ack", "pong"))
            assert answer["type"] == "error", (frame[:80], answer)
            assert answer["error"]["code"] == "malformed_json" and answer["error"]["message"]
        sock.send_json({"type": "ping"})
        assert answer_of(sock, ("pong",))


def test_agent_socket_refuses_a_hostile_first_frame(client, targets):
    client.cookies.clear()
    for frame in ("[" * DEEP + "]" * DEEP, '{"type": "auth", "token": "\\ud800"}', "\"\\ud800\""):
        with client.websocket_connect("/api/v1/ws") as sock:
            sock.send_text(frame)
            answer = sock.receive_json()
            assert answer["type"] == "error" and answer["error"]["code"] == "unauthorized"
            with pytest.raises(WebSocketDisconnect) as closed:
                sock.receive_json()
            assert closed.value.code == 4401


def test_agent_socket_ignores_hostile_frames_after_auth(client, ws):
    client.cookies.clear()
    with client.websocket_connect("/api/v1/ws") as sock:
        sock.send_json({"type": "auth", "token": ws.agent_token})
        assert sock.receive_json()["type"] == "ready"
        for frame in ("[" * 1500 + "]" * 1500, json.dumps({"type": "presence", "conversation_id": 1,
                                                            "state": "\ud800"})):
            sock.send_text(frame)
        sock.send_json({"type": "ping"})
        assert answer_of(sock, ("pong",))


# -- the shared parser and the safety net -----------------------------------------------------------------

def test_the_parser_limits_depth_and_keeps_valid_text():
    from otklik.platform.errors import DomainError
    from otklik.platform.jsonbody import MAX_DEPTH, loads, loads_object

    assert loads_object(json.dumps(nested(MAX_DEPTH // 2 - 1)).encode())["x"][0]["x"]  # 30 levels: fine
    assert loads(json.dumps([[1]]).encode()) == [[1]]
    depth_ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(depth_ok) is not None
    with pytest.raises(DomainError, match="nested"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    emoji = json.dumps({"text": "😀 ёж"}).encode()  # ensure_ascii: a surrogate pair escape, which is fine
    assert b"\\ud83d\\ude00" in emoji and loads_object(emoji) == {"text": "😀 ёж"}
    assert loads_object("\ufeff{\"a\": 1}".encode()) == {"a": 1}  # a UTF-8 byte order mark
    for bad, message in [(b'{"a": "\\ud800"}', "surrogate"), (b'{"\\udfff": 1}', "surrogate"),
                         (b'{"a": "\xed\xa0\x80"}', "UTF-8"), (b"\xff", "UTF-8"), (b"[]", "object"),
                         (b'{"a": NaN}', "NaN"), (b'{"a": -Infinity}', "Infinity"), (b"", "empty"),
                         (b'{"a": 1', "not valid JSON")]:
        with pytest.raises(DomainError, match=message) as caught:
            loads_object(bad)
        assert caught.value.status_code == 400 and caught.value.code == "malformed_json"
        assert caught.value.fields and caught.value.fields[0]["field"] == "body"
    with pytest.raises(DomainError) as caught:
        loads(b"[" + b"1," * 100 + b"1]", max_bytes=50)
    assert caught.value.status_code == 413


def test_safety_net_turns_recursion_and_unicode_errors_into_a_400_with_one_log_line(caplog):
    from otklik.app import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/deep")
    def deep() -> None:
        def down(n: int) -> int:
            return down(n + 1) + 1
        down(0)

    @app.post("/encode")
    def encode() -> None:
        "\ud800".encode()

    @app.post("/decode")
    def decode() -> None:
        b"\xff".decode()

    with caplog.at_level(logging.INFO), TestClient(app, raise_server_exceptions=False) as c:
        for path, code in [("/deep", "too_deep"), ("/encode", "bad_text"), ("/decode", "bad_text")]:
            caplog.clear()
            r = c.post(path)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
            records = [rec for rec in caplog.records if rec.name == "otklik.app"]
            assert len(records) == 1 and records[0].exc_info is None and "\n" not in records[0].getMessage()
            assert len(records[0].getMessage()) < 300
