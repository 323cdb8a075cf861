"""Agent notifications run against the same local stand-in of the Telegram Bot API as the Telegram channel."""

from __future__ import annotations

from tests.channels.conftest import telegram_api  # noqa: F401  (the fixture)
