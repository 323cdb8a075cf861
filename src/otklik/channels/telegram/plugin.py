"""The Telegram bot channel plugin: settings, webhook, long polling, sender, connection test.

Webhook: POST /api/v1/channels/telegram/webhook/<account token>, registered with setWebhook together with a
generated secret that Telegram sends back in `X-Telegram-Bot-Api-Secret-Token` (compared in constant time).
Answers: 200 for every update stored, ignored or seen before; 400 for a body that is not an update (a retry
cannot fix it); 401 for a wrong secret; 404 for an unknown or disabled account; 503 when the database is
busy (Telegram retries, and the update_id de-duplicates).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from telegram.error import InvalidToken, TelegramError

from otklik.channels.base import (
    ChannelPlugin,
    VendorError,
    clean_api_base,
    clean_button_labels,
)
from otklik.channels.inbound_kit import handle_bot_webhook
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.channels.telegram import agents as _agents  # noqa: F401  (registers the agents' notification sender)
from otklik.channels.telegram import client, inbound, polling
from otklik.channels.telegram.outbound import TelegramSender
from otklik.conversations import reply_checks
from otklik.platform.errors import field_error

KIND = "telegram"
# Bot API «sendDocument»: files up to 50 MB (photos 10 MB) through multipart upload
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    max_bytes=50 * 1_048_576, max_files=10, by_type=(("image/", 10 * 1_048_576),),
    note="Telegram Bot API: documents up to 50 MB, photos up to 10 MB"))
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105  (a header name)
router = APIRouter(tags=["channels"])


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["webhook", "polling"] = Field(
        default="webhook", title="Способ получения сообщений",
        description="webhook — Telegram сам присылает сообщения (нужен публичный HTTPS-адрес); "
                    "polling — Отклик сам забирает их (работает за NAT, без публичного адреса)")
    api_base_url: str = Field(default=client.DEFAULT_API, max_length=300, title="Адрес Bot API",
                              description="Менять только для собственного сервера Bot API")
    quick_replies: list[str] = Field(default_factory=list, max_length=8, title="Кнопки быстрых ответов",
                                     description="Показываются под каждым ответом; нажатие приходит как сообщение")

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return clean_api_base(value, "https://api.telegram.org")

    @field_validator("quick_replies")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        return clean_button_labels(values, lambda label: "Telegram's 64 bytes (about 30 Cyrillic letters)"
                                   if len(label.encode()) > 64 else None)


def _token_ok(token: str) -> bool:
    bot_id, _, rest = token.partition(":")
    return bot_id.isdigit() and 20 <= len(rest) <= 100 and all(c.isalnum() or c in "_-" for c in rest)


class TelegramPlugin(ChannelPlugin):
    kind = KIND
    title = "Telegram"
    description = "Бот Telegram: текст, фото, документы, голосовые, стикеры, контакты; ответы с файлами и кнопками"
    icon = "TG"
    Config = TelegramConfig
    secret_fields = ("bot_token", "webhook_secret")
    secret_titles: ClassVar[dict[str, str]] = {"bot_token": "Токен бота (от @BotFather)", "webhook_secret": "Секрет вебхука (создаётся сам)"}
    generated_secrets = ("webhook_secret",)
    has_webhook = True
    router = router
    pollers = (polling.poll_all,)
    poll_seconds = 1.0

    def check_secrets(self, secrets: dict[str, str]) -> None:
        token = secrets.get("bot_token", "")
        if not token:
            raise field_error("secrets.bot_token", "is required: create a bot with @BotFather and paste its token")
        if not _token_ok(token):
            raise field_error("secrets.bot_token", "looks like 123456789:AA… (digits, a colon, then letters)")

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> TelegramSender:
        return TelegramSender(account, config, secrets.get("bot_token", ""))

    def _bot(self, config: dict[str, Any], secrets: dict[str, str]) -> Any:
        return client.bot_for(secrets.get("bot_token", ""), client.api_base(config))

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        try:
            me = client.run(self._bot(config, secrets).get_me(), 20)
        except InvalidToken:
            raise VendorError("Telegram не принял токен бота: проверьте его в @BotFather") from None
        except (TelegramError, TimeoutError) as exc:
            raise VendorError(f"Telegram не ответил: {getattr(exc, 'message', '') or type(exc).__name__}") from None
        return f"Бот @{me.username} ({me.first_name}) на связи"

    def connect_webhook(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str],
                        url: str) -> str:
        bot = self._bot(config, secrets)
        try:
            if config.get("mode") == "polling":
                client.run(bot.delete_webhook(drop_pending_updates=False), 20)
                return "Вебхук снят: сообщения забираются опросом (getUpdates)"
            client.run(bot.set_webhook(url, secret_token=secrets.get("webhook_secret"),
                                       allowed_updates=polling.ALLOWED_UPDATES, max_connections=40), 20)
        except InvalidToken:
            raise VendorError("Telegram не принял токен бота: проверьте его в @BotFather") from None
        except (TelegramError, TimeoutError) as exc:
            raise VendorError(f"Telegram отказал: {getattr(exc, 'message', '') or type(exc).__name__}") from None
        return f"Вебхук установлен: {url}"

    def process_pending(self, event_id: int) -> None:
        inbound.process_pending(event_id)

    def on_saved(self, session: Session, account: ChannelAccount) -> None:
        state = dict(account.state or {})
        try:
            bot_id = client.bot_id(decrypt_secrets(account.secret).get("bot_token", ""))
        except ValueError:
            bot_id = ""
        if state.get("bot_id") != bot_id:  # another bot: its updates start from its own beginning
            state = {"bot_id": bot_id}
        account.state = state


PLUGIN = TelegramPlugin()


def _handle(token: str, secret_header: str, body: bytes) -> JSONResponse:
    def handle(session: Session, account: ChannelAccount, data: dict[str, Any], secrets: dict[str, str]) -> str:
        update = inbound.parse_update(data)
        return inbound.handle_update(session, account, update, data, token=secrets.get("bot_token", ""))

    return handle_bot_webhook(KIND, "Telegram", "X-Telegram-Bot-Api-Secret-Token", token, secret_header, body,
                              handle, inbound.InvalidUpdate, inbound.MALFORMED)


@router.post("/channels/telegram/webhook/{token}", include_in_schema=False)
async def telegram_webhook(token: str, request: Request) -> JSONResponse:
    body = await request.body()
    return await run_in_threadpool(_handle, token, request.headers.get(SECRET_HEADER, ""), body)
