"""Long polling (getUpdates) for bots that cannot receive webhooks (no public address).

The offset is stored with the account and moved forward in the same transaction that stores each update,
so a crash re-reads at most the update in flight, which its `update_id` then de-duplicates. A lease in the
account's state lets only one process poll a bot at a time (two getUpdates on one bot make Telegram answer
409 to both).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session
from telegram.error import TelegramError

from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.channels.telegram import client
from otklik.channels.telegram.inbound import MALFORMED, handle_update, parse_update
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import DomainError

log = logging.getLogger(__name__)
KIND = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def polling_account_ids() -> list[int]:
    with session_scope(write=False) as session:
        rows = session.execute(select(ChannelAccount.id, ChannelAccount.config).where(
            ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id)).all()
    return [r.id for r in rows if (r.config or {}).get("mode") == "polling"]


def _take_lease(account_id: int, seconds: float) -> tuple[str, str, int] | None:
    def work(session: Session) -> tuple[str, str, int] | None:
        account = session.scalar(select(ChannelAccount).where(ChannelAccount.id == account_id).with_for_update())
        if account is None or not account.enabled or (account.config or {}).get("mode") != "polling":
            return None
        state = dict(account.state or {})
        now = utcnow()
        until = state.get("poll_until")
        if state.get("poll_owner") not in (None, _owner) and until and dt.datetime.fromisoformat(until) > now:
            return None
        state.update(poll_owner=_owner, poll_until=(now + dt.timedelta(seconds=seconds)).isoformat())
        account.state = state
        token = decrypt_secrets(account.secret).get("bot_token", "")
        return token, client.api_base(account.config or {}), int(state.get("offset") or 0)

    return run_transaction(work)


def _note_error(account_id: int, error: str | None) -> None:
    def work(session: Session) -> None:
        account = session.get(ChannelAccount, account_id)
        if account is not None and (account.state or {}).get("poll_error") != error:
            account.state = {**(account.state or {}), "poll_error": error}

    run_transaction(work)


def poll_account(account_id: int, timeout: int = 0) -> int:
    """One getUpdates round for one bot; returns how many updates it stored (duplicates included)."""
    lease = _take_lease(account_id, timeout + 40)
    if lease is None:
        return 0
    token, base, offset = lease
    if not token:
        return 0
    bot = client.bot_for(token, base)
    try:
        updates = client.run(bot.get_updates(offset=offset or None, timeout=timeout, allowed_updates=ALLOWED_UPDATES),
                             timeout + 45)
    except (TelegramError, TimeoutError) as exc:
        message = getattr(exc, "message", "") or type(exc).__name__
        log.warning("telegram getUpdates failed for account %s: %s", account_id, type(exc).__name__)
        _note_error(account_id, f"getUpdates: {message}"[:300])
        return 0
    count = 0
    for update in updates:
        data = update.to_dict()

        def work(session: Session, data: dict = data, update_id: int = update.update_id) -> None:
            account = session.get(ChannelAccount, account_id)
            if account is None:
                return
            try:
                with session.begin_nested():
                    handle_update(session, account, parse_update(data), data, token=token)
            except (*MALFORMED, DomainError) as exc:  # a retry cannot fix it: skip it, do not stall the bot
                log.warning("telegram update %s skipped: %s", update_id, type(exc).__name__)
            account.state = {**(account.state or {}), "offset": update_id + 1, "poll_error": None}

        run_transaction(work)
        count += 1
    if not updates:
        _note_error(account_id, None)
    return count


def poll_all() -> None:
    """The background poller: every polling bot, one round each (a long poll when there is only one)."""
    ids = polling_account_ids()
    for account_id in ids:
        poll_account(account_id, timeout=client.POLL_TIMEOUT if len(ids) == 1 else 0)
