"""Reply drafts: what an agent typed in a conversation's reply box and has not sent yet, one per agent and
conversation, kept on the server so it survives a reload or another device (the phrase checker marks it again
when the agent comes back). Sending a reply or a note clears the sender's draft. Never sends anything."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.service import Actor
from otklik.conversations.service import MAX_BODY_CHARS, get_conversation
from otklik.platform.db import Base, UTCDateTime, utcnow
from otklik.platform.errors import field_error


class ReplyDraft(Base):
    __tablename__ = "reply_drafts"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def get_draft(session: Session, actor: Actor, conversation_id: int) -> str:
    if actor.user_id is None:
        return ""
    row = session.get(ReplyDraft, (conversation_id, actor.user_id))
    return row.text if row is not None and row.workspace_id == actor.workspace_id else ""


def save_draft(session: Session, actor: Actor, conversation_id: int, text: str) -> None:
    """Keeps the agent's unsent text (an empty text removes the draft)."""
    if actor.user_id is None:
        return
    if len(text) > MAX_BODY_CHARS:
        raise field_error("text", f"at most {MAX_BODY_CHARS} characters")
    get_conversation(session, actor, conversation_id)  # 404 for another workspace's conversation
    row = session.get(ReplyDraft, (conversation_id, actor.user_id))
    if not text.strip():
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = ReplyDraft(conversation_id=conversation_id, user_id=actor.user_id, workspace_id=actor.workspace_id)
        session.add(row)
    row.text = text
    row.updated_at = utcnow()


def clear_draft(session: Session, actor: Actor, conversation_id: int) -> None:
    if actor.user_id is not None:
        session.execute(delete(ReplyDraft).where(ReplyDraft.conversation_id == conversation_id,
                                                 ReplyDraft.user_id == actor.user_id))


def drafts_of(session: Session, actor: Actor) -> dict[int, str]:
    """The agent's drafts by conversation id."""
    if actor.user_id is None:
        return {}
    rows = session.execute(select(ReplyDraft.conversation_id, ReplyDraft.text).where(
        ReplyDraft.user_id == actor.user_id, ReplyDraft.workspace_id == actor.workspace_id))
    return {cid: text for cid, text in rows}
