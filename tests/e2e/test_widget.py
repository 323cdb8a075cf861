"""The chat widget in a real browser, embedded on a shop page served from ANOTHER origin than Otklik.

The shop page is a static file on a second local port (http://localhost:PORT vs Otklik on 127.0.0.1), so the
widget really runs cross-origin: CORS, the visitor token header and the WebSocket all cross sites.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from otklik.conversations.models import Conversation
from otklik.customers.models import Identity
from otklik.customers.tasks import Task
from otklik.platform.db import session_scope
from tests.conftest import WS, make_workspace
from tests.e2e.conftest import screenshot


def make_png(width: int = 120, height: int = 80, rgb: tuple[int, int, int] = (230, 120, 20)) -> bytes:
    """A real PNG (solid colour), built here so the test needs no image library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = make_png()
PDF = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<< /Root 1 0 R >>\n%%EOF\n"
XSS = '<img src=x onerror="document.title=\'pwned\'">'


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A static 'shop' site on another origin: (base URL, folder to write pages into)."""
    root = tmp_path_factory.mktemp("shop")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", root
    finally:
        server.shutdown()


def api(live_server: str, ws: WS, method: str, path: str, role: str = "agent", **kwargs) -> httpx.Response:
    headers = ws.agent if role == "agent" else ws.admin
    return httpx.request(method, live_server + "/api/v1" + path, headers=headers, timeout=10, **kwargs)


def shop_page(shop: tuple[str, Path], live_server: str, key: str, name: str, *, title: str = "Магазин",
              settings: dict | None = None) -> str:
    base, root = shop
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pre = f"<script>window.otklikSettings = {json.dumps(settings)};</script>" if settings else ""
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif"><h1>{title}</h1><p>Чайники, кофемолки, тостеры.</p>{pre}
<script src="{live_server}/widget/otklik-widget.js" data-key="{key}" async></script></body></html>""",
                    encoding="utf-8")
    return f"{base}/{name}"


def eventually(check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def widget_conversation(live_server: str, ws: WS, channel: str = "widget") -> dict | None:
    items = api(live_server, ws, "GET", f"/conversations?channel={channel}").json()["items"]
    return items[0] if items else None


@pytest.fixture
def ws_key(live_server) -> tuple[WS, str]:
    ws = make_workspace("widget")
    key = api(live_server, ws, "GET", "/widget/settings", role="admin").json()["public_key"]
    return ws, key


def test_visitor_chats_with_an_agent_across_origins(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    config = api(live_server, ws, "GET", "/widget/settings", role="admin").json()["config"]
    config["buttons"] = [{"kind": "chat"}, {"kind": "callback"}, {"kind": "telegram", "target": "https://t.me/shop"},
                         {"kind": "vk", "target": "https://vk.me/shop"},
                         {"kind": "whatsapp", "target": "https://wa.me/79991234567"},
                         {"kind": "email", "target": "help@shop.example"}]
    assert api(live_server, ws, "PUT", "/widget/settings", role="admin", json={"config": config}).status_code == 200
    page = new_page(locale="ru-RU")
    page.goto(shop_page(shop, live_server, key, "index.html"))
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    for kind in ("chat", "callback", "telegram", "vk", "whatsapp", "email"):
        assert page.locator(f".ow-menu [data-kind={kind}]").is_visible()
    assert page.locator(".ow-menu [data-kind=telegram]").get_attribute("href") == "https://t.me/shop"
    screenshot(page, "widget-01-launcher-menu")
    page.locator(".ow-menu [data-kind=chat]").click()
    assert page.locator(".ow-input").get_attribute("placeholder") == "Напишите сообщение…"
    page.locator(".ow-input").fill("Здравствуйте! " + XSS)
    page.locator(".ow-input").press("Enter")
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict)
    page.locator("#otklik-widget[data-transport=websocket]").wait_for(state="attached")
    page.locator(".ow-visitor .ow-status", has_text="отправлено").wait_for()
    # the agent types, then answers with hostile text: the widget shows it as text
    assert api(live_server, ws, "POST", "/widget/agent-typing", json={"conversation_id": conv["id"]}).status_code == 204
    page.locator(".ow-typing", has_text="печатает").wait_for()
    reply = api(live_server, ws, "POST", f"/conversations/{conv['id']}/messages", json={"text": "Ответ " + XSS}).json()
    agent_msg = page.locator(f".ow-agent[data-id='{reply['id']}'] .ow-text")
    agent_msg.wait_for()
    assert agent_msg.text_content() == "Ответ " + XSS
    assert page.locator(".ow-msg img").count() == 0 and page.title() != "pwned"
    screenshot(page, "widget-02-chat-reply")
    # read receipt: the open panel reported it read
    eventually(lambda: [m for m in api(live_server, ws, "GET", f"/conversations/{conv['id']}/messages").json()["items"]
                        if m["id"] == reply["id"] and m["delivery_status"] == "read"])
    # quick reply, then a reload keeps the history
    page.locator(".ow-quick button", has_text="Где мой заказ?").click()
    eventually(lambda: api(live_server, ws, "GET", f"/conversations/{conv['id']}").json()["message_count"] >= 3)
    page.reload()
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    page.locator(".ow-menu [data-kind=chat]").click()
    texts = page.locator(".ow-msg .ow-text").all_text_contents()
    assert texts == ["Здравствуйте! " + XSS, "Ответ " + XSS, "Где мой заказ?"]
    screenshot(page, "widget-03-history-after-reload")


def test_english_visitor_and_offline_form(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    config = api(live_server, ws, "GET", "/widget/settings", role="admin").json()["config"]
    config["hours"] = {"mode": "never", "timezone": "Europe/Moscow", "days": {}}
    api(live_server, ws, "PUT", "/widget/settings", role="admin", json={"config": config})
    page = new_page(locale="en-US")
    page.goto(shop_page(shop, live_server, key, "en.html", title="Shop"))
    page.locator("#otklik-widget[data-online=no]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    assert page.locator(".ow-menu [data-kind=chat]").text_content().strip().endswith("Chat with us")
    page.locator(".ow-menu [data-kind=chat]").click()
    form = page.locator(".ow-offline-form")
    form.locator("[name=text]").fill("Do you ship to Kazan?")
    form.locator("button[type=submit]").click()
    assert "email or a phone" in form.locator(".ow-error").text_content()
    form.locator("[name=email]").fill("guest@example.com")
    form.locator("button[type=submit]").click()
    page.locator(".ow-done", has_text="Thank you").wait_for()
    screenshot(page, "widget-04-offline-form-en")
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict)
    messages = api(live_server, ws, "GET", f"/conversations/{conv['id']}/messages").json()["items"]
    assert "guest@example.com" in messages[0]["body_text"]


def test_callback_request_form(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    page = new_page()
    page.goto(shop_page(shop, live_server, key, "cb.html"))
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.locator(".ow-launcher").click()
    page.locator(".ow-menu [data-kind=callback]").click()
    form = page.locator(".ow-callback-form")
    form.locator("[name=name]").fill("Олег")
    form.locator("[name=phone]").fill("+7 999 12")  # passes the browser's shape check, the server refuses it
    form.locator("button[type=submit]").click()
    form.locator(".ow-error", has_text="Проверьте номер").wait_for()
    assert form.locator("[name=phone]").get_attribute("aria-invalid") == "true"
    screenshot(page, "widget-05-callback-bad-phone")
    form.locator("[name=phone]").fill("8 (999) 123-45-67")
    form.locator("[name=time]").fill("после 18:00")
    form.locator("button[type=submit]").click()
    page.locator(".ow-done", has_text="перезвоним").wait_for()
    screenshot(page, "widget-06-callback-done")
    conv = eventually(lambda: widget_conversation(live_server, ws, "phone"))
    assert isinstance(conv, dict)
    with session_scope(write=False) as db:
        row = db.get(Conversation, conv["id"])
        assert row is not None
        # the typed number is an unverified claim of its own (customers.suggestions), never merged silently
        claim = db.scalar(select(Identity).where(Identity.customer_id == row.customer_id))
        assert claim is not None and claim.external_id == "claim:phone:+79991234567" and not claim.verified
        task = db.scalar(select(Task).where(Task.conversation_id == row.id))
        assert task is not None and "Олег" in task.title and "после 18:00" in task.note


def test_attachments_image_and_pdf(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    page = new_page()
    page.goto(shop_page(shop, live_server, key, "files.html"))
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.evaluate("window.OtklikWidget.open()")
    page.locator(".ow-file").set_input_files({"name": "фото.png", "mimeType": "image/png", "buffer": PNG})
    page.locator(".ow-files", has_text="фото.png").wait_for()
    page.locator(".ow-file").set_input_files({"name": "счёт.pdf", "mimeType": "application/pdf", "buffer": PDF})
    page.locator(".ow-files", has_text="счёт.pdf").wait_for()
    page.locator(".ow-input").fill("Вот фото и счёт")
    page.locator(".ow-send").click()
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict)
    msgs = api(live_server, ws, "GET", f"/conversations/{conv['id']}/messages").json()["items"]
    assert sorted(a["content_type"] for a in msgs[0]["attachments"]) == ["application/pdf", "image/png"]
    # the agent sends a picture back; the visitor sees it inline
    att = api(live_server, ws, "POST", "/attachments", files={"file": ("схема.png", make_png(160, 90, (26, 127, 55)),
                                                                       "image/png")}).json()
    api(live_server, ws, "POST", f"/conversations/{conv['id']}/messages",
        json={"text": "Схема проезда", "attachment_ids": [att["id"]]})
    page.locator(".ow-agent img.ow-image").wait_for()
    assert page.locator(".ow-visitor img.ow-image").count() == 1
    assert page.locator(".ow-visitor .ow-file-link", has_text="счёт.pdf").count() == 1
    eventually(lambda: page.evaluate(
        "[...document.querySelector('#otklik-widget').shadowRoot.querySelectorAll('img.ow-image')]"
        ".filter(i => i.complete && i.naturalWidth > 100).length") == 2)
    screenshot(page, "widget-07-attachments")


def test_proactive_greeting_on_matching_pages_only(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    config = api(live_server, ws, "GET", "/widget/settings", role="admin").json()["config"]
    config["greetings"] = [{"url_pattern": "/catalog/*", "delay_seconds": 1,
                            "message": {"ru": "Помочь выбрать чайник?", "en": "Need help choosing a kettle?"}}]
    api(live_server, ws, "PUT", "/widget/settings", role="admin", json={"config": config})
    page = new_page()
    page.goto(shop_page(shop, live_server, key, "about.html", title="О нас"))
    page.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.wait_for_timeout(2500)
    assert not page.locator(".ow-greeting").is_visible()
    started = time.monotonic()
    page.goto(shop_page(shop, live_server, key, "catalog/kettles.html", title="Чайники"))
    page.locator(".ow-greeting-text", has_text="Помочь выбрать чайник?").wait_for()
    assert time.monotonic() - started >= 1.0
    screenshot(page, "widget-08-greeting")
    page.locator(".ow-greeting").click()
    assert page.locator(".ow-chat").is_visible()
    # the pages were tracked for the agent
    page.locator(".ow-input").fill("Да, помогите")
    page.locator(".ow-input").press("Enter")
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict)
    customer_id = api(live_server, ws, "GET", f"/conversations/{conv['id']}").json()["customer"]["id"]
    visits = api(live_server, ws, "GET", f"/widget/visits?customer_id={customer_id}").json()
    assert [v["title"] for v in visits][:2] == ["Чайники", "О нас"]


def test_identity_verification_accepted_and_rejected(new_page, live_server, shop, ws_key):
    ws, key = ws_key
    existing = api(live_server, ws, "POST", "/customers", role="admin", json={
        "name": "Анна", "identities": [{"kind": "email", "external_id": "anna@example.com"}]}).json()
    secret = api(live_server, ws, "POST", "/widget/settings/identity-secret", role="admin").json()["identity_secret"]
    good = hmac.new(secret.encode(), b"shop-42", hashlib.sha256).hexdigest()
    page = new_page()
    page.goto(shop_page(shop, live_server, key, "account.html", settings={"user": {
        "user_id": "shop-42", "email": "anna@example.com", "name": "Анна", "user_hash": good}}))
    page.locator("#otklik-widget[data-identity=verified]").wait_for(state="attached")
    page.evaluate("window.OtklikWidget.open()")
    page.locator(".ow-input").fill("Это Анна, вошла в личный кабинет")
    page.locator(".ow-input").press("Enter")
    conv = eventually(lambda: widget_conversation(live_server, ws))
    assert isinstance(conv, dict) and conv["customer"]["id"] == existing["id"]

    page2 = new_page()
    page2.goto(shop_page(shop, live_server, key, "forged.html", settings={"user": {
        "user_id": "shop-43", "email": "anna@example.com", "user_hash": good}}))
    page2.locator("#otklik-widget[data-identity=rejected]").wait_for(state="attached")
    page2.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")  # still works, as an anonymous visitor
    with session_scope(write=False) as db:
        assert db.scalar(select(Identity).where(Identity.workspace_id == ws.id,
                                                Identity.external_id == "shop-43")) is None


def test_admin_settings_page_with_preview_and_snippet(new_page, live_server, ws_key):
    from tests.e2e._ui import sign_in

    ws, key = ws_key
    page = new_page(viewport=(1400, 1000))
    sign_in(page, ws.admin_email, next_path="/settings/widget")
    assert key in page.locator("#widget-snippet").text_content()
    page.fill("input[name=title_ru]", "Поддержка магазина <script>")
    page.fill("input[name=target_telegram]", "https://t.me/example_shop")
    page.check("input[name=button_telegram]")
    page.fill("textarea[name=greetings]", "/catalog/* | 5 | Помочь с выбором? | Need help choosing?")
    page.frame_locator("#widget-preview").locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    page.evaluate("const c = document.querySelector('input[name=color]'); c.value = '#0a7a5a';"
                  "c.dispatchEvent(new Event('input', {bubbles: true}))")
    live = page.frame_locator("#widget-preview").locator(".ow-launcher")
    assert live.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(10, 122, 90)"  # before saving
    page.click("#widget-save")
    page.wait_for_selector("#widget-saved")
    settings = api(live_server, ws, "GET", "/widget/settings", role="admin").json()
    assert settings["config"]["color"] == "#0a7a5a"
    assert settings["config"]["texts"]["ru"]["title"] == "Поддержка магазина <script>"
    assert settings["config"]["greetings"][0]["url_pattern"] == "/catalog/*"
    preview = page.frame_locator("#widget-preview")
    preview.locator(".ow-launcher").click()
    preview.locator(".ow-menu [data-kind=telegram]").wait_for()
    color = preview.locator(".ow-launcher").evaluate("b => getComputedStyle(b).backgroundColor")
    assert color == "rgb(10, 122, 90)"
    preview.locator(".ow-menu [data-kind=chat]").click()
    assert preview.locator(".ow-title").text_content() == "Поддержка магазина <script>"
    page.click("#widget-new-secret")
    assert page.locator("#widget-secret").text_content().startswith("wis_")
    screenshot(page, "widget-09-settings-page")
    # the bad link is refused with the form's error list, nothing saved
    page.fill("input[name=target_telegram]", "javascript:alert(1)")
    page.click("#widget-save")
    page.wait_for_selector("#widget-errors")
    assert api(live_server, ws, "GET", "/widget/settings", role="admin").json()["config"]["buttons"][-1]["target"] \
        == "https://t.me/example_shop"
