"""The optional LLM provider against a local stand-in server speaking the OpenAI chat-completions shape:
answers with citations, refusals, malformed replies, time-outs, rate limits — never an exception."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from otklik.assistant.llm import NO_ANSWER, OpenAICompatibleProvider, provider_from_settings

ARTICLES = [
    ("delivery-cost-times", "Сроки и стоимость доставки",
     "Курьер по Москве: 390 ₽, бесплатно при заказе от 5 000 ₽. Доставка на следующий день."),
    ("return-online", "Возврат товара надлежащего качества (7 дней)",
     "Товар, купленный онлайн, можно вернуть в течение 7 дней после получения."),
]
SECRET = "sk-test-very-secret-key"


class StandIn:
    """A chat-completions server: each test sets what it answers; every request is recorded."""

    def __init__(self) -> None:
        self.status = 200
        self.reply: object = None
        self.raw: bytes | None = None
        self.delay = 0.0
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                payload = stand_in.raw if stand_in.raw is not None else json.dumps(stand_in.reply).encode()
                try:
                    self.send_response(stand_in.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def completion(self, content: str, finish_reason: str = "stop") -> None:
        self.reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1760000000, "model": "qwen2.5-7b",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                   "finish_reason": finish_reason}],
                      "usage": {"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450}}


@pytest.fixture
def server():
    stand_in = StandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def provider(server):
    p = OpenAICompatibleProvider(server.url, model="qwen2.5-7b", api_key=SECRET, timeout=1.0)
    yield p
    p.close()


def test_answer_with_citations_maps_numbers_to_article_ids(server, provider):
    server.completion("Доставка курьером по Москве стоит 390 ₽, а от 5 000 ₽ — бесплатно [1].")
    answer = provider.answer("сколько стоит доставка", ARTICLES, "ru")
    assert not answer.refused and answer.reason == ""
    assert answer.citations == ["delivery-cost-times"]
    assert "390 ₽" in answer.text
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = request["body"]
    assert body["model"] == "qwen2.5-7b" and body["temperature"] == 0
    assert body["messages"][0]["role"] == "system" and NO_ANSWER in body["messages"][0]["content"]
    user = body["messages"][1]["content"]
    assert "[1] Сроки и стоимость доставки" in user and "[2] Возврат товара" in user
    assert user.rstrip().endswith("сколько стоит доставка")


def test_several_citations_in_order_without_duplicates(server, provider):
    server.completion("Вернуть можно за 7 дней [2]. Доставка — 390 ₽ [1]. Ещё раз про возврат [2].")
    answer = provider.answer("возврат и доставка", ARTICLES, "ru")
    assert answer.citations == ["return-online", "delivery-cost-times"]


def test_model_refusal(server, provider):
    server.completion(NO_ANSWER)
    answer = provider.answer("какая завтра погода", ARTICLES, "ru")
    assert answer.refused and answer.reason == "no_answer" and answer.text == ""


def test_answer_without_or_with_invented_citation_is_refused(server, provider):
    server.completion("Доставка стоит 390 ₽.")
    assert provider.answer("доставка", ARTICLES, "ru").reason == "no_citation"
    server.completion("Доставка стоит 390 ₽ [3].")
    answer = provider.answer("доставка", ARTICLES, "ru")
    assert answer.refused and answer.reason == "invalid_citation"


@pytest.mark.parametrize("raw", [b"not json at all", b"{}", b'{"choices": []}',
                                 b'{"choices": [{"message": {"content": null}}]}',
                                 b'{"choices": [{"message": {}}]}'])
def test_malformed_response(server, provider, raw):
    server.raw = raw
    answer = provider.answer("доставка", ARTICLES, "ru")
    assert answer.refused and answer.reason == "malformed_response"


def test_timeout_is_a_refusal_not_an_exception(server, provider):
    server.completion("Поздний ответ [1].")
    server.delay = 2.0
    started = time.monotonic()
    answer = provider.answer("доставка", ARTICLES, "ru")
    assert answer.refused and answer.reason == "timeout"
    assert time.monotonic() - started < 1.9


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (500, "http_500"), (401, "http_401")])
def test_http_errors(server, provider, status, reason):
    server.status = status
    server.reply = {"error": {"message": "slow down", "type": "rate_limit"}}
    answer = provider.answer("доставка", ARTICLES, "ru")
    assert answer.refused and answer.reason == reason


def test_unreachable_server():
    p = OpenAICompatibleProvider("http://127.0.0.1:9", timeout=1.0)  # discard port: nothing listens
    answer = p.answer("доставка", ARTICLES, "ru")
    assert answer.refused and answer.reason in {"unavailable", "timeout"}


def test_no_articles_no_request(server, provider):
    answer = provider.answer("доставка", [], "ru")
    assert answer.refused and answer.reason == "no_articles" and server.requests == []


def test_english_prompt_and_key_never_logged(server, provider, caplog):
    caplog.set_level(logging.DEBUG)
    server.status = 503
    provider.answer("how much is delivery", ARTICLES, "en")
    assert "English" in server.requests[0]["body"]["messages"][0]["content"]
    assert SECRET not in caplog.text and SECRET not in repr(provider)


def test_settings(monkeypatch, server):
    from otklik.platform.config import get_settings

    monkeypatch.delenv("OTKLIK_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    assert provider_from_settings() is None
    monkeypatch.setenv("OTKLIK_LLM_BASE_URL", server.url)
    monkeypatch.setenv("OTKLIK_LLM_API_KEY", SECRET)
    monkeypatch.setenv("OTKLIK_LLM_MODEL", "yandexgpt-lite")
    get_settings.cache_clear()
    try:
        p = provider_from_settings()
        assert p is not None
        server.completion("Ответ [1].")
        assert p.answer("доставка", ARTICLES, "ru").citations == ["delivery-cost-times"]
        assert server.requests[-1]["body"]["model"] == "yandexgpt-lite"
        assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert SECRET not in repr(get_settings())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
