"""Agent notifications: Telegram (and the browser), per agent choices; see docs/notifications.md."""
