"""Tables of automation: rules, their per-conversation run log, and macros."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class Rule(Base):
    __tablename__ = "automation_rules"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),
                      Index("ix_automation_rules_ws_trigger", "workspace_id", "trigger", "enabled"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # conversation_created / customer_message / status_changed / sla_warning / sla_breached / tag_added /
    # assistant_handoff / time
    trigger: Mapped[str] = mapped_column(String(24))
    # the time trigger: {"status": "pending", "hours": 72}; others: {}
    trigger_options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # [{"field": "text", "op": "contains", "value": ["юрист", "суд"]}, …]: all must hold
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # [{"type": "set_priority", "value": "urgent"}, {"type": "webhook", "url": …, "secret_enc": …}, …]
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RuleRun(Base):
    """One evaluation of one rule for one conversation: shown in the conversation view."""

    __tablename__ = "automation_rule_runs"
    __table_args__ = (Index("ix_rule_runs_conv", "conversation_id", "id"),
                      Index("ix_rule_runs_rule_conv", "rule_id", "conversation_id", "trigger"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("automation_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(120), default="")
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(24))
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    actions_done: Mapped[list[str]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Macro(Base):
    __tablename__ = "macros"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
