"""Read helpers for pages that show many conversations at once (search results, customer history):
one query for a batch of ids, never one per row. Reads only; every write goes through service.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.conversations.models import Conversation


def conversations_by_ids(session: Session, actor: Actor, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
    if not conversation_ids:
        return {}
    return {c.id: c for c in session.scalars(select(Conversation).where(
        Conversation.workspace_id == actor.workspace_id, Conversation.id.in_(set(conversation_ids))))}
