"""Feedback: CSAT / CES / NPS surveys, sent in the customer's own channel after a conversation is solved, and
their answers (a low score opens a follow-up task). Never writes a conversation's fields."""
