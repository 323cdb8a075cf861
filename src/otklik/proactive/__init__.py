"""Proactive messages: the business writes first (order events, carts, replenishment, campaigns)."""
