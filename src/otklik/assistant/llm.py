"""The optional LLM behind one small interface: write an answer from the retrieved articles only, with [n]
citations, or refuse.

`OpenAICompatibleProvider` speaks the OpenAI chat-completions API (`POST {base_url}/chat/completions`), which
vLLM, Ollama, LM Studio and the YandexGPT / GigaChat gateways all serve. It never raises to the caller: a
time-out, an HTTP error, a rate limit, a malformed reply, an answer without a valid citation or the model's own
"NO_ANSWER" all come back as `LLMAnswer(refused=True, reason=...)`, and the assistant then hands the
conversation to a person. The API key is sent as a bearer token and never logged.

Settings: OTKLIK_LLM_BASE_URL (unset: no LLM), OTKLIK_LLM_API_KEY, OTKLIK_LLM_MODEL, OTKLIK_LLM_TIMEOUT.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

NO_ANSWER = "NO_ANSWER"
MAX_ARTICLE_CHARS = 6000
MAX_QUESTION_CHARS = 2000
_CITATION = re.compile(r"\[(\d{1,3})\]")

ArticleRef = tuple[Any, str, str]  # (id, title, body)


@dataclass(frozen=True)
class LLMAnswer:
    text: str
    citations: list[Any] = field(default_factory=list)  # ids of the cited articles, in order of first citation
    refused: bool = False
    reason: str = ""  # why it refused: no_articles, no_answer, no_citation, invalid_citation, timeout, ...


class LLMProvider(Protocol):
    def answer(self, question: str, articles: Sequence[ArticleRef], language: str) -> LLMAnswer: ...


PROMPTS = {
    "ru": ("Ты — оператор службы поддержки интернет-магазина. Отвечай клиенту по-русски, вежливо и коротко, "
           "ТОЛЬКО на основе статей базы знаний ниже. После каждого утверждения ставь ссылку на статью в "
           "квадратных скобках, например [1]. Не придумывай факты, цены, сроки и обещания, которых нет в "
           "статьях. Если в статьях нет ответа на вопрос, или вопрос требует действий сотрудника (проверить "
           "конкретный заказ, вернуть деньги, разобрать жалобу), ответь ровно одним словом: NO_ANSWER."),
    "en": ("You are a support agent of an online store. Answer the customer in English, politely and briefly, "
           "ONLY from the knowledge-base articles below. After each statement cite the article in square "
           "brackets, e.g. [1]. Never invent facts, prices, times or promises that the articles do not state. "
           "If the articles do not answer the question, or it needs a person to act (check a particular order, "
           "refund money, handle a complaint), reply with exactly one word: NO_ANSWER."),
}


def build_messages(question: str, articles: Sequence[ArticleRef], language: str) -> list[dict[str, str]]:
    system = PROMPTS.get(language, PROMPTS["en"])
    parts = []
    for n, (_, title, body) in enumerate(articles, 1):
        parts.append(f"[{n}] {title}\n{body[:MAX_ARTICLE_CHARS]}")
    label = "Статьи" if language == "ru" else "Articles"
    asked = "Вопрос клиента" if language == "ru" else "Customer's question"
    user = f"{label}:\n\n" + "\n\n".join(parts) + f"\n\n{asked}:\n{question[:MAX_QUESTION_CHARS]}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_reply(content: str, articles: Sequence[ArticleRef]) -> LLMAnswer:
    """Turn the model's text into an answer with citations, or a refusal."""
    text = content.strip()
    if not text:
        return LLMAnswer("", refused=True, reason="empty")
    if NO_ANSWER in text.upper().replace(" ", "_"):
        return LLMAnswer("", refused=True, reason="no_answer")
    numbers = [int(n) for n in _CITATION.findall(text)]
    if not numbers:
        return LLMAnswer(text, refused=True, reason="no_citation")
    if any(n < 1 or n > len(articles) for n in numbers):
        return LLMAnswer(text, refused=True, reason="invalid_citation")
    cited: list[Any] = []
    for n in numbers:
        ident = articles[n - 1][0]
        if ident not in cited:
            cited.append(ident)
    return LLMAnswer(text, citations=cited)


class OpenAICompatibleProvider:
    """An `LLMProvider` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, base_url: str, *, model: str = "default", api_key: str | None = None,
                 timeout: float = 20.0, max_tokens: int = 600, transport: httpx.BaseTransport | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers, transport=transport,
                                    follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleProvider(url={self.url!r}, model={self.model!r})"

    def answer(self, question: str, articles: Sequence[ArticleRef], language: str) -> LLMAnswer:
        if not articles:
            return LLMAnswer("", refused=True, reason="no_articles")
        payload = {"model": self.model, "messages": build_messages(question, articles, language),
                   "temperature": 0, "max_tokens": self.max_tokens, "stream": False}
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.TimeoutException:
            return self._refuse("timeout")
        except httpx.HTTPError as exc:
            return self._refuse("unavailable", type(exc).__name__)
        if response.status_code == 429:
            return self._refuse("rate_limited")
        if response.status_code >= 400:
            return self._refuse(f"http_{response.status_code}")
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError, json.JSONDecodeError):
            return self._refuse("malformed_response")
        if choice.get("finish_reason") == "content_filter":
            return self._refuse("content_filter")
        return parse_reply(content, articles)

    def _refuse(self, reason: str, detail: str = "") -> LLMAnswer:
        log.warning("LLM answer refused: %s %s (model %s)", reason, detail, self.model)
        return LLMAnswer("", refused=True, reason=reason)


def provider_from_settings() -> OpenAICompatibleProvider | None:
    """The configured provider, or None when OTKLIK_LLM_BASE_URL is not set."""
    from otklik.platform.config import get_settings

    settings = get_settings()
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAICompatibleProvider(settings.llm_base_url, model=settings.llm_model, api_key=key,
                                    timeout=settings.llm_timeout)
