"""Stand-ins for vendors' HTTP APIs, serving recorded payload shapes (tests/channels/fixtures/<vendor>/).

`StandIn` is a small threaded HTTP server that records every request and answers through a handler that
tests can program (queue failures, change answers). Other channel tests may reuse it.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(vendor: str, name: str) -> dict:
    return json.loads((FIXTURES / vendor / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    fields: dict[str, Any] = field(default_factory=dict)   # form / multipart / JSON fields
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, bytes)


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    fields: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if content_type.startswith("application/json") and body:
        data = json.loads(body)
        return (data if isinstance(data, dict) else {"_": data}), files
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}, files
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename:
                files[name] = (filename, payload)
            else:
                fields[name] = payload.decode()
    return fields, files


Reply = tuple[int, dict[str, str], bytes]


class StandIn:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers with `handler(request)`."""

    def __init__(self, handler: Callable[[Recorded], Reply]) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                fields, files = parse_body(self.headers.get("content-type", ""), body)
                record = Recorded(self.command, unquote(parts.path), parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body, fields, files)
                with stand_in.lock:
                    stand_in.requests.append(record)
                status, headers, payload = stand_in.handler(record)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def calls(self, suffix: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(data, ensure_ascii=False).encode()


# -- Telegram Bot API -------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
OGG = b"OggS\x00\x02" + b"\x00" * 200
PDF = b"%PDF-1.7\n" + b"0" * 200
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 100

BOT_TOKEN = "7012345678:AAHk3uZ7eFqS9m2dX0vB1cN4pQ8rT5yW6zU"


class TelegramBotAPI:
    """The Telegram Bot API as python-telegram-bot sees it: /bot<token>/<method> and /file/bot<token>/<path>.

    Answers are the recorded shapes in fixtures/telegram (response_*.json) with the request's own values
    filled in. `fail_next[method]` queues error answers (fixture names such as "response_429").
    """

    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.files: dict[str, bytes] = {}            # file_id -> content
        self.updates: list[dict] = []                # served by getUpdates
        self.fail_next: dict[str, list[str]] = {}
        self.delay = 0.0
        self._ids = itertools.count(1000)
        self.server = StandIn(self._handle)
        self.url = self.server.url

    def sent(self, method: str) -> list[Recorded]:
        return [r for r in self.server.calls(f"/{method}") if r.path.startswith("/bot")]

    def _handle(self, r: Recorded) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if r.path.startswith("/file/bot"):
            token, _, path = r.path.removeprefix("/file/bot").partition("/")
            file_id = path.rsplit("/", 1)[-1]
            if token != self.token or file_id not in self.files:
                return json_reply(fixture("telegram", "response_401" if token != self.token else "response_429"), 404)
            return 200, {"content-type": "application/octet-stream"}, self.files[file_id]
        token, _, method = r.path.removeprefix("/bot").partition("/")
        if token != self.token:
            return json_reply(fixture("telegram", "response_401"), 401)
        queued = self.fail_next.get(method)
        if queued:
            answer = fixture("telegram", queued.pop(0))
            return json_reply(answer, answer["error_code"])
        f = r.fields
        if method == "getMe":
            return json_reply(fixture("telegram", "response_getMe"))
        if method in ("setWebhook", "deleteWebhook", "answerCallbackQuery"):
            return json_reply({"ok": True, "result": True, "description": "Webhook was set"})
        if method == "getUpdates":
            offset = int(f.get("offset") or 0)
            return json_reply({"ok": True, "result": [u for u in self.updates if u["update_id"] >= offset]})
        if method == "getFile":
            file_id = f["file_id"]
            if file_id not in self.files:
                return json_reply({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, 400)
            answer = fixture("telegram", "response_getFile")
            answer["result"].update(file_id=file_id, file_size=len(self.files[file_id]), file_path=f"documents/{file_id}")
            return json_reply(answer)
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            answer = fixture("telegram", "response_sendMessage")
            result = answer["result"]
            result["message_id"] = next(self._ids)
            result["chat"]["id"] = int(f["chat_id"])
            result.pop("text")
            if method == "sendMessage":
                result["text"] = f["text"]
            elif method == "sendPhoto":
                result["photo"] = [{"file_id": f"sent-{result['message_id']}", "file_unique_id": "u", "width": 1,
                                    "height": 1, "file_size": len(r.files["photo"][1])}]
            else:
                name, data = r.files["document"]
                result["document"] = {"file_id": f"sent-{result['message_id']}", "file_unique_id": "u",
                                      "file_name": name, "file_size": len(data)}
            if f.get("reply_markup"):
                result["reply_markup"] = json.loads(f["reply_markup"])
            return json_reply(answer)
        return json_reply({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, 404)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def telegram_api():
    api = TelegramBotAPI()
    yield api
    api.close()


# -- MAX Bot API ------------------------------------------------------------------------------------

MAX_TOKEN = "f9LHodD0cOLmN7x2kP3qRs8tUv1wXyZ0aBcDeFgHiJ"


class MaxBotAPI:
    """MAX's platform API as the product calls it (Authorization header), answering recorded shapes."""

    def __init__(self, token: str = MAX_TOKEN) -> None:
        self.token = token
        self.fail_next: list[tuple[str, int, dict[str, str]]] = []   # (fixture, status, headers)
        self._ids = itertools.count(1)
        self.server = StandIn(self._handle)
        self.url = self.server.url

    def _handle(self, r: Recorded) -> Reply:
        if r.path.startswith("/upload-target"):
            return json_reply({"token": f"uploaded-{next(self._ids)}"})
        if r.headers.get("authorization") != self.token:
            return json_reply(fixture("max", "response_401"), 401)
        if self.fail_next:
            name, status, headers = self.fail_next.pop(0)
            return json_reply(fixture("max", name), status, headers)
        if r.method == "GET" and r.path == "/me":
            return json_reply(fixture("max", "response_me"))
        if r.method == "POST" and r.path == "/subscriptions":
            return json_reply({"success": True})
        if r.method == "POST" and r.path == "/answers":
            return json_reply({"success": True})
        if r.method == "POST" and r.path == "/uploads":
            answer = fixture("max", "response_upload")
            answer["url"] = f"{self.url}/upload-target?type={r.query['type'][0]}"
            return json_reply(answer)
        if r.method == "POST" and r.path == "/messages":
            answer = fixture("max", "response_send_message")
            body = json.loads(r.body)
            answer["message"]["recipient"]["user_id"] = int(r.query["user_id"][0])
            answer["message"]["body"].update(mid=f"mid.sent{next(self._ids):08d}", text=body.get("text"),
                                             attachments=body.get("attachments") or None)
            return json_reply(answer)
        return json_reply({"code": "not.found", "message": "Path not found"}, 404)

    def sent(self) -> list[Recorded]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == "/messages"]

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def max_api():
    api = MaxBotAPI()
    yield api
    api.close()


def deepcopy(data: dict) -> dict:
    return copy.deepcopy(data)
