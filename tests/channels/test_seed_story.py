"""The seeds' story end to end: the same person writes in Telegram (and shares her own number), calls the
hotline (telephony webhook), and e-mails from an address she verified. The agent sees one customer with all
three identities and all three conversations. Each step goes through the real channel: the Telegram webhook
(recorded update shapes), the signed phone webhook, and SMTP into the email channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from otklik.channels.email.smtp_in import make_controller
from tests.channels.conftest import BOT_TOKEN, fixture
from tests.channels.email_peers import free_port, make_email_account
from tests.channels.helpers import create_account

PHONE_FIXTURES = Path(__file__).parent / "fixtures" / "phone"
SIGNING = "pbx-signing-secret"


@pytest.fixture(scope="module")
def smtpd():
    controller = make_controller(host="127.0.0.1", port=free_port(), max_bytes=200_000)
    controller.start()
    yield controller
    controller.stop()


def _telegram(client, ws, telegram_api) -> dict:
    account = create_account(client, ws, "telegram", config={"api_base_url": telegram_api.url},
                             secrets={"bot_token": BOT_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    account["secret"] = telegram_api.sent("setWebhook")[-1].fields["secret_token"]
    return account


def _post_update(client, bot, update) -> None:
    r = client.post(bot["webhook_path"], content=json.dumps(update, ensure_ascii=False).encode(), headers={
        "X-Telegram-Bot-Api-Secret-Token": bot["secret"], "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["result"] == "stored", r.text


def test_telegram_then_a_call_then_an_email_is_one_customer(client, ws, telegram_api, smtpd):
    # 1. Telegram: Анна asks where her order is, then shares her own phone number (a verified identity)
    bot = _telegram(client, ws, telegram_api)
    _post_update(client, bot, fixture("telegram", "update_text"))
    _post_update(client, bot, fixture("telegram", "update_contact_own"))
    found = client.get("/api/v1/customers", params={"identity_kind": "telegram", "identity": "275031337"},
                       headers=ws.agent).json()["items"]
    assert len(found) == 1
    anna = found[0]["id"]

    # 2. she calls the hotline from the same number: the PBX's signed webhook logs the call
    phone = create_account(client, ws, "phone", config={}, secrets={"signing_secret": SIGNING})
    for name in ("call_started", "call_ended"):
        body = (PHONE_FIXTURES / f"{name}.json").read_bytes()
        signature = "sha256=" + hmac.new(SIGNING.encode(), body, hashlib.sha256).hexdigest()
        r = client.post(phone["webhook_path"], content=body, headers={"x-otklik-signature": signature,
                                                                       "content-type": "application/json"})
        assert r.status_code == 200 and r.json()["status"] == "logged", r.text

    # 3. the agent confirms her e-mail on the call (a verified identity), and she writes from it
    r = client.post(f"/api/v1/customers/{anna}/identities", headers=ws.agent,
                    json={"kind": "email", "external_id": "anna.smirnova@example.org", "verified": True})
    assert r.status_code == 201, r.text
    address = f"support-{ws.id}@shop.example"
    make_email_account(ws.id, ws.actor(), addresses=[address], smtp_host="127.0.0.1", smtp_port=1,
                       smtp_security="none", smtp_username="support@shop.example")
    mail = EmailMessage()
    mail["From"] = "Анна Смирнова <anna.smirnova@example.org>"
    mail["To"] = address
    mail["Subject"] = "Заказ №18342 так и не пришёл"
    mail["Message-ID"] = f"<seed-story-{ws.id}@example.org>"
    mail.set_content("Пишу третий раз: в Telegram и по телефону обещали разобраться. Где заказ?")
    with smtplib.SMTP(smtpd.hostname, smtpd.port, timeout=10) as smtp:
        smtp.send_message(mail)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the SMTP endpoint stores the mail in its own thread
        conversations = client.get("/api/v1/conversations", params={"customer_id": anna},
                                   headers=ws.agent).json()["items"]
        if len(conversations) == 3:
            break
        time.sleep(0.1)

    # the agent sees one customer with three identities and the three conversations
    customer = client.get(f"/api/v1/customers/{anna}", headers=ws.agent).json()
    assert customer["merged_into_id"] is None
    identities = {(i["kind"], i["external_id"], i["verified"]) for i in customer["identities"]}
    assert identities == {("telegram", "275031337", True), ("phone", "+79161234567", True),
                          ("email", "anna.smirnova@example.org", True)}
    assert sorted(c["channel"] for c in conversations) == ["email", "phone", "telegram"]
    assert {c["customer"]["id"] for c in conversations} == {anna}
    history = {c["channel"]: [m["body_text"] for m in client.get(
        f"/api/v1/conversations/{c['id']}/messages", headers=ws.agent).json()["items"]] for c in conversations}
    assert any("Где мой заказ" in t for t in history["telegram"])
    assert history["phone"][0] == "📞 Входящий звонок с +79161234567" and "3:12" in history["phone"][1]
    assert any("Где заказ?" in t for t in history["email"])
    assert len(client.get("/api/v1/customers", headers=ws.agent).json()["items"]) == 1
