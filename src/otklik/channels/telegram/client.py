"""The Telegram Bot API through python-telegram-bot, from synchronous code (outbox workers, pollers, admin).

PTB is asynchronous; one event loop per process runs in a daemon thread and every call is submitted to it.
Bots are cached per (token, API base), so their HTTP connection pools are reused across deliveries. The API
base is configurable per account (a self-hosted Bot API server, or a local stand-in in tests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from telegram import Bot
from telegram.request import HTTPXRequest

DEFAULT_API = "https://api.telegram.org"
POLL_TIMEOUT = 20          # seconds a getUpdates long poll may wait for updates
CALL_TIMEOUT = 60.0        # seconds any one call may take in total (uploads included)

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_bots: dict[tuple[str, str], Bot] = {}


def _get_loop() -> asyncio.AbstractEventLoop:
    import os

    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="otklik-telegram", daemon=True).start()
            started.wait(5)
            _loop, _loop_pid = loop, os.getpid()
            _bots.clear()  # their connection pools belonged to the old loop
        return _loop


def run(coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
    """Run one coroutine on the Telegram loop and wait for its result (re-raising its exception)."""
    future = asyncio.run_coroutine_threadsafe(coro, _get_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


def api_base(config: dict[str, Any]) -> str:
    return str(config.get("api_base_url") or DEFAULT_API).rstrip("/")


def bot_for(token: str, base: str) -> Bot:
    _get_loop()
    key = (token, base)
    with _lock:
        bot = _bots.get(key)
        if bot is None:
            bot = Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
                      request=HTTPXRequest(connection_pool_size=16, connect_timeout=5.0, read_timeout=20.0,
                                           write_timeout=30.0, pool_timeout=10.0),
                      get_updates_request=HTTPXRequest(connection_pool_size=2, connect_timeout=5.0,
                                                       read_timeout=POLL_TIMEOUT + 10.0))
            _bots[key] = bot
        return bot


def seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def bot_id(token: str) -> str:
    """The bot's numeric id is the token's first part ("123456:ABC..." -> "123456")."""
    return token.partition(":")[0]
