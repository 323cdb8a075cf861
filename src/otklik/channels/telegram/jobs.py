"""Telegram background jobs: answering button presses (stops the button's spinner in the customer's app)."""

from __future__ import annotations

import logging

from telegram.error import TelegramError

from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.channels.telegram import client
from otklik.platform.db import session_scope
from otklik.platform.jobs import task

log = logging.getLogger(__name__)


@task(retries=1, retry_delay=2)
def answer_callback(account_id: int, callback_query_id: str) -> bool:
    with session_scope(write=False) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None:
            return False
        token = decrypt_secrets(account.secret).get("bot_token", "")
        base = client.api_base(account.config or {})
    try:
        return bool(client.run(client.bot_for(token, base).answer_callback_query(callback_query_id), 15))
    except (TelegramError, TimeoutError) as exc:  # an old query (>15 min) can no longer be answered: harmless
        log.info("answerCallbackQuery failed: %s", type(exc).__name__)
        return False
