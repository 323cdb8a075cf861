"""The assistant's signals on a conversation: sentiment and urgency, which the inbox shows in red.

Only stores the signals and announces the change; deciding them is the assistant's job, never this module's.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import Conversation
from otklik.conversations.service import conversation_event_data
from otklik.platform.db import utcnow
from otklik.platform.errors import field_error
from otklik.platform.events import Event, after_commit

SENTIMENTS = ("negative", "neutral", "positive")


def set_signals(session: Session, conversation: Conversation, *, sentiment: str | None = None,
                urgent: bool | None = None, actor: Actor | None = None) -> bool:
    """Update sentiment and/or urgency (None leaves a signal as it is); True when something changed.

    A change is audited (as the assistant unless an actor is given) and announced as
    `conversation.updated` after commit, so open inboxes repaint the row.
    """
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise field_error("sentiment", f"one of: {', '.join(SENTIMENTS)}")
    changed: dict[str, tuple[object, object]] = {}
    if sentiment is not None and sentiment != conversation.sentiment:
        changed["sentiment"] = (conversation.sentiment, sentiment)
        conversation.sentiment = sentiment
    if urgent is not None and bool(urgent) != bool(conversation.urgent):
        changed["urgent"] = (bool(conversation.urgent), bool(urgent))
        conversation.urgent = bool(urgent)
    if not changed:
        return False
    conversation.version = (conversation.version or 0) + 1
    conversation.updated_at = utcnow()
    who = actor or Actor.system(conversation.workspace_id, kind="assistant")
    record_audit(session, who, entity_type="conversation", entity_id=conversation.id, action="signals_changed",
                 before={k: v[0] for k, v in changed.items()}, after={k: v[1] for k, v in changed.items()})
    data = {**conversation_event_data(conversation), "sentiment": conversation.sentiment,
            "urgent": bool(conversation.urgent), "changed": sorted(changed)}
    after_commit(session, Event("conversation.updated", conversation.workspace_id, data))
    return True
