"""Routing and auto-assignment (issue 13): per team on/off, round-robin or least-busy, capacity per agent (open
conversations, chat-like channels and email-like ones apart), skills (languages, categories), availability
(online / away / offline; idle agents count as away), a queue when everyone is full, out-of-hours hand-over to a
team whose calendar is open, and a per-conversation transfer count.

Why here, in the conversations domain, and not in a domain above it: an assignment must happen in the same
transaction as the change that triggers it (a team set by the assistant, an agent, a rule or an SLA escalation;
a solve that frees capacity), and only `conversations.service` makes those changes. It calls `assign` and
`drain` directly, as it calls `sla`; this module needs only the domains below (accounts, calendars), so the
layers hold without a hook that a process could forget to register.

Concurrency. Each agent's open-conversation counts live on their `agent_routing` row, kept by a flush hook on
every change of a conversation's assignee, status or channel (the same transaction). A decision locks the team's
`team_routing` row (SELECT … FOR UPDATE: decisions for one team run one at a time, so round-robin's pointer and
the counts it read stay true), then the chosen agent's row (FOR UPDATE; the count is read again under the lock,
so an agent in two teams is never filled by both at once). SQLite runs one write transaction at a time. Lock
order is always team rows (by id) before agent rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Table,
    bindparam,
    case,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role, Team, TeamMember, User
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import PRIORITY_RANK, Conversation, Status
from otklik.platform.cache import ProcessCache
from otklik.platform.db import Base, JSONType, UTCDateTime, aware, utcnow
from otklik.platform.errors import NotFound, field_error

ROUND_ROBIN, LEAST_BUSY = "round_robin", "least_busy"
METHODS = (ROUND_ROBIN, LEAST_BUSY)
ONLINE, AWAY, OFFLINE = "online", "away", "offline"
AVAILABILITY = (ONLINE, AWAY, OFFLINE)
CHAT, EMAIL = "chat", "email"
EMAIL_LIKE = frozenset({"email", "form"})  # answered in hours, not seconds; everything else is chat-like
OPEN_STATUSES = (Status.new.value, Status.open.value, Status.pending.value)  # what counts against capacity
MAX_CAPACITY = 1000
DEFAULT_AWAY_AFTER = 15  # minutes without a request or WebSocket frame: counted as away
DRAIN_BATCH = 50
TOUCH_EVERY = 60.0  # seconds: an agent's activity is written at most once a minute per process


class TeamRouting(Base):
    __tablename__ = "team_routing"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    auto_assign: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str] = mapped_column(String(16), default=ROUND_ROBIN)
    capacity_chat: Mapped[int] = mapped_column(Integer, default=5)
    capacity_email: Mapped[int] = mapped_column(Integer, default=10)
    last_user_id: Mapped[int | None] = mapped_column(Integer)  # round-robin's pointer
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentRouting(Base):
    __tablename__ = "agent_routing"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    availability: Mapped[str] = mapped_column(String(8), default=ONLINE)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: any
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: any
    open_chat: Mapped[int] = mapped_column(Integer, default=0)
    open_email: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingSettings(Base):
    __tablename__ = "routing_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    out_of_hours_to_open_team: Mapped[bool] = mapped_column(Boolean, default=False)
    away_after_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_AWAY_AFTER)  # 0: never
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


_agent_table = cast(Table, AgentRouting.__table__)


CLAIMED = "otklik.routing.claimed"  # session.info: conversations whose new slot a routing claim has counted


@functools.lru_cache(maxsize=4)
def _claim_stmt(kind: str) -> Any:
    """Take a slot of this kind from the agent if they still have one, in one statement: the count goes up by one
    and the agent is stamped as just assigned. On PostgreSQL the UPDATE takes the agent's row lock and re-checks
    the count on the newest row version (another team's decision may have filled them since the candidates were
    read), so no separate locking read is needed; the flush hook then skips this slot (CLAIMED)."""
    load = _agent_table.c.open_email if kind == EMAIL else _agent_table.c.open_chat
    return (update(_agent_table)
            .where(_agent_table.c.user_id == bindparam("uid"), load < bindparam("capacity"))
            .values({load: load + 1,
                     _agent_table.c.last_assigned_at: bindparam("at", type_=_agent_table.c.last_assigned_at.type)})
            .returning(_agent_table.c.user_id))


def kind_of(channel: str | None) -> str:
    return EMAIL if channel in EMAIL_LIKE else CHAT


# -- the load counters (kept on every flush that changes a conversation's assignee, status or channel) ----------


def _slot(assignee: Any, status: Any, channel: Any) -> tuple[int, str] | None:
    if assignee is None or (status or Status.new.value) not in OPEN_STATUSES:
        return None
    return int(assignee), kind_of(channel)


def _values(obj: Conversation, name: str) -> tuple[Any, Any]:
    history = inspect(obj).attrs[name].history
    current = getattr(obj, name)
    if not history.has_changes():
        return current, current
    old = history.deleted[0] if history.deleted else None
    return old, current


def _load_counts(conn: Any, user_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    ids = list(user_ids)
    rows = conn.execute(select(Conversation.assignee_id, Conversation.channel, func.count())
                        .where(Conversation.assignee_id.in_(ids), Conversation.status.in_(OPEN_STATUSES))
                        .group_by(Conversation.assignee_id, Conversation.channel))
    out: Counter[tuple[int, str]] = Counter()
    for user_id, channel, n in rows:
        out[(user_id, kind_of(channel))] += n
    return dict(out)


def ensure_agents(conn: Any, user_ids: Iterable[int]) -> None:
    """Create missing `agent_routing` rows, with their counts from the conversations table."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    table = cast(Table, AgentRouting.__table__)
    have = set(conn.scalars(select(table.c.user_id).where(table.c.user_id.in_(ids))))
    missing = [i for i in ids if i not in have]
    if not missing:
        return
    users = dict(conn.execute(select(User.id, User.workspace_id).where(User.id.in_(missing))).all())
    counts = _load_counts(conn, users)
    now = utcnow()
    rows = [{"user_id": uid, "workspace_id": ws, "availability": ONLINE, "languages": [], "categories": [],
             "open_chat": counts.get((uid, CHAT), 0), "open_email": counts.get((uid, EMAIL), 0),
             "updated_at": now} for uid, ws in users.items()]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).values(rows).on_conflict_do_nothing(index_elements=["user_id"]))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).values(rows).on_conflict_do_nothing(index_elements=["user_id"]))


def _apply_deltas(conn: Any, deltas: Counter[tuple[int, str]]) -> None:
    table = cast(Table, AgentRouting.__table__)
    for (user_id, kind), d in sorted((k, d) for k, d in deltas.items() if d):
        column = table.c.open_email if kind == EMAIL else table.c.open_chat
        stmt = update(table).where(table.c.user_id == user_id).values({column: column + d})
        if conn.execute(stmt).rowcount == 0:  # no row yet: made with the counts as they stand before this flush
            ensure_agents(conn, [user_id])
            conn.execute(stmt)


@event.listens_for(Session, "before_flush")
def _count_loads(session: Session, flush_context: Any, instances: Any) -> None:
    deltas: Counter[tuple[int, str]] = Counter()
    claimed: dict[int, tuple[int, str]] = session.info.pop(CLAIMED, None) or {}
    for obj in session.new:
        if isinstance(obj, Conversation):
            slot = _slot(obj.assignee_id, obj.status, obj.channel)
            if slot:
                deltas[slot] += 1
                if claimed.get(id(obj)) == slot:
                    deltas[slot] -= 1
    for obj in session.dirty:
        if isinstance(obj, Conversation) and session.is_modified(obj, include_collections=False):
            olds, news = zip(*(_values(obj, n) for n in ("assignee_id", "status", "channel")), strict=True)
            before, after = _slot(*olds), _slot(*news)
            if after is not None and claimed.get(id(obj)) == after:
                deltas[after] -= 1  # the routing claim counted this slot already, in the same statement as its check
            if before != after:
                if before:
                    deltas[before] -= 1
                if after:
                    deltas[after] += 1
    for obj in session.deleted:
        if isinstance(obj, Conversation):
            olds = tuple(_values(obj, n)[0] for n in ("assignee_id", "status", "channel"))
            slot = _slot(*olds)
            if slot:
                deltas[slot] -= 1
    if any(deltas.values()):
        _apply_deltas(session.connection(), deltas)


def recount(session: Session, workspace_id: int) -> None:
    """Set every agent's counts from the conversations table (a repair; the flush hook keeps them)."""
    users = list(session.scalars(select(User.id).where(User.workspace_id == workspace_id)))
    conn = session.connection()
    ensure_agents(conn, users)
    counts = _load_counts(conn, users)
    for uid in users:
        session.execute(update(AgentRouting).where(AgentRouting.user_id == uid).values(
            open_chat=counts.get((uid, CHAT), 0), open_email=counts.get((uid, EMAIL), 0)))


# -- settings -----------------------------------------------------------------------------------------------


def workspace_settings(session: Session, workspace_id: int) -> RoutingSettings:
    row = session.get(RoutingSettings, workspace_id)
    if row is None:
        return RoutingSettings(workspace_id=workspace_id, out_of_hours_to_open_team=False,
                               away_after_minutes=DEFAULT_AWAY_AFTER)
    return row


SETTINGS_CACHE_SECONDS = 5.0  # how long a process may route on settings another process has just changed
_settings_cache = ProcessCache(SETTINGS_CACHE_SECONDS)


def cached_settings(session: Session, workspace_id: int) -> dict[str, Any]:
    """The workspace's routing settings as `settings_view` gives them, from a per-process copy (a decision then
    reads no settings row: one round trip less on PostgreSQL). A change made in this process drops it at once
    and on its commit; another process sees it within SETTINGS_CACHE_SECONDS."""
    return cast(dict[str, Any], _settings_cache.get(
        workspace_id, lambda: settings_view(workspace_settings(session, workspace_id))))


def update_workspace_settings(session: Session, actor: Actor, data: dict[str, Any]) -> RoutingSettings:
    actor.require(Role.admin)
    row = session.get(RoutingSettings, actor.workspace_id)
    if row is None:
        row = RoutingSettings(workspace_id=actor.workspace_id, out_of_hours_to_open_team=False,
                              away_after_minutes=DEFAULT_AWAY_AFTER)
        session.add(row)
    before = settings_view(row)
    if "out_of_hours_to_open_team" in data:
        if not isinstance(data["out_of_hours_to_open_team"], bool):
            raise field_error("out_of_hours_to_open_team", "true or false")
        row.out_of_hours_to_open_team = data["out_of_hours_to_open_team"]
    if "away_after_minutes" in data:
        value = data["away_after_minutes"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 24 * 60:
            raise field_error("away_after_minutes", "whole minutes from 0 (never) to 1440")
        row.away_after_minutes = value
    row.updated_at = utcnow()
    session.flush()
    _settings_cache.forget(actor.workspace_id, session)
    record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                 action="routing_settings_changed", before=before, after=settings_view(row))
    return row


def settings_view(row: RoutingSettings) -> dict[str, Any]:
    return {"out_of_hours_to_open_team": bool(row.out_of_hours_to_open_team),
            "away_after_minutes": DEFAULT_AWAY_AFTER if row.away_after_minutes is None else row.away_after_minutes}


def _team(session: Session, actor: Actor, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.workspace_id != actor.workspace_id:
        raise NotFound(f"team {team_id} not found")
    return team


def team_routing(session: Session, actor: Actor, team_id: int) -> TeamRouting:
    team = _team(session, actor, team_id)
    row = session.get(TeamRouting, team.id)
    return row if row is not None else TeamRouting(team_id=team.id, workspace_id=team.workspace_id,
                                                   auto_assign=False, method=ROUND_ROBIN, capacity_chat=5,
                                                   capacity_email=10)


def team_view(row: TeamRouting) -> dict[str, Any]:
    return {"team_id": row.team_id, "auto_assign": bool(row.auto_assign), "method": row.method or ROUND_ROBIN,
            "capacity_chat": 5 if row.capacity_chat is None else row.capacity_chat,
            "capacity_email": 10 if row.capacity_email is None else row.capacity_email}


def _capacity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAPACITY:
        raise field_error(field, f"whole number of open conversations from 0 to {MAX_CAPACITY}")
    return value


def update_team_routing(session: Session, actor: Actor, team_id: int, data: dict[str, Any]) -> TeamRouting:
    """Supervisors and admins; audited. Turning it on or raising a capacity assigns the team's queue at once."""
    actor.require(Role.supervisor)
    team = _team(session, actor, team_id)
    unknown = set(data) - {"auto_assign", "method", "capacity_chat", "capacity_email"}
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown setting")
    row = session.get(TeamRouting, team.id)
    if row is None:
        row = TeamRouting(team_id=team.id, workspace_id=team.workspace_id, auto_assign=False, method=ROUND_ROBIN,
                          capacity_chat=5, capacity_email=10)
        session.add(row)
    before = team_view(row)
    if "auto_assign" in data:
        if not isinstance(data["auto_assign"], bool):
            raise field_error("auto_assign", "true or false")
        row.auto_assign = data["auto_assign"]
    if "method" in data:
        if data["method"] not in METHODS:
            raise field_error("method", f"one of: {', '.join(METHODS)}")
        row.method = data["method"]
    for key in ("capacity_chat", "capacity_email"):
        if key in data:
            setattr(row, key, _capacity(data[key], key))
    row.updated_at = utcnow()
    session.flush()
    after = team_view(row)
    if before != after:
        record_audit(session, actor, entity_type="team", entity_id=team.id, action="routing_changed",
                     before=before, after=after)
        drain(session, [team.id])
    return row


# -- agents: availability and skills --------------------------------------------------------------------------


def agent_row(session: Session, user_id: int, *, for_update: bool = False) -> AgentRouting:
    ensure_agents(session.connection(), [user_id])
    stmt = select(AgentRouting).where(AgentRouting.user_id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt.execution_options(populate_existing=True))
    assert row is not None
    return row


def effective_availability(row: AgentRouting | None, away_after: int, now: dt.datetime | None = None) -> str:
    """What the agent's availability means now: «online» that has been idle for `away_after` minutes is away."""
    if row is None:
        return AWAY
    state = row.availability or ONLINE
    if state != ONLINE or not away_after:
        return state
    now = now or utcnow()
    if row.last_seen_at is None or aware(row.last_seen_at) < now - dt.timedelta(minutes=away_after):
        return AWAY
    return ONLINE


def agent_view(session: Session, row: AgentRouting) -> dict[str, Any]:
    away_after = settings_view(workspace_settings(session, row.workspace_id))["away_after_minutes"]
    return {"user_id": row.user_id, "availability": effective_availability(row, away_after),
            "chosen_availability": row.availability, "languages": list(row.languages or []),
            "categories": list(row.categories or []), "open_chat": row.open_chat, "open_email": row.open_email,
            "last_seen_at": row.last_seen_at}


def agents_view(session: Session, workspace_id: int) -> dict[int, dict[str, Any]]:
    """Every user's routing state (for Settings → Teams): availability as it counts now, skills, open counts."""
    away_after = settings_view(workspace_settings(session, workspace_id))["away_after_minutes"]
    rows = session.scalars(select(AgentRouting).where(AgentRouting.workspace_id == workspace_id))
    return {r.user_id: {"availability": effective_availability(r, away_after), "languages": list(r.languages or []),
                        "categories": list(r.categories or []), "open_chat": r.open_chat,
                        "open_email": r.open_email} for r in rows}


def _user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.workspace_id != actor.workspace_id:
        raise NotFound(f"user {user_id} not found")
    return user


def set_availability(session: Session, actor: Actor, state: Any, *, user_id: int | None = None) -> AgentRouting:
    """An agent sets their own availability (a supervisor may set anyone's). Online assigns waiting work."""
    if state not in AVAILABILITY:
        raise field_error("state", f"one of: {', '.join(AVAILABILITY)}")
    target = user_id if user_id is not None else actor.user_id
    if target is None:
        raise field_error("state", "only a person has an availability")
    if target != actor.user_id:
        actor.require(Role.supervisor)
    _user(session, actor, target)
    row = agent_row(session, target)
    before = row.availability
    now = utcnow()
    row.availability = state
    row.updated_at = now
    if target == actor.user_id:
        row.last_seen_at = now
    session.flush()
    if before != state:
        record_audit(session, actor, entity_type="user", entity_id=target, action="availability_changed",
                     before={"availability": before}, after={"availability": state})
    if state == ONLINE:
        drain(session, teams_of(session, [target]))
    return row


def _names(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise field_error(field, "a list of at most 50 names")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not 0 < len(item.strip()) <= 64:
            raise field_error(f"{field}.{i}", "a name of 1-64 characters")
        name = item.strip().lower() if field == "languages" else item.strip()
        if name not in out:
            out.append(name)
    return out


def set_skills(session: Session, actor: Actor, user_id: int, data: dict[str, Any]) -> AgentRouting:
    """Languages and categories an agent takes (empty: any). Supervisors and admins; audited."""
    actor.require(Role.supervisor)
    _user(session, actor, user_id)
    unknown = set(data) - {"languages", "categories"}
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown; send languages and categories")
    row = agent_row(session, user_id)
    before = {"languages": list(row.languages or []), "categories": list(row.categories or [])}
    if "languages" in data:
        row.languages = _names(data["languages"], "languages")
    if "categories" in data:
        row.categories = _names(data["categories"], "categories")
    row.updated_at = utcnow()
    after = {"languages": list(row.languages), "categories": list(row.categories)}
    session.flush()
    if before != after:
        record_audit(session, actor, entity_type="user", entity_id=user_id, action="skills_changed",
                     before=before, after=after)
        drain(session, teams_of(session, [user_id]))
    return row


_touched: dict[int, float] = {}
_touched_lock = threading.Lock()


def due_to_touch(user_id: int) -> bool:
    """Whether `touch` would write now (a cheap check before handing it to a thread)."""
    return time.monotonic() - _touched.get(user_id, -1e9) >= TOUCH_EVERY


def touch(workspace_id: int, user_id: int) -> None:
    """An agent's request or WebSocket frame: they are here. Written at most once a minute per process; an agent
    who comes back from idle gets the work waiting for them. Runs in its own short transaction."""
    now_mono = time.monotonic()
    with _touched_lock:
        if now_mono - _touched.get(user_id, -1e9) < TOUCH_EVERY:
            return
        _touched[user_id] = now_mono
    from otklik.platform.db import run_transaction

    def work(session: Session) -> None:
        row = agent_row(session, user_id, for_update=True)
        away_after = settings_view(workspace_settings(session, workspace_id))["away_after_minutes"]
        was = effective_availability(row, away_after)
        row.last_seen_at = utcnow()
        if was != ONLINE and row.availability == ONLINE:
            session.flush()
            drain(session, teams_of(session, [user_id]))

    try:
        run_transaction(work)
    except Exception:  # never fail a request for its bookkeeping
        import logging

        logging.getLogger(__name__).warning("could not record activity of user %s", user_id, exc_info=True)


def teams_of(session: Session, user_ids: Iterable[int]) -> list[int]:
    ids = list(set(user_ids))
    if not ids:
        return []
    return sorted(set(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id.in_(ids)))))


# -- the decision ---------------------------------------------------------------------------------------------


def _is_open(session: Session, workspace_id: int, team_id: int, at: dt.datetime) -> bool:
    from otklik.calendars.service import calendar_for, engine_of

    row = calendar_for(session, workspace_id, team_id)
    if row is None:
        return True
    try:
        return bool(engine_of(row).is_open(at))
    except Exception:  # a year outside the calendar's range: do not hold the conversation back
        return True


def _open_team_for(session: Session, conversation: Conversation, now: dt.datetime) -> int | None:
    """Out of the team's hours: the first team with auto-assignment on whose calendar is open now."""
    assert conversation.team_id is not None
    if _is_open(session, conversation.workspace_id, conversation.team_id, now):
        return None
    candidates = session.scalars(select(TeamRouting.team_id).where(
        TeamRouting.workspace_id == conversation.workspace_id, TeamRouting.auto_assign.is_(True),
        TeamRouting.team_id != conversation.team_id).order_by(TeamRouting.team_id))
    for team_id in candidates:
        if _is_open(session, conversation.workspace_id, team_id, now):
            return int(team_id)
    return None


def _lock_team(session: Session, team_id: int) -> TeamRouting | None:
    return session.scalar(select(TeamRouting).where(TeamRouting.team_id == team_id).with_for_update()
                          .execution_options(populate_existing=True))


def _skills_match(agent: Any, conversation: Conversation) -> bool:
    languages, categories = agent.languages or [], agent.categories or []
    if languages and conversation.language and conversation.language.lower() not in languages:
        return False
    return not (categories and conversation.category and conversation.category not in categories)


CANDIDATE_PAGE = 16  # agents read per step, in the method's order: a decision rarely needs more than the first


@functools.lru_cache(maxsize=16)
def _candidates_stmt(method: str, kind: str, idle_cut: bool, limited: bool) -> Any:
    """The candidates query for one shape, built once per process (building it costs more than running it);
    the team, capacity, idle cut-off, last agent and page size are bound at run time."""
    load = AgentRouting.open_email if kind == EMAIL else AgentRouting.open_chat
    stmt = (select(AgentRouting.user_id, AgentRouting.open_chat, AgentRouting.open_email, AgentRouting.languages,
                   AgentRouting.categories)
            .join(TeamMember, TeamMember.user_id == AgentRouting.user_id)
            .join(User, User.id == AgentRouting.user_id)
            .where(TeamMember.team_id == bindparam("team_id"), User.is_active.is_(True),
                   AgentRouting.availability == ONLINE, load < bindparam("capacity")))
    if idle_cut:
        stmt = stmt.where(AgentRouting.last_seen_at >= bindparam("seen_since", type_=AgentRouting.last_seen_at.type))
    after_last = case((AgentRouting.user_id <= bindparam("last_user_id"), 1), else_=0)
    order = (load, after_last, AgentRouting.user_id) if method == LEAST_BUSY else (after_last, AgentRouting.user_id)
    stmt = stmt.order_by(*order)
    if limited:
        stmt = stmt.limit(bindparam("page"))
    return stmt


def _candidates(session: Session, team: TeamRouting, kind: str, now: dt.datetime,
                limit: int | None = None, *, away_after: int | None = None) -> list[Any]:
    """Online (and not idle) active members of the team with a free slot of this kind, in the order the method
    prefers them (round-robin: after the last one assigned, then from the start; least-busy: the lightest load
    first), `limit` of them: one query over the team's members, ordered and cut in SQL, so a decision reads a
    page of agents, not the whole team (an agent who was never seen has no row yet and is not online)."""
    if away_after is None:
        away_after = cached_settings(session, team.workspace_id)["away_after_minutes"]
    stmt = _candidates_stmt(team.method, kind, bool(away_after), limit is not None)
    params: dict[str, Any] = {"team_id": team.team_id, "last_user_id": team.last_user_id or 0,
                              "capacity": team.capacity_email if kind == EMAIL else team.capacity_chat}
    if away_after:
        params["seen_since"] = now - dt.timedelta(minutes=away_after)
    if limit is not None:
        params["page"] = limit
    return list(session.connection().execute(stmt, params))


def _load(agent: Any, kind: str) -> int:
    return int(agent.open_email if kind == EMAIL else agent.open_chat)


def choose(team: TeamRouting, agents: Sequence[Any], conversation: Conversation) -> list[Any]:
    """The agents in the order the method prefers them, those with a free slot and the skills only."""
    kind = kind_of(conversation.channel)
    capacity = team.capacity_email if kind == EMAIL else team.capacity_chat
    fit = [a for a in agents if _load(a, kind) < capacity and _skills_match(a, conversation)]
    last = team.last_user_id or 0
    if team.method == LEAST_BUSY:
        return sorted(fit, key=lambda a: (_load(a, kind), a.user_id <= last, a.user_id))
    return sorted(fit, key=lambda a: (a.user_id <= last, a.user_id))


def assign(session: Session, conversation: Conversation, *, now: dt.datetime | None = None,
           actor: Actor | None = None) -> int | None:
    """Give an unassigned conversation of an auto-assigning team to an eligible agent; None: it waits in the
    team's queue (or the team does not auto-assign). The caller holds the conversation's row lock."""
    if (conversation.assignee_id is not None or conversation.team_id is None
            or conversation.merged_into_id is not None or conversation.status not in OPEN_STATUSES):
        return None
    now = now or utcnow()
    system = Actor.system(conversation.workspace_id, kind="routing")
    settings = cached_settings(session, conversation.workspace_id)
    if settings["out_of_hours_to_open_team"]:
        other = _open_team_for(session, conversation, now)
        if other is not None:
            old = conversation.team_id
            conversation.team_id = other
            conversation.version += 1
            conversation.updated_at = now
            record_audit(session, actor or system, entity_type="conversation", entity_id=conversation.id,
                         action="team_changed", before={"team_id": old}, after={"team_id": other},
                         note="out of the team's hours: routed to a team that is open now")
    team = _lock_team(session, conversation.team_id)
    if team is None or not team.auto_assign:
        return None
    kind = kind_of(conversation.channel)
    away_after = settings["away_after_minutes"]
    first = _candidates(session, team, kind, now, limit=CANDIDATE_PAGE, away_after=away_after)

    def ranked() -> Any:
        yield from choose(team, first, conversation)
        if len(first) == CANDIDATE_PAGE:  # nobody on a full first page took it: the rest of the team, read now
            seen = {a.user_id for a in first}
            rest = [a for a in _candidates(session, team, kind, now, away_after=away_after) if a.user_id not in seen]
            yield from choose(team, rest, conversation)

    capacity = team.capacity_email if kind == EMAIL else team.capacity_chat
    claim = _claim_stmt(kind)
    for agent in ranked():
        if session.connection().execute(claim, {"uid": agent.user_id, "capacity": capacity, "at": now}).first() \
                is None:
            continue  # filled meanwhile by another team's decision
        session.info.setdefault(CLAIMED, {})[id(conversation)] = (int(agent.user_id), kind)
        conversation.assignee_id = agent.user_id
        note_transfer(conversation, None, agent.user_id, now)
        conversation.version += 1
        conversation.updated_at = now
        team.last_user_id = agent.user_id
        record_audit(session, system, entity_type="conversation", entity_id=conversation.id, action="assigned",
                     before={"assignee_id": None}, after={"assignee_id": agent.user_id},
                     note=f"auto-assigned ({team.method.replace('_', '-')}, team {team.team_id})")
        session.flush()  # the counts move now (the flush hook), for the next decision in this transaction
        from otklik.conversations.service import _announce, conversation_event_data

        _announce(session, "conversation.updated", conversation.workspace_id,
                  {**conversation_event_data(conversation), "changed": ["assignee_id"], "auto_assigned": True})
        return agent.user_id
    return None


def note_transfer(conversation: Conversation, old: int | None, new: int | None, now: dt.datetime) -> None:
    """Count a transfer: a person becomes the assignee of a conversation that had been assigned before."""
    if new is None or new == old:
        return
    if conversation.first_assigned_at is None:
        conversation.first_assigned_at = now
    else:
        conversation.transfer_count = (conversation.transfer_count or 0) + 1


def queue(session: Session, team_id: int, limit: int = DRAIN_BATCH) -> list[Conversation]:
    """The team's waiting conversations: oldest first, then the most urgent."""
    rows = session.execute(select(Conversation.id, Conversation.created_at, Conversation.priority).where(
        Conversation.team_id == team_id, Conversation.assignee_id.is_(None),
        Conversation.status.in_(OPEN_STATUSES), Conversation.merged_into_id.is_(None))
        .order_by(Conversation.created_at, Conversation.id).limit(limit * 4)).all()
    ordered = sorted(rows, key=lambda r: (r.created_at, -PRIORITY_RANK[r.priority], r.id))[:limit]
    out = []
    for r in ordered:
        stmt = select(Conversation).where(Conversation.id == r.id).with_for_update()
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)  # being changed right now: its own change routes it
        conv = session.scalar(stmt.execution_options(populate_existing=True))
        if conv is not None and conv.assignee_id is None and conv.team_id == team_id:
            out.append(conv)
    return out


def drain(session: Session, team_ids: Iterable[int], *, now: dt.datetime | None = None) -> int:
    """Capacity freed up (a solve, an agent online, a capacity raised): assign what waits, oldest first. Teams
    are locked in id order before any agent row (the lock order). Returns how many were assigned."""
    assigned = 0
    for team_id in sorted(set(team_ids)):
        team = _lock_team(session, team_id)
        if team is None or not team.auto_assign:
            continue
        for conversation in queue(session, team_id):
            if assign(session, conversation, now=now) is None:
                if conversation.team_id == team_id:
                    break  # nobody can take the oldest: the rest waits behind it
            else:
                assigned += 1
    return assigned


def lock_teams_for(session: Session, conversation: Conversation) -> None:
    """Take the team locks a change of this conversation may need, before its counts move (the lock order)."""
    ids = set(teams_of(session, [conversation.assignee_id])) if conversation.assignee_id else set()
    if conversation.team_id is not None:
        ids.add(conversation.team_id)
    with session.no_autoflush:
        for team_id in sorted(ids):
            _lock_team(session, team_id)

