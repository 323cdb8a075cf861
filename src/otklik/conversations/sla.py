"""SLA: policies (which conversations, which targets) and each conversation's timers, counted on business
calendars. The exact definitions are in docs/service-levels.md; in short:

- **first response**: from the conversation's first customer message to the first public reply of a *person*
  (an agent). The assistant's messages, internal notes and automatic acknowledgements never stop it.
- **next response**: from a customer message that starts a new wait (nobody was waiting on us before it, and
  the first response was given) to the next public reply of a person. A re-opened conversation starts it;
  first response is never restarted.
- **resolution**: from the first customer message to «solved». «Pending» (waiting on the customer) pauses it
  and next response; a customer reply resumes them. Solving stops it; re-opening resumes it where it was.
- Targets are in business minutes on a calendar (the policy's, else the conversation team's, else the
  workspace default) or in calendar minutes. Paused time is not counted: a timer keeps `elapsed_minutes` and
  `running_since`, and its due time is `add(running_since, target - elapsed)`.
- The first enabled policy, by position, whose conditions all hold applies. A change of priority, channel,
  team or category re-evaluates it; the targets then count from the original start (elapsed time kept) and the
  change is audited.
- States: running, paused, met (stopped in time), breached (past due: set by the sweep, or on stopping late),
  stopped (no longer applies: solved before a next response was due, a policy without that target).

Why here and not in a `service_levels` domain above: the timers change in the same transaction as the message
or status change that moves them (no timer lost or started twice when a process dies between the two), and
only `conversations.service` writes those. Routing and rules, which act on conversations, sit above.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.calendars.engine import CalendarRangeError
from otklik.calendars.models import Calendar
from otklik.calendars.service import calendar_for, engine_of
from otklik.conversations.models import Conversation, Priority, Status
from otklik.customers.models import Customer
from otklik.platform.db import Base, JSONType, UTCDateTime, affected, aware, utcnow
from otklik.platform.errors import NotFound, field_error

FIRST, NEXT, RESOLUTION = "first_response", "next_response", "resolution"
KINDS = (FIRST, NEXT, RESOLUTION)
LEGAL_PREFIX = "legal_"  # a consumer-law deadline's timer: "legal_<obligation key>" (guardrails sets them)
RUNNING, PAUSED, MET, BREACHED, STOPPED = "running", "paused", "met", "breached", "stopped"
MAX_TARGET_MINUTES = 366 * 24 * 60
MAX_POLICIES = 100
DEFAULT_WARN_SHARE = 0.75  # warn when three quarters of the target have passed
CONDITION_KEYS = {"channels", "priorities", "categories", "team_ids", "customer_attribute", "languages",
                  "loyalty_tiers"}


class SlaPolicy(Base):
    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"channels": [...], "priorities": [...], "categories": [...], "team_ids": [...], "languages": [...],
    #  "customer_attribute": {"key": "loyalty", "values": ["gold"]}, "loyalty_tiers": ["Золото"] (the customer's
    #  computed tier, customers.loyalty_tier)}; a missing or empty list matches anything
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))
    warn_share: Mapped[float] = mapped_column(Float, default=DEFAULT_WARN_SHARE)
    # {"raise_priority": bool, "notify_team_lead": bool, "reassign_team_id": int | None}
    escalation: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaTimer(Base):
    __tablename__ = "sla_timers"
    __table_args__ = (
        UniqueConstraint("conversation_id", "kind"),
        Index("ix_sla_timers_state_due", "state", "due_at"),
        Index("ix_sla_timers_state_warn", "state", "warn_at"),
        Index("ix_sla_timers_ws", "workspace_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # first_response / next_response / resolution / legal_<key>
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    target_minutes: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    calendar_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    running_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    elapsed_minutes: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    warn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default=RUNNING)
    warned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# -- policies -----------------------------------------------------------------------------------------------------

CACHE_SECONDS = 5.0  # another process's policy or calendar edit is seen within this long (this process's at once)


@dataclass(frozen=True)
class PolicyView:
    """A policy as the clocks read it: a plain, immutable copy, cached per process for CACHE_SECONDS (a policy
    lookup is then no query: SLA adds well under a millisecond to an inbound message, bench/sla.py)."""

    id: int
    name: str
    position: int
    enabled: bool
    conditions: dict[str, Any]
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    business_hours: bool
    calendar_id: int | None
    warn_share: float
    escalation: dict[str, Any]

    @classmethod
    def of(cls, p: SlaPolicy) -> PolicyView:
        return cls(id=p.id, name=p.name, position=p.position, enabled=p.enabled, conditions=dict(p.conditions or {}),
                   first_response_minutes=p.first_response_minutes, next_response_minutes=p.next_response_minutes,
                   resolution_minutes=p.resolution_minutes, business_hours=p.business_hours,
                   calendar_id=p.calendar_id, warn_share=p.warn_share, escalation=dict(p.escalation or {}))


_policy_cache: dict[int, tuple[float, list[PolicyView]]] = {}
_policy_lock = threading.Lock()


def workspace_policies(session: Session, workspace_id: int) -> list[PolicyView]:
    """Every policy of a workspace in order (enabled or not), from the process cache."""
    hit = _policy_cache.get(workspace_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    with session.no_autoflush:
        rows = session.scalars(select(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id)
                               .order_by(SlaPolicy.position, SlaPolicy.id)).all()
    views = [PolicyView.of(p) for p in rows]
    with _policy_lock:
        _policy_cache[workspace_id] = (now + CACHE_SECONDS, views)
    return views


def _policy_view(session: Session, workspace_id: int, policy_id: int | None) -> PolicyView | None:
    if policy_id is None:
        return None
    return next((p for p in workspace_policies(session, workspace_id) if p.id == policy_id), None)


def _check_minutes(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TARGET_MINUTES:
        raise field_error(field, f"whole minutes from 1 to {MAX_TARGET_MINUTES}, or null for no target")
    return value


def _check_conditions(session: Session, workspace_id: int, value: Any) -> dict[str, Any]:
    from otklik.accounts.models import Team
    from otklik.conversations.service import CHANNELS

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise field_error("conditions", "an object")
    unknown = set(value) - CONDITION_KEYS
    if unknown:
        raise field_error(f"conditions.{sorted(unknown)[0]}", f"unknown; use {', '.join(sorted(CONDITION_KEYS))}")
    out: dict[str, Any] = {}
    for key in ("channels", "priorities", "categories", "team_ids", "languages", "loyalty_tiers"):
        items = value.get(key) or []
        if not isinstance(items, list) or len(items) > 100:
            raise field_error(f"conditions.{key}", "a list (at most 100)")
        if key == "channels" and not all(c in CHANNELS for c in items):
            raise field_error("conditions.channels", f"channels are: {', '.join(CHANNELS)}")
        if key == "priorities" and not all(p in {x.value for x in Priority} for p in items):
            raise field_error("conditions.priorities", "priorities are: low, normal, high, urgent")
        if key == "team_ids":
            if not all(isinstance(t, int) and not isinstance(t, bool) for t in items):
                raise field_error("conditions.team_ids", "team ids are numbers")
            found = set(session.scalars(select(Team.id).where(Team.workspace_id == workspace_id,
                                                              Team.id.in_(items)))) if items else set()
            if found != set(items):
                raise field_error("conditions.team_ids", f"team {sorted(set(items) - found)[0]} not found")
        if key in ("categories", "languages", "loyalty_tiers") and not all(
                isinstance(c, str) and 0 < len(c) <= 64 for c in items):
            raise field_error(f"conditions.{key}", "a list of names")
        if items:
            out[key] = list(dict.fromkeys(items))
    attr = value.get("customer_attribute")
    if attr:
        if (not isinstance(attr, dict) or not isinstance(attr.get("key"), str) or not attr["key"]
                or not isinstance(attr.get("values"), list) or not attr["values"]):
            raise field_error("conditions.customer_attribute", 'an object {"key": "loyalty", "values": ["gold"]}')
        out["customer_attribute"] = {"key": attr["key"][:64], "values": [str(v)[:200] for v in attr["values"][:50]]}
    return out


def _check_escalation(session: Session, workspace_id: int, value: Any) -> dict[str, Any]:
    from otklik.accounts.models import Team

    if not value:
        return {}
    if not isinstance(value, dict) or set(value) - {"raise_priority", "notify_team_lead", "reassign_team_id"}:
        raise field_error("escalation", 'an object {"raise_priority", "notify_team_lead", "reassign_team_id"}')
    team_id = value.get("reassign_team_id")
    if team_id is not None:
        team = session.get(Team, team_id) if isinstance(team_id, int) and not isinstance(team_id, bool) else None
        if team is None or team.workspace_id != workspace_id:
            raise field_error("escalation.reassign_team_id", f"team {team_id} not found")
    return {"raise_priority": bool(value.get("raise_priority")),
            "notify_team_lead": bool(value.get("notify_team_lead")), "reassign_team_id": team_id}


def _snapshot(p: SlaPolicy) -> dict[str, Any]:
    return {"name": p.name, "position": p.position, "enabled": p.enabled, "conditions": p.conditions,
            "first_response_minutes": p.first_response_minutes, "next_response_minutes": p.next_response_minutes,
            "resolution_minutes": p.resolution_minutes, "business_hours": p.business_hours,
            "calendar_id": p.calendar_id, "warn_share": p.warn_share, "escalation": p.escalation}


def _apply(session: Session, actor: Actor, p: SlaPolicy, data: dict[str, Any]) -> None:
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            raise field_error("name", "must not be empty")
        clash = session.scalar(select(SlaPolicy.id).where(SlaPolicy.workspace_id == actor.workspace_id,
                                                          SlaPolicy.name == name, SlaPolicy.id != (p.id or 0)))
        if clash:
            raise field_error("name", f"a policy named {name!r} exists")
        p.name = name[:120]
    for key in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
        if key in data:
            setattr(p, key, _check_minutes(data[key], key))
    if "conditions" in data:
        p.conditions = _check_conditions(session, actor.workspace_id, data["conditions"])
    if "escalation" in data:
        p.escalation = _check_escalation(session, actor.workspace_id, data["escalation"])
    if "enabled" in data:
        p.enabled = bool(data["enabled"])
    if "business_hours" in data:
        p.business_hours = bool(data["business_hours"])
    if "position" in data:
        if isinstance(data["position"], bool) or not isinstance(data["position"], int) or data["position"] < 0:
            raise field_error("position", "a whole number from 0")
        p.position = data["position"]
    if "warn_share" in data:
        share = data["warn_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.1 <= float(share) <= 0.99:
            raise field_error("warn_share", "a share of the target from 0.1 to 0.99")
        p.warn_share = float(share)
    if "calendar_id" in data:
        cid = data["calendar_id"]
        if cid is not None:
            row = session.get(Calendar, cid) if isinstance(cid, int) and not isinstance(cid, bool) else None
            if row is None or row.workspace_id != actor.workspace_id:
                raise field_error("calendar_id", f"calendar {cid} not found")
        p.calendar_id = cid
    if not any((p.first_response_minutes, p.next_response_minutes, p.resolution_minutes)):
        raise field_error("first_response_minutes", "a policy needs at least one target")


def _forget_policies(session: Session) -> None:
    with _policy_lock:
        _policy_cache.clear()  # this process sees its own edits at once (others within CACHE_SECONDS)
    from otklik.platform.events import after_commit

    after_commit(session, lambda: _policy_cache.clear())  # and not a copy read inside the edit's transaction


def _make_room(session: Session, p: SlaPolicy) -> None:
    """A policy put at a position goes before the one that was there (the first match wins)."""
    session.execute(update(SlaPolicy).where(SlaPolicy.workspace_id == p.workspace_id, SlaPolicy.id != p.id,
                                            SlaPolicy.position >= p.position)
                    .values(position=SlaPolicy.position + 1).execution_options(synchronize_session=False))
    session.expire_all()


def list_policies(session: Session, actor: Actor) -> Sequence[SlaPolicy]:
    return session.scalars(select(SlaPolicy).where(SlaPolicy.workspace_id == actor.workspace_id)
                           .order_by(SlaPolicy.position, SlaPolicy.id)).all()


def get_policy(session: Session, actor: Actor, policy_id: int) -> SlaPolicy:
    p = session.get(SlaPolicy, policy_id)
    if p is None or p.workspace_id != actor.workspace_id:
        raise NotFound(f"SLA policy {policy_id} not found")
    return p


def create_policy(session: Session, actor: Actor, data: dict[str, Any]) -> SlaPolicy:
    actor.require(Role.supervisor)
    existing = list_policies(session, actor)
    if len(existing) >= MAX_POLICIES:
        raise field_error("name", f"a workspace has at most {MAX_POLICIES} SLA policies")
    p = SlaPolicy(workspace_id=actor.workspace_id, name="", enabled=True, conditions={}, business_hours=True,
                  warn_share=DEFAULT_WARN_SHARE, escalation={},
                  position=max((e.position for e in existing), default=-1) + 1)
    _apply(session, actor, p, {"name": data.get("name", ""), **data})
    session.add(p)
    session.flush()
    if "position" in data:
        _make_room(session, p)
    record_audit(session, actor, entity_type="sla_policy", entity_id=p.id, action="created", after=_snapshot(p))
    _forget_policies(session)
    return p


def update_policy(session: Session, actor: Actor, policy_id: int, data: dict[str, Any]) -> SlaPolicy:
    actor.require(Role.supervisor)
    p = get_policy(session, actor, policy_id)
    before = _snapshot(p)
    _apply(session, actor, p, data)
    if "position" in data:
        _make_room(session, p)
    p.updated_at = utcnow()
    record_audit(session, actor, entity_type="sla_policy", entity_id=p.id, action="updated", before=before,
                 after=_snapshot(p))
    _forget_policies(session)
    return p


def delete_policy(session: Session, actor: Actor, policy_id: int) -> None:
    actor.require(Role.supervisor)
    p = get_policy(session, actor, policy_id)
    record_audit(session, actor, entity_type="sla_policy", entity_id=p.id, action="deleted", before=_snapshot(p))
    session.delete(p)
    _forget_policies(session)


def matches(p: SlaPolicy | PolicyView, conversation: Conversation, customer_attributes: dict[str, Any] | None,
            loyalty_tier: str | None = None) -> bool:
    c = p.conditions or {}
    if c.get("loyalty_tiers") and loyalty_tier not in c["loyalty_tiers"]:
        return False
    if c.get("channels") and conversation.channel not in c["channels"]:
        return False
    if c.get("priorities") and Priority(conversation.priority).value not in c["priorities"]:
        return False
    if c.get("categories") and conversation.category not in c["categories"]:
        return False
    if c.get("team_ids") and conversation.team_id not in c["team_ids"]:
        return False
    if c.get("languages") and (conversation.language or "") not in c["languages"]:
        return False
    attr = c.get("customer_attribute")
    if attr:
        value = (customer_attributes or {}).get(attr["key"])
        if value is None or str(value) not in attr["values"]:
            return False
    return True


def policy_for(session: Session, conversation: Conversation) -> PolicyView | None:
    with session.no_autoflush:
        return _policy_for(session, conversation)


def _policy_for(session: Session, conversation: Conversation) -> PolicyView | None:
    policies = [p for p in workspace_policies(session, conversation.workspace_id) if p.enabled]
    if not policies:
        return None
    attributes, tier = None, None
    if any((p.conditions or {}).get("customer_attribute") or (p.conditions or {}).get("loyalty_tiers")
           for p in policies):
        customer = session.get(Customer, conversation.customer_id)
        attributes = dict(customer.attributes or {}) if customer is not None else {}
        tier = customer.loyalty_tier if customer is not None else None
    return next((p for p in policies if matches(p, conversation, attributes, tier)), None)


# -- time on a timer ----------------------------------------------------------------------------------------------


def _tx_cache(session: Session, name: str) -> dict[Any, Any]:
    """A per-transaction memo (reset when the transaction changes): lookups an inbound batch repeats."""
    tx = session.get_transaction()
    cache = session.info.get(name)
    if cache is None or cache[0] is not tx:
        cache = session.info[name] = (tx, {})
    return cache[1]


_calendar_cache: dict[tuple[int, int | None, int | None], tuple[float, int, int | None, Any]] = {}


def _calendar(session: Session, workspace_id: int, team_id: int | None,
              calendar_id: int | None) -> tuple[int | None, Any]:
    """(calendar id, expanded calendar) a timer counts on: its own (the policy's), else the team's, else the
    workspace default; (None, None) without one. Cached per process for CACHE_SECONDS and dropped at once when
    this process changes a calendar (calendars.service.GENERATION)."""
    from otklik.calendars import service as calendars

    key = (workspace_id, team_id, calendar_id)
    now, generation = time.monotonic(), calendars.GENERATION[0]
    hit = _calendar_cache.get(key)
    if hit is not None and hit[0] > now and hit[1] == generation:
        return hit[2], hit[3]
    with session.no_autoflush:
        row = session.get(Calendar, calendar_id) if calendar_id else None
        if row is None or row.workspace_id != workspace_id:
            row = calendar_for(session, workspace_id, team_id)
        found = (row.id, engine_of(row)) if row is not None else (None, None)
    if len(_calendar_cache) > 10_000:
        _calendar_cache.clear()
    _calendar_cache[key] = (now + CACHE_SECONDS, generation, *found)
    return found


class _Clock:
    """Adds and measures minutes for one timer: business minutes on its calendar, or plain minutes."""

    def __init__(self, session: Session, timer: SlaTimer, conversation: Conversation):
        self.engine = None
        if timer.business_hours:
            calendar_id, engine = _calendar(session, conversation.workspace_id, conversation.team_id,
                                            timer.calendar_id)
            if engine is not None:
                timer.calendar_id = calendar_id
                self.engine = engine

    def add(self, start: dt.datetime, minutes: int) -> dt.datetime:
        start = aware(start)
        if self.engine is not None:
            try:
                return self.engine.add(start, max(minutes, 0))
            except (CalendarRangeError, ValueError):
                pass
        return start + dt.timedelta(minutes=max(minutes, 0))

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        start, end = aware(start), aware(end)
        if end <= start:
            return 0
        if self.engine is not None:
            try:
                return self.engine.between(start, end)
            except (CalendarRangeError, ValueError):
                pass
        return int((end - start).total_seconds() // 60)


def _schedule(session: Session, timer: SlaTimer, conversation: Conversation, share: float) -> None:
    """Due and warning times of a running timer from `running_since`, its target and the time already counted."""
    if timer.running_since is None:
        timer.due_at = timer.warn_at = None
        return
    clock = _Clock(session, timer, conversation)
    timer.due_at = clock.add(timer.running_since, timer.target_minutes - timer.elapsed_minutes)
    warn_minutes = math.ceil(timer.target_minutes * share) - timer.elapsed_minutes
    timer.warn_at = clock.add(timer.running_since, warn_minutes) if warn_minutes > 0 else timer.running_since


def _share(session: Session, timer: SlaTimer) -> float:
    p = _policy_view(session, timer.workspace_id, timer.policy_id)
    return p.warn_share if p is not None else DEFAULT_WARN_SHARE


def _timers(session: Session, conversation_id: int) -> dict[str, SlaTimer]:
    """A conversation's timers by kind, read once per transaction (no autoflush: a batch of inbound messages
    stays one INSERT) and kept in the transaction's cache, so timers added in it are seen."""
    cache = _tx_cache(session, "sla_timers")
    timers = cache.get(conversation_id)
    if timers is None:
        with session.no_autoflush:
            timers = {t.kind: t for t in session.scalars(select(SlaTimer).where(
                SlaTimer.conversation_id == conversation_id))}
        cache[conversation_id] = timers
    return timers


def _target(p: PolicyView, kind: str) -> int | None:
    return {FIRST: p.first_response_minutes, NEXT: p.next_response_minutes,
            RESOLUTION: p.resolution_minutes}[kind]


def _start(session: Session, conversation: Conversation, timers: dict[str, SlaTimer], kind: str,
           p: PolicyView, at: dt.datetime) -> None:
    target = _target(p, kind)
    if not target:
        return
    timer = timers.get(kind)
    if timer is None:
        timer = SlaTimer(workspace_id=conversation.workspace_id, conversation_id=conversation.id, kind=kind)
        session.add(timer)
        timers[kind] = timer
    timer.policy_id, timer.target_minutes, timer.business_hours = p.id, target, p.business_hours
    timer.calendar_id = p.calendar_id
    timer.started_at = timer.running_since = at
    timer.elapsed_minutes = 0
    timer.state, timer.warned_at, timer.breached_at, timer.stopped_at = RUNNING, None, None, None
    _schedule(session, timer, conversation, p.warn_share)


def _pause(session: Session, conversation: Conversation, timer: SlaTimer | None, at: dt.datetime) -> None:
    """Stop counting (pending): the time so far is kept; a breach already recorded stays."""
    if timer is None or timer.stopped_at is not None or timer.running_since is None:
        return
    timer.elapsed_minutes += _Clock(session, timer, conversation).between(timer.running_since, at)
    timer.running_since = None
    timer.due_at = timer.warn_at = None
    timer.state = PAUSED


def _resume(session: Session, conversation: Conversation, timer: SlaTimer | None, at: dt.datetime) -> None:
    """Count again from `at`: a paused timer, or a resolution timer that «solved» stopped (re-opened)."""
    if timer is None:
        return
    if is_legal(timer.kind):
        if timer.stopped_at is not None and timer.due_at is not None:
            timer.stopped_at = None
            timer.state = BREACHED if timer.breached_at is not None else RUNNING
        return
    if timer.running_since is not None:
        return
    reopened = timer.kind == RESOLUTION and timer.stopped_at is not None and timer.state in (MET, BREACHED)
    if timer.state != PAUSED and not reopened:
        return
    timer.running_since = at
    timer.stopped_at = None
    timer.state = BREACHED if timer.breached_at is not None else RUNNING
    _schedule(session, timer, conversation, _share(session, timer))


def _stop(session: Session, conversation: Conversation, timer: SlaTimer | None, at: dt.datetime, *,
          met: bool = True) -> None:
    """Stop a timer that still counts (or is paused): met when in time, breached when late; `met=False`: it no
    longer applies (stopped), unless it was already late."""
    if timer is None or timer.stopped_at is not None:
        return
    legal = is_legal(timer.kind)
    if timer.running_since is not None and not legal:
        timer.elapsed_minutes += _Clock(session, timer, conversation).between(timer.running_since, at)
    late = timer.breached_at is not None or (timer.due_at is not None and aware(at) > aware(timer.due_at))
    if late and timer.breached_at is None:
        timer.breached_at = at
        if not legal:  # a legal deadline missed is the law's matter, not the team's SLA figure
            conversation.sla_breached = True
    if legal:  # stopped (solved, merged), it keeps its dates: re-opening resumes it as it was
        timer.state = BREACHED if late else MET if met else STOPPED
        timer.stopped_at = at
        return
    timer.state = BREACHED if late else MET if met else STOPPED
    timer.stopped_at = at
    timer.running_since = None
    timer.due_at = timer.warn_at = None


def _refresh_due(session: Session, conversation: Conversation, timers: Iterable[SlaTimer]) -> None:
    live = [t for t in timers if t.due_at is not None and t.stopped_at is None and t.state in (RUNNING, BREACHED)]
    dues = [aware(t.due_at) for t in live if t.due_at is not None]
    conversation.sla_due_at = min(dues) if dues else None
    legal = [aware(t.due_at) for t in live if t.due_at is not None and is_legal(t.kind)]
    conversation.legal_due_at = min(legal) if legal else None


# -- what moves the clocks (called by conversations.service in the same transaction) ---------------------------


def on_customer_message(session: Session, conversation: Conversation, at: dt.datetime, *,
                        was_waiting: bool, new_conversation: bool = False) -> None:
    """A customer message: starts first response and resolution on a conversation's first one; resumes a paused
    (pending) or solved resolution; starts next response when it begins a new wait after a person answered."""
    if new_conversation:  # created in this transaction: it has no timers to read
        _tx_cache(session, "sla_timers").setdefault(conversation.id, {})
    timers = _timers(session, conversation.id)
    answered = conversation.first_response_at is not None
    if not timers:
        p = policy_for(session, conversation)
        if p is None:
            return
        if not answered:
            _start(session, conversation, timers, FIRST, p, at)
            _start(session, conversation, timers, RESOLUTION, p, min(aware(conversation.created_at), aware(at)))
        else:  # a policy that appeared after the conversation began: count from now
            _start(session, conversation, timers, RESOLUTION, p, at)
            if not was_waiting:
                _start(session, conversation, timers, NEXT, p, at)
    else:
        _resume(session, conversation, timers.get(RESOLUTION), at)
        nxt = timers.get(NEXT)
        if answered and not was_waiting:
            p = _policy_of(session, conversation, timers)
            if p is not None:
                _start(session, conversation, timers, NEXT, p, at)
        elif nxt is not None and nxt.state == PAUSED:
            _resume(session, conversation, nxt, at)
    _refresh_due(session, conversation, timers.values())


def _policy_of(session: Session, conversation: Conversation, timers: dict[str, SlaTimer]) -> PolicyView | None:
    """The policy the conversation's timers count by (kept until a change re-evaluates it)."""
    for timer in timers.values():
        if timer.policy_id is not None:
            p = _policy_view(session, conversation.workspace_id, timer.policy_id)
            if p is not None and p.enabled:
                return p
    return policy_for(session, conversation)


def on_agent_reply(session: Session, conversation: Conversation, at: dt.datetime) -> None:
    timers = _timers(session, conversation.id)
    if not timers:
        return
    _stop(session, conversation, timers.get(FIRST), at)
    _stop(session, conversation, timers.get(NEXT), at)
    _refresh_due(session, conversation, timers.values())


def on_status(session: Session, conversation: Conversation, before: str, after: str, at: dt.datetime) -> None:
    if before == after:
        return
    timers = _timers(session, conversation.id)
    if not timers:
        return
    if after == Status.pending.value:
        _pause(session, conversation, timers.get(RESOLUTION), at)
        _pause(session, conversation, timers.get(NEXT), at)
    elif after in (Status.solved.value, Status.closed.value):
        _stop(session, conversation, timers.get(RESOLUTION), at)
        _stop(session, conversation, timers.get(NEXT), at, met=False)
        _stop(session, conversation, timers.get(FIRST), at, met=False)
        for timer in _legal(timers):  # met when solved in time; a legal deadline never pauses for «pending»
            _stop(session, conversation, timer, at)
    elif before in (Status.pending.value, Status.solved.value):  # an agent took it back up / re-opened it
        _resume(session, conversation, timers.get(RESOLUTION), at)
        _resume(session, conversation, timers.get(NEXT), at)
        for timer in _legal(timers):
            _resume(session, conversation, timer, at)
    _refresh_due(session, conversation, timers.values())


def stop_all(session: Session, conversation: Conversation, at: dt.datetime) -> None:
    """The conversation no longer counts (merged into another): its timers stop, late ones stay breached."""
    timers = _timers(session, conversation.id)
    for timer in timers.values():
        _stop(session, conversation, timer, at, met=False)
    _refresh_due(session, conversation, timers.values())


def reevaluate(session: Session, actor: Actor | None, conversation: Conversation, at: dt.datetime,
               reason: str) -> None:
    """After a change of priority, channel, team or category: the policy that applies now, with targets counted
    from each timer's original start (the time already counted is kept). Audited when targets change."""
    timers = _timers(session, conversation.id)
    if not timers:
        return
    p = policy_for(session, conversation)
    def state() -> dict[str, dict[str, Any]]:
        return {k: {"policy_id": t.policy_id, "target_minutes": t.target_minutes, "state": t.state,
                    "due_at": aware(t.due_at).isoformat() if t.due_at else None} for k, t in timers.items()}

    before = state()
    for kind, timer in timers.items():
        if timer.stopped_at is not None or is_legal(kind):
            continue
        target = _target(p, kind) if p is not None else None
        if not target:
            _stop(session, conversation, timer, at, met=False)
            continue
        assert p is not None
        timer.policy_id, timer.target_minutes, timer.business_hours = p.id, target, p.business_hours
        timer.calendar_id = p.calendar_id
        if timer.running_since is not None:
            _schedule(session, timer, conversation, p.warn_share)
    after = state()
    if before != after and actor is not None:
        record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="sla_changed",
                     before=before, after=after, note=reason)
    _refresh_due(session, conversation, timers.values())


# -- consumer-law deadlines as timers (guardrails computes them; they live here with the other clocks) -----------


def is_legal(kind: str) -> bool:
    return kind.startswith(LEGAL_PREFIX)


def _legal(timers: dict[str, SlaTimer]) -> list[SlaTimer]:
    return [t for k, t in sorted(timers.items()) if is_legal(k)]


@dataclass(frozen=True)
class LegalDue:
    """One obligation's term: it runs from `starts_at` (00:00 of the day after its event, ГК ст. 191) to `due_at`
    (the end of its last day, ГК ст. 194), and warns at `warn_at`."""

    key: str
    starts_at: dt.datetime
    due_at: dt.datetime
    warn_at: dt.datetime


def set_legal_timers(session: Session, conversation: Conversation, dues: Sequence[LegalDue],
                     at: dt.datetime | None = None) -> bool:
    """Make the conversation's legal timers match `dues`: a new obligation starts a timer, a moved due date moves
    it (and may warn and fire again), an obligation no longer owed stops its timer. A solved or closed
    conversation gets its timers stopped (met when in time). A legal timer never pauses: the law does not wait
    while we wait on the customer. Returns whether anything changed."""
    at = at or utcnow()
    timers = _timers(session, conversation.id)
    wanted = {LEGAL_PREFIX + d.key: d for d in dues}
    done = conversation.status in (Status.solved.value, Status.closed.value) or conversation.merged_into_id
    changed = False
    for kind, d in wanted.items():
        timer = timers.get(kind)
        due, start, warn = aware(d.due_at), aware(d.starts_at), aware(d.warn_at)
        if timer is not None and timer.due_at is not None and aware(timer.due_at) == due and \
                aware(timer.started_at) == start and (timer.stopped_at is None) != bool(done):
            continue  # as it was: no second warning or breach for the same date
        if timer is None:
            timer = SlaTimer(workspace_id=conversation.workspace_id, conversation_id=conversation.id, kind=kind)
            session.add(timer)
            timers[kind] = timer
        timer.policy_id, timer.business_hours, timer.calendar_id = None, False, None
        timer.target_minutes = max(int((due - start).total_seconds() // 60), 0)
        timer.started_at = timer.running_since = start
        timer.elapsed_minutes = 0
        timer.due_at = due
        late = due <= aware(at)
        timer.warn_at = None if late else warn
        timer.warned_at = None
        timer.breached_at = None
        timer.state = RUNNING  # a late one is claimed by the next sweep: its breach fires once, with its event
        timer.stopped_at = None
        if done:
            _stop(session, conversation, timer, at)
        changed = True
    for kind, timer in list(timers.items()):
        if is_legal(kind) and kind not in wanted and timer.stopped_at is None:
            timer.state, timer.stopped_at, timer.warn_at = STOPPED, at, None
            changed = True
    _refresh_due(session, conversation, timers.values())
    return changed


def timers_for(session: Session, conversation_id: int) -> list[SlaTimer]:
    return sorted(_timers(session, conversation_id).values(), key=lambda t: KINDS.index(t.kind)
                  if t.kind in KINDS else 9)


def timer_view(timer: SlaTimer, now: dt.datetime | None = None) -> dict[str, Any]:
    """What a person needs: state, due time, seconds left (negative: late), the share of the target used."""
    now = now or utcnow()
    left = None
    if timer.due_at is not None and timer.stopped_at is None:
        left = int((aware(timer.due_at) - aware(now)).total_seconds())
    return {"kind": timer.kind, "state": timer.state, "policy_id": timer.policy_id,
            "target_minutes": timer.target_minutes, "business_hours": timer.business_hours,
            "started_at": timer.started_at, "due_at": timer.due_at, "seconds_left": left,
            "elapsed_minutes": timer.elapsed_minutes, "breached_at": timer.breached_at,
            "stopped_at": timer.stopped_at}


# -- warnings, breaches and escalation (the job worker's sweep) -----------------------------------------------------

SWEEP_BATCH = 500
NEXT_PRIORITY = {Priority.low: Priority.normal, Priority.normal: Priority.high, Priority.high: Priority.urgent,
                 Priority.urgent: Priority.urgent}


def sweep(session: Session, now: dt.datetime | None = None, workspace_id: int | None = None) -> dict[str, int]:
    """Fire the warnings and breaches that are due: each exactly once, also with several workers sweeping at once
    (a conditional UPDATE claims it; only the claimer acts). Reads only due rows, through the (state, warn_at)
    and (state, due_at) indexes. The caller commits."""
    now = now or utcnow()
    fired = {"warned": 0, "breached": 0}
    scope = [SlaTimer.workspace_id == workspace_id] if workspace_id is not None else []
    warn_ids = session.scalars(select(SlaTimer.id).where(SlaTimer.state == RUNNING, SlaTimer.warn_at <= now, *scope)
                               .order_by(SlaTimer.warn_at).limit(SWEEP_BATCH)).all()
    for timer_id in warn_ids:
        claimed = affected(session.execute(update(SlaTimer).where(
            SlaTimer.id == timer_id, SlaTimer.warn_at.is_not(None), SlaTimer.warn_at <= now, SlaTimer.state == RUNNING)
            .values(warn_at=None, warned_at=now)))
        if claimed == 1:
            fired["warned"] += 1
            _fire(session, timer_id, "sla.warning", now)
    due_ids = session.scalars(select(SlaTimer.id).where(SlaTimer.state == RUNNING, SlaTimer.due_at <= now, *scope)
                              .order_by(SlaTimer.due_at).limit(SWEEP_BATCH)).all()
    for timer_id in due_ids:
        claimed = affected(session.execute(update(SlaTimer).where(
            SlaTimer.id == timer_id, SlaTimer.state == RUNNING, SlaTimer.due_at <= now)
            .values(state=BREACHED, breached_at=now, warn_at=None)))
        if claimed == 1:
            fired["breached"] += 1
            _fire(session, timer_id, "sla.breached", now)
    return fired


def _fire(session: Session, timer_id: int, event: str, now: dt.datetime) -> None:
    from otklik.accounts.models import TeamMember, User
    from otklik.platform.events import Event, after_commit

    timer = session.get(SlaTimer, timer_id)
    if timer is None:
        return
    session.refresh(timer)
    conversation = session.get(Conversation, timer.conversation_id)
    if conversation is None:
        return
    actor = Actor.system(conversation.workspace_id, kind="sla")
    notify: set[int] = {conversation.assignee_id} if conversation.assignee_id else set()
    actions: list[str] = []
    if is_legal(timer.kind):
        event = "legal.overdue" if event == "sla.breached" else "legal.warning"
        record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                     action="legal_overdue" if event == "legal.overdue" else "legal_warning",
                     after={"obligation": timer.kind[len(LEGAL_PREFIX):],
                            "due_at": timer.due_at.isoformat() if timer.due_at else None})
        if event == "legal.overdue":
            conversation.version += 1
            conversation.updated_at = now
    elif event == "sla.breached":
        conversation.sla_breached = True
        p = _policy_view(session, conversation.workspace_id, timer.policy_id)
        esc = (p.escalation if p is not None else None) or {}
        if esc.get("raise_priority") and conversation.priority != Priority.urgent:
            old = conversation.priority
            conversation.priority = NEXT_PRIORITY[Priority(conversation.priority)]
            record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                         action="priority_changed", before={"priority": Priority(old).value},
                         after={"priority": Priority(conversation.priority).value}, note=f"SLA {timer.kind} breached")
            actions.append("raise_priority")
        if esc.get("reassign_team_id") and esc["reassign_team_id"] != conversation.team_id:
            old_team, old_assignee = conversation.team_id, conversation.assignee_id
            conversation.team_id, conversation.assignee_id = esc["reassign_team_id"], None
            record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                         action="team_changed", before={"team_id": old_team, "assignee_id": old_assignee},
                         after={"team_id": conversation.team_id, "assignee_id": None},
                         note=f"SLA {timer.kind} breached: escalated")
            actions.append("reassign")
            from otklik.conversations import routing

            session.flush()
            routing.assign(session, conversation, now=now)  # the new team may hand it to an agent at once
        if esc.get("notify_team_lead"):
            supervisors = select(User.id).where(User.workspace_id == conversation.workspace_id,
                                                User.is_active.is_(True), User.role.in_(("supervisor", "admin")))
            if conversation.team_id is not None:
                leads = set(session.scalars(supervisors.join(TeamMember, TeamMember.user_id == User.id)
                                            .where(TeamMember.team_id == conversation.team_id)))
            else:
                leads = set()
            notify |= leads or set(session.scalars(supervisors.where(User.role == "supervisor")))
            actions.append("notify_team_lead")
        record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="sla_breached",
                     after={"kind": timer.kind, "due_at": timer.due_at.isoformat() if timer.due_at else None,
                            "actions": actions})
        conversation.version += 1
        conversation.updated_at = now
    else:
        record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="sla_warning",
                     after={"kind": timer.kind, "due_at": timer.due_at.isoformat() if timer.due_at else None})
    data = {"conversation_id": conversation.id, "number": conversation.number, "kind": timer.kind,
            "due_at": timer.due_at.isoformat() if timer.due_at else None, "notify_user_ids": sorted(notify),
            "actions": actions, "priority": Priority(conversation.priority).value}
    after_commit(session, Event(event, conversation.workspace_id, data))


__all__ = ["BREACHED", "FIRST", "KINDS", "MET", "NEXT", "PAUSED", "RESOLUTION", "RUNNING", "STOPPED",
           "SlaPolicy", "SlaTimer", "create_policy", "delete_policy", "get_policy", "list_policies",
           "on_agent_reply", "on_customer_message", "on_status", "policy_for", "reevaluate", "stop_all", "sweep",
           "timer_view",
           "timers_for", "update_policy"]
