"""Structured logs (issue 17 §4): a request id on every line, returned as X-Request-ID, carried into the jobs a
request enqueues after commit (in this process or a worker) so one message is followed from its webhook to its
outbox delivery; and no secret or message body in the logs at INFO (webhook secrets, bot tokens, bearer
tokens, passwords, visitor tokens, message text)."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from otklik.platform import logs
from otklik.platform.jobs import huey, task
from tests.channels.conftest import BOT_TOKEN, TelegramBotAPI, fixture
from tests.channels.helpers import create_account, messages_of
from tests.conftest import PASSWORD


class Lines(logging.Handler):
    """What a JSON log shipper would receive: every record at INFO and up, formatted as production does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(logs.RequestIdFilter())
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def captured():
    root = logging.getLogger()
    handler = Lines()
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_a_sane_request_id_is_kept_and_anything_else_is_replaced(client):
    r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert r.headers["X-Request-ID"] == "lb-7f3a.42"
    for hostile in ("a" * 65, "id with spaces", "x\u00e9", "<script>", ""):
        r = client.get("/healthz", headers={"X-Request-ID": hostile.encode("utf-8")})
        given = r.headers["X-Request-ID"]
        assert given != hostile and len(given) == 32 and int(given, 16) >= 0
    first, second = client.get("/healthz").headers["X-Request-ID"], client.get("/healthz").headers["X-Request-ID"]
    assert first != second


def test_every_line_of_a_request_carries_its_id_and_the_access_line_names_the_route_template(client, ws,
                                                                                            captured):
    r = client.get("/api/v1/conversations/424242", headers={**ws.agent, "X-Request-ID": "trace-404"})
    assert r.status_code == 404
    access = [e for e in captured.entries() if e["logger"] == "otklik.access" and e["request_id"] == "trace-404"]
    assert len(access) == 1
    assert access[0]["message"].startswith("GET /api/v1/conversations/{conversation_id} 404 ")
    assert "424242" not in captured.text  # a raw path never: webhook and form paths hold secrets
    assert access[0]["level"] == "INFO" and access[0]["time"].endswith("+00:00")


@pytest.fixture
def telegram_api():
    api = TelegramBotAPI()  # the channel tests' stand-in of the Bot API
    yield api
    api.close()


@pytest.fixture
def bot(client, ws, telegram_api):
    account = create_account(client, ws, "telegram", config={"api_base_url": telegram_api.url},
                             secrets={"bot_token": BOT_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    account["secret"] = telegram_api.sent("setWebhook")[-1].fields["secret_token"]
    return account


def test_one_message_is_followed_from_webhook_to_outbox_and_no_secret_or_body_is_logged(client, ws, bot,
                                                                                       telegram_api, captured):
    body = f"BODY-MARKER-{uuid.uuid4().hex} где мой заказ"
    reply_text = f"REPLY-MARKER-{uuid.uuid4().hex} уже в пути"
    update = fixture("telegram", "update_text")
    update["message"]["text"] = body
    r = client.post(bot["webhook_path"], content=json.dumps(update, ensure_ascii=False).encode(), headers={
        "X-Telegram-Bot-Api-Secret-Token": bot["secret"], "Content-Type": "application/json",
        "X-Request-ID": "webhook-trail-1"})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-ID"] == "webhook-trail-1"
    [message] = [m for m in messages_of(ws.id, "telegram") if m.direction == "inbound"]

    trail = [e for e in captured.entries() if e["request_id"] == "webhook-trail-1"]
    assert any(e["message"].startswith(f"inbound message {message.id} in conversation {message.conversation_id}")
               for e in trail), trail
    assert any(e["logger"] == "otklik.access" for e in trail)

    # the agent's reply: its request's after-commit job delivers it, and the delivery line carries that id
    r = client.post(f"/api/v1/conversations/{message.conversation_id}/messages", json={"text": reply_text},
                    headers={**ws.agent, "X-Request-ID": "reply-trail-2"})
    assert r.status_code == 201, r.text
    assert [c for c in telegram_api.sent("sendMessage") if c.fields.get("text") == reply_text]
    delivered = [e for e in captured.entries() if e["logger"] == "otklik.conversations.outbox"
                 and e["message"].startswith("outbox ") and f"message {r.json()['id']} " in e["message"]]
    assert delivered and {e["request_id"] for e in delivered} == {"reply-trail-2"}

    for secret in (body, body.split()[0], reply_text.split()[0], bot["secret"], BOT_TOKEN, BOT_TOKEN.split(":")[1],
                   bot["webhook_path"].rsplit("/", 1)[-1], ws.agent_token, ws.admin_token):
        assert secret not in captured.text, secret


def test_widget_messages_passwords_and_bearer_tokens_stay_out_of_the_log(client, ws, captured):
    from otklik.web.widget import api as widget

    for limiter in (widget.sessions_per_ip, widget.messages_per_visitor):
        limiter.clear()
    key = client.get("/api/v1/widget/settings", headers=ws.admin).json()["public_key"]
    visitor = client.post("/api/v1/widget/session", json={"key": key, "language": "ru"})
    assert visitor.status_code == 200, visitor.text
    body = f"WIDGET-MARKER-{uuid.uuid4().hex} мой телефон +79161234567"
    r = client.post("/api/v1/widget/messages", json={"client_id": uuid.uuid4().hex, "text": body},
                    headers={"X-Otklik-Visitor": visitor.json()["token"]})
    assert r.status_code == 201, r.text
    wrong = f"wrong-{uuid.uuid4().hex}"
    try:
        for password in (wrong, PASSWORD):
            client.post("/api/v1/auth/login", json={"email": ws.agent_email, "password": password,
                                                    "workspace": ws.slug})
    finally:
        client.cookies.clear()  # the shared client must not stay signed in for the next tests
    client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": wrong})
    client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {ws.admin_token}"})
    client.get("/api/v1/conversations", headers={"Authorization": "Bearer otk_not_a_real_token_123456"})
    assert any(e["logger"] == "otklik.access" for e in captured.entries())
    for secret in (body.split()[0], "+79161234567", visitor.json()["token"], key, wrong, PASSWORD, ws.admin_token,
                   "otk_not_a_real_token_123456"):
        assert secret not in captured.text, secret


_seen: list[tuple[int, str | None]] = []


@task()
def note_request_id(n: int) -> None:
    _seen.append((n, logs.current_request_id()))


def test_a_job_queued_by_a_request_runs_with_its_request_id_in_another_process():
    """The id travels inside the serialized job (as a worker process reads it), not in this process's context."""
    huey.immediate = False  # a real queue (memory storage): enqueue serializes, the "worker" below dequeues
    try:
        with logs.bound_request_id("from-the-webhook"):
            note_request_id(1)
        note_request_id(2)  # no request: no id
        ran = 0
        while (job := huey.dequeue()) is not None:
            assert logs.current_request_id() is None
            huey.execute(job)
            ran += 1
        assert ran >= 2
    finally:
        huey.immediate = True
    assert (1, "from-the-webhook") in _seen and (2, None) in _seen


def test_the_json_and_plain_configurations_both_stamp_the_request_id(capsys):
    for fmt in ("json", "plain"):
        config = logs.dict_config(fmt, "info")
        assert config["loggers"]["httpx"]["level"] == "WARNING"
        assert config["loggers"]["uvicorn.access"]["propagate"] is False
        import logging.config

        root = logging.getLogger()
        saved = (root.level, list(root.handlers))
        logging.config.dictConfig(config)
        try:
            with logs.bound_request_id("cfg-1"):
                logging.getLogger("otklik.test").info("hello %s", fmt)
            err = capsys.readouterr().err.strip().splitlines()[-1]
        finally:
            for handler in list(root.handlers):
                root.removeHandler(handler)
            root.setLevel(saved[0])
            for handler in saved[1]:
                root.addHandler(handler)
        if fmt == "json":
            entry = json.loads(err)
            assert entry["request_id"] == "cfg-1" and entry["message"] == "hello json"
        else:
            assert "[cfg-1]" in err and err.endswith("hello plain")
