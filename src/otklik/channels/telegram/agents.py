"""Agents in the workspace's Telegram bot: linking an agent's own chat with a one-time code, notifications sent
to it, and an agent's reply to a notification posted into that conversation.

The webhook asks `handle_agent_message` first: a message from a linked agent's chat, or one carrying a live
link code, is the agent's and never becomes a customer message. Anything else goes on as a customer's.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session
from telegram import LinkPreviewOptions, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, TelegramError

from otklik.accounts.models import User
from otklik.accounts.service import actor_for
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.channels.telegram import client
from otklik.conversations.service import reply
from otklik.notifications import service as notifications
from otklik.platform.db import session_scope
from otklik.platform.errors import DomainError
from otklik.platform.events import after_commit
from otklik.platform.jobs import task

log = logging.getLogger(__name__)

ANSWERS = {
    "ru": {"linked": "Уведомления подключены",
           "bad_code": "Код не подошёл или устарел. Получите новый в Отклике: Настройки → Мой профиль.",
           "stopped": "Уведомления отключены. Подключить снова можно в профиле Отклика.",
           "help": "Это чат уведомлений Отклика. Чтобы ответить клиенту, ответьте (Reply) на уведомление "
                   "об одном обращении. /stop — отключить уведомления.",
           "one": "Ответить можно на уведомление об одном обращении, не на сводку.",
           "denied": "Это обращение вам недоступно.",
           "posted": "Ответ отправлен в обращение #{number}.",
           "refused": "Ответ не отправлен: {why}"},
    "en": {"linked": "Notifications are on",
           "bad_code": "The code is wrong or has expired. Get a new one in Otklik: Settings → My profile.",
           "stopped": "Notifications are off. Link again from your Otklik profile.",
           "help": "This is the Otklik notifications chat. To answer a customer, reply to a notification "
                   "about one conversation. /stop turns notifications off.",
           "one": "Reply to a notification about one conversation, not to a digest.",
           "denied": "You cannot open this conversation.",
           "posted": "Reply posted to conversation #{number}.",
           "refused": "The reply was not posted: {why}"},
}


def _answer(session: Session, account: ChannelAccount, chat_id: str, lang: str, key: str, **values: str) -> None:
    text = ANSWERS[lang][key].format(**values)
    account_id = account.id
    after_commit(session, lambda: send_text(account_id, chat_id, text))


def _lang_of(message: Message, user: User | None = None) -> str:
    if user is not None:
        return "en" if user.language == "en" else "ru"
    code = (message.from_user.language_code if message.from_user else None) or "ru"
    return "en" if code.startswith("en") else "ru"


def handle_agent_message(session: Session, account: ChannelAccount, message: Message) -> str | None:
    """"linked", "unlinked", "replied", "agent" (answered, not stored) or "bad_code" when the message is an
    agent's; None when it is a customer's (the webhook goes on as before)."""
    chat_id = str(message.chat.id)
    text = (message.text or "").strip()
    link = notifications.link_for_chat(session, account.id, chat_id)
    code = notifications.normalise_code(text) if text else None
    if code is not None:
        user = notifications.redeem_link_code(session, account_id=account.id, workspace_id=account.workspace_id,
                                              chat_id=chat_id, code=code,
                                              username=message.from_user.username if message.from_user else None)
        if user is not None:
            _answer(session, account, chat_id, _lang_of(message, user), "linked")
            return "linked"
        if link is None:
            _answer(session, account, chat_id, _lang_of(message), "bad_code")
            return "bad_code"
    if link is None:
        return None
    user = session.get(User, link.user_id)
    lang = _lang_of(message, user)
    if text.lower() in ("/stop", "/unlink"):
        notifications.unlink_chat(session, account.id, chat_id)
        _answer(session, account, chat_id, lang, "stopped")
        return "unlinked"
    replied = message.reply_to_message
    if replied is None or not text or user is None:
        _answer(session, account, chat_id, lang, "help")
        return "agent"
    rows = notifications.notification_replied_to(session, link, replied.message_id)
    conversation_ids = {row.conversation_id for row in rows if row.conversation_id is not None}
    if len(conversation_ids) != 1:
        _answer(session, account, chat_id, lang, "one" if len(conversation_ids) > 1 else "help")
        return "agent"
    conversation_id = conversation_ids.pop()
    if not notifications.may_see(session, user, conversation_id):
        _answer(session, account, chat_id, lang, "denied")
        return "agent"
    try:
        with session.begin_nested():
            posted = reply(session, actor_for(user), conversation_id, text=text)
    except DomainError as exc:
        _answer(session, account, chat_id, lang, "refused", why=exc.message)
        return "agent"
    from otklik.conversations.models import Conversation

    conversation = session.get(Conversation, posted.conversation_id)
    _answer(session, account, chat_id, lang, "posted", number=str(conversation.number if conversation else ""))
    return "replied"


def _bot(account_id: int) -> object:
    with session_scope(write=False) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None or not account.enabled:
            raise notifications.DeliveryRefused("the Telegram bot is gone or disabled")
        token = decrypt_secrets(account.secret).get("bot_token", "")
        base = client.api_base(account.config or {})
    return client.bot_for(token, base)


def send_to_agent(account_id: int, chat_id: str, text: str) -> int:
    """Plain text (no parse mode: a customer's words need no escaping), link previews off."""
    bot = _bot(account_id)
    try:
        sent = client.run(bot.send_message(  # type: ignore[attr-defined]
            int(chat_id), text[:4096], link_preview_options=LinkPreviewOptions(is_disabled=True)), 30)
    except (Forbidden, BadRequest, ChatMigrated, InvalidToken) as exc:
        raise notifications.DeliveryRefused(f"Telegram: {exc.message}") from None
    return int(sent.message_id)


@task(retries=2, retry_delay=5)
def send_text(account_id: int, chat_id: str, text: str) -> bool:
    """The bot's short answer to an agent («Уведомления подключены»)."""
    try:
        send_to_agent(account_id, chat_id, text)
    except notifications.DeliveryRefused as exc:
        log.info("answer to an agent's chat refused: %s", exc)
        return False
    except (TelegramError, TimeoutError):
        raise  # a retry may pass
    return True


_names: dict[int, tuple[float, str | None]] = {}
NAME_TTL = 600.0  # seconds a bot's @username is remembered (a failed getMe: a tenth of it)


def bot_username(account_id: int) -> str | None:
    """The bot's @username from getMe (3 s at most, remembered), for the profile's t.me link."""
    now = time.monotonic()
    cached = _names.get(account_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        me = client.run(_bot(account_id).get_me(), 3)  # type: ignore[attr-defined]
        name: str | None = me.username or None
        _names[account_id] = (now + NAME_TTL, name)
    except (TelegramError, TimeoutError, notifications.DeliveryRefused):
        name = None
        _names[account_id] = (now + NAME_TTL / 10, None)
    return name


notifications.register_sender("telegram", send_to_agent)
notifications.register_bot_name("telegram", bot_username)
