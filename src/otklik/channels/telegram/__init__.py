"""Telegram bot channel: webhook (secret token header) or long polling, media, contacts, inline buttons."""
