"""Conversations (the ticket), messages, attachments, status/priority/assignment rules and the outbox."""
