"""Replies to Telegram: text (split at Telegram's 4096 characters), files (photos as photos), and the
account's quick-reply buttons as an inline keyboard. Vendor errors become outbox decisions:
429 -> retry after `parameters.retry_after`; 403 (blocked by the user) and other refusals -> dead letter."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from otklik.channels.delivery import OutgoingFile, conversation_account, files_of, send_parts
from otklik.channels.models import ChannelAccount
from otklik.channels.telegram import client
from otklik.conversations.outbox import DeliveryError, OutboundMessage

TEXT_LIMIT = 4096
PHOTO_LIMIT = 10 * 1_048_576
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at paragraph or line breaks (or spaces) so each piece fits Telegram's limit."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def keyboard(labels: list[str]) -> InlineKeyboardMarkup | None:
    labels = [label for label in labels if label.strip()]
    if not labels:
        return None
    rows = [[InlineKeyboardButton(label, callback_data=label) for label in labels[i:i + 2]]
            for i in range(0, len(labels), 2)]
    return InlineKeyboardMarkup(rows)


def delivery_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, RetryAfter):
        wait = client.seconds(exc.retry_after)
        return DeliveryError(f"Telegram flood control (429): retry in {wait:g} s", retry_after=wait)
    if isinstance(exc, InvalidToken):
        return DeliveryError("Telegram rejected the bot token; fix it in Settings → Channels", permanent=True)
    if isinstance(exc, Forbidden):
        return DeliveryError(f"the customer blocked the bot or never started it (403): {exc.message}",
                             permanent=True)
    if isinstance(exc, BadRequest | ChatMigrated):
        return DeliveryError(f"Telegram refused the message: {exc}", permanent=True)
    if isinstance(exc, NetworkError | TimeoutError):
        return DeliveryError(f"Telegram unreachable: {type(exc).__name__}")
    if isinstance(exc, TelegramError):
        return DeliveryError(f"Telegram error: {exc}")
    raise exc


class TelegramSender:
    def __init__(self, account: ChannelAccount, config: dict[str, Any], token: str):
        self.account = account
        self.quick_replies = [str(q) for q in config.get("quick_replies") or []]
        self.token = token
        self.base = client.api_base(config)

    def _call(self, make: Callable[[], Any]) -> str | None:
        try:
            sent = client.run(make())
        except Exception as exc:
            raise delivery_error(exc) from None
        return str(sent.message_id) if getattr(sent, "message_id", None) is not None else None

    def send(self, message: OutboundMessage) -> str | None:
        other = conversation_account(message, self.account)
        if other is not None:  # the customer wrote to another of the workspace's bots: answer from that one
            return TelegramSender(other[0], other[1], other[2].get("bot_token", "")).send(message)
        if not self.token:
            raise DeliveryError("the Telegram bot has no token; set it in Settings → Channels", permanent=True)
        chat_ids = [value for kind, value in message.recipients if kind == "telegram"]
        if not chat_ids:
            raise DeliveryError("the customer has no Telegram identity to write to", permanent=True)
        chat_id = int(chat_ids[-1])
        bot = client.bot_for(self.token, self.base)
        texts = split_text(message.text)
        files = files_of(message)
        markup = keyboard(self.quick_replies)
        parts: list[Callable[[], str | None]] = []
        for i, piece in enumerate(texts):
            keys = markup if i == len(texts) - 1 and not files else None
            parts.append(partial(self._call, partial(bot.send_message, chat_id, piece, reply_markup=keys)))
        for i, file in enumerate(files):
            keys = markup if i == len(files) - 1 else None
            parts.append(partial(self._call, partial(self._send_file, bot, chat_id, file, keys)))
        if not parts:
            raise DeliveryError("the reply has neither text nor files", permanent=True)
        return send_parts(self.account, message, parts)

    @staticmethod
    def _send_file(bot: Any, chat_id: int, file: OutgoingFile, markup: InlineKeyboardMarkup | None) -> Any:
        try:
            data = file.path.read_bytes()
        except OSError:
            raise DeliveryError(f"the file {file.filename} is missing from storage", permanent=True) from None
        if file.content_type in PHOTO_TYPES and file.size <= PHOTO_LIMIT:
            return bot.send_photo(chat_id, InputFile(data, filename=file.filename), reply_markup=markup)
        return bot.send_document(chat_id, InputFile(data, filename=file.filename), reply_markup=markup)
