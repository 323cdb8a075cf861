"""Viber bot channel (Viber REST Bot API)."""
