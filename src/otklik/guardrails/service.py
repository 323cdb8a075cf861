"""Deadlines for a workspace: the calculator on the workspace's production calendar."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy.orm import Session

from otklik.accounts.service import Actor, record_audit
from otklik.calendars.engine import WEEKDAYS, CalendarSpec, compiled
from otklik.calendars.service import default_calendar
from otklik.conversations import reply_checks, sla
from otklik.conversations.models import Conversation, Direction, Message, Status
from otklik.conversations.service import get_conversation
from otklik.guardrails import deadlines
from otklik.guardrails.law import LAW_VERSION, SITUATIONS, keys_of, rule_of
from otklik.guardrails.models import LegalCase, LegalSettings
from otklik.platform.cache import ProcessCache
from otklik.platform.db import aware, utcnow
from otklik.platform.errors import field_error

# The shipped store contact reasons (the assistant's list) and the legal situation each starts from; the agent
# can pick another in the side bar.
REASON_SITUATIONS = {
    "return_good_quality": "return_distance_sale", "defective": "defect", "damaged_in_delivery": "defect",
    "missing_parts": "defect", "warranty_repair": "warranty_repair", "late_delivery": "late_delivery_prepaid",
    "installation": "late_service",
}

# Which days are working for ГК ст. 193 is the production calendar's question, not the support team's hours:
# Monday to Friday, minus the country's holidays and transfers and the workspace's own days off.
_OFFICE_WEEK = {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]}


@functools.lru_cache(maxsize=256)
def _production(country: str | None, days_off: tuple[str, ...], working_days: tuple[str, ...]) -> Any:
    return compiled(CalendarSpec.from_mapping("Europe/Moscow", _OFFICE_WEEK, country, days_off, working_days))


CACHE_SECONDS = 5.0  # another process's calendar or legal-settings change is seen within this long


def _calendar_generation() -> int:
    from otklik.calendars import service as calendars

    return calendars.GENERATION[0]


# A per-process copy of a workspace's default calendar and legal settings: a deadline calculation then reads no
# row (on PostgreSQL each read is a round trip). Dropped at once when this process changes a calendar
# (calendars.service.GENERATION) or the legal settings, within CACHE_SECONDS when another process does.
_cache = ProcessCache(CACHE_SECONDS, generation=_calendar_generation)


def non_working_for(session: Session, workspace_id: int) -> tuple[Any, str]:
    """(date -> non-working?, the calendar's time zone) of the workspace's default calendar; the Russian
    production calendar when it has none."""
    def load() -> tuple[Any, str]:
        row = default_calendar(session, workspace_id)
        if row is None:
            return _production("RU", (), ()), "Europe/Moscow"
        return (_production(row.holidays or None, tuple(row.days_off or ()), tuple(row.working_days or ())),
                row.time_zone)

    cal, zone = _cache.get(("calendar", workspace_id), load)
    return (lambda day: not cal.day(day)[1]), zone


def compute(session: Session, workspace_id: int, situation: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the seller owes in `situation`, with the workspace's own terms where they are stricter."""
    inputs = deadlines.inputs_from(data)
    non_working, zone = non_working_for(session, workspace_id)
    from zoneinfo import ZoneInfo

    today = inputs.today or dt.datetime.now(ZoneInfo(zone)).date()
    try:
        found, missing = deadlines.obligations(situation, inputs, non_working, today,
                                               shop_terms(session, workspace_id))
    except deadlines.InputError as exc:
        raise field_error(exc.field, exc.message) from None
    return {"situation": situation, "today": today.isoformat(), "law_version": LAW_VERSION,
            "obligations": found, "missing": missing, "time_zone": zone}


# -- the workspace's settings: its reasons mapped to situations, its own terms ---------------------------------

MAX_TERMS = 50
MAX_WARN_DAYS = 30


def _settings_row(session: Session, workspace_id: int) -> Any:
    """The workspace's legal settings as a plain snapshot (cached like the calendar); None when never set."""
    def load() -> Any:
        row = session.get(LegalSettings, workspace_id)
        if row is None:
            return None
        from types import SimpleNamespace

        return SimpleNamespace(reason_situations=dict(row.reason_situations or {}),
                               terms=[dict(t) for t in (row.terms or [])], warn_days=row.warn_days)

    return _cache.get(("settings", workspace_id), load)


def reason_situations(session: Session, workspace_id: int) -> dict[str, str]:
    """The workspace's contact reasons -> situations: the shipped store mapping, overridden reason by reason by
    the workspace's own (an empty value unmaps a reason)."""
    row = _settings_row(session, workspace_id)
    merged = {**REASON_SITUATIONS, **(dict(row.reason_situations or {}) if row is not None else {})}
    return {k: v for k, v in merged.items() if v}


def shop_terms(session: Session, workspace_id: int) -> tuple[deadlines.ShopTerm, ...]:
    row = _settings_row(session, workspace_id)
    if row is None:
        return ()
    return tuple(deadlines.ShopTerm(situation=t["situation"], key=t["key"], days=int(t.get("days") or 0),
                                    months=int(t.get("months") or 0), title=str(t.get("title") or ""))
                 for t in (row.terms or []))


def warn_days(session: Session, workspace_id: int) -> int:
    row = _settings_row(session, workspace_id)
    return 2 if row is None or row.warn_days is None else int(row.warn_days)


def settings_view(session: Session, workspace_id: int) -> dict[str, Any]:
    row = _settings_row(session, workspace_id)
    return {"reason_situations": reason_situations(session, workspace_id),
            "own_reason_situations": dict(row.reason_situations or {}) if row is not None else {},
            "shipped_reason_situations": dict(REASON_SITUATIONS),
            "terms": list(row.terms or []) if row is not None else [],
            "warn_days": warn_days(session, workspace_id), "situations": list(SITUATIONS),
            "obligations": {s: [{"key": k, "title": (rule_of(s, k).title if rule_of(s, k) else k),  # type: ignore[union-attr]
                                 "customer_window": bool(getattr(rule_of(s, k), "customer_window", False)),
                                 "fixed_date": bool(getattr(rule_of(s, k), "fixed_date", False))}
                                for k in keys_of(s)] for s in SITUATIONS},
            "law_version": LAW_VERSION}


def _clean_terms(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise field_error("terms", "a list of {situation, key, days | months, title}")
    if len(value) > MAX_TERMS:
        raise field_error("terms", f"at most {MAX_TERMS} terms")
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(value):
        where = f"terms.{i}"
        if not isinstance(t, dict):
            raise field_error(where, "an object {situation, key, days | months, title}")
        unknown = set(t) - {"situation", "key", "days", "months", "title"}
        if unknown:
            raise field_error(f"{where}.{sorted(unknown)[0]}", "unknown field")
        situation, key = t.get("situation"), t.get("key")
        if situation not in SITUATIONS:
            raise field_error(f"{where}.situation", f"one of: {', '.join(SITUATIONS)}")
        rule = rule_of(str(situation), str(key)) if isinstance(key, str) else None
        if rule is None:
            raise field_error(f"{where}.key", f"one of: {', '.join(keys_of(str(situation)))}")
        if rule.fixed_date:
            raise field_error(f"{where}.key", "this obligation's date is agreed with the customer, not a term")
        days, months = t.get("days"), t.get("months")
        given = [n for n, v in (("days", days), ("months", months)) if v not in (None, 0)]
        if len(given) != 1:
            raise field_error(f"{where}.days", "give days or months (one of them)")
        for name, v, top in (("days", days, 3650), ("months", months, 120)):
            if v not in (None, 0) and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top):
                raise field_error(f"{where}.{name}", f"a whole number from 1 to {top}")
        title = t.get("title") or ""
        if not isinstance(title, str) or len(title) > 120:
            raise field_error(f"{where}.title", "text of at most 120 characters")
        if (situation, key) in seen:
            raise field_error(f"{where}.key", "this obligation has a term already")
        seen.add((str(situation), str(key)))
        out.append({"situation": situation, "key": key, **({"days": days} if days else {"months": months}),
                    "title": title.strip()})
    return out


def _clean_mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise field_error("reason_situations", "an object {contact reason: situation}")
    if len(value) > 200:
        raise field_error("reason_situations", "at most 200 reasons")
    out: dict[str, str] = {}
    for reason, situation in value.items():
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 64:
            raise field_error("reason_situations", "reasons are names of at most 64 characters")
        if situation in (None, ""):
            out[reason.strip()] = ""
        elif situation not in SITUATIONS:
            raise field_error(f"reason_situations.{reason}", f"one of: {', '.join(SITUATIONS)}, or empty")
        else:
            out[reason.strip()] = str(situation)
    return out


def update_settings(session: Session, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Change the workspace's mapping, terms or warning days (admins); the open conversations' legal timers are
    re-counted in the same transaction."""
    from otklik.accounts.models import Role

    actor.require(Role.admin)
    row = session.get(LegalSettings, actor.workspace_id)
    if row is None:
        row = LegalSettings(workspace_id=actor.workspace_id, reason_situations={}, terms=[], warn_days=2)
        session.add(row)
    before = {"reason_situations": dict(row.reason_situations or {}), "terms": list(row.terms or []),
              "warn_days": row.warn_days}
    if "reason_situations" in data:
        row.reason_situations = _clean_mapping(data["reason_situations"])
    if "terms" in data:
        row.terms = _clean_terms(data["terms"])
    if "warn_days" in data:
        value = data["warn_days"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WARN_DAYS:
            raise field_error("warn_days", f"whole days from 0 to {MAX_WARN_DAYS}")
        row.warn_days = value
    row.updated_at = utcnow()
    session.flush()
    _cache.forget(("settings", actor.workspace_id), session)  # this transaction reads the new settings
    after = {"reason_situations": row.reason_situations, "terms": row.terms, "warn_days": row.warn_days}
    if before != after:
        record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                     action="legal_settings_changed", before=before, after=after)
        resync_workspace(session, actor.workspace_id)
    return settings_view(session, actor.workspace_id)


# -- a conversation's case, and its deadlines as timers ------------------------------------------------------------


def situation_of(session: Session, conversation: Conversation, case: LegalCase | None = None) -> str | None:
    case = case if case is not None else session.get(LegalCase, conversation.id)
    if case is not None and case.situation:
        return case.situation
    return reason_situations(session, conversation.workspace_id).get(conversation.category or "")


def _view(session: Session, conversation: Conversation, situation_hint: str | None = None) -> dict[str, Any]:
    case = session.get(LegalCase, conversation.id)
    situation = situation_of(session, conversation, case) or situation_hint
    inputs = dict(case.inputs or {}) if case is not None else {}
    view: dict[str, Any] = {"situation": situation, "chosen": bool(case and case.situation), "inputs": inputs,
                            "obligations": [], "missing": [], "law_version": LAW_VERSION}
    if situation:
        try:
            view.update(compute(session, conversation.workspace_id, situation, _parse_inputs(inputs)))
        except Exception:  # stored inputs that no longer pass (a rule changed): show them, ask again
            view["missing"] = ["inputs"]
    return view


def _local_midnight(day: dt.date, zone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(0), ZoneInfo(zone)).astimezone(dt.UTC)


def sync_timers(session: Session, conversation: Conversation, view: dict[str, Any] | None = None) -> bool:
    """The conversation's legal timers from its case: each obligation with a due date runs from 00:00 of its
    first day to the end of its last day (ГК ст. 191, 194) in the workspace calendar's zone, and warns
    `warn_days` before (settings). Returns whether a timer changed."""
    view = view if view is not None else _view(session, conversation)
    zone = view.get("time_zone") or non_working_for(session, conversation.workspace_id)[1]
    ahead = dt.timedelta(days=warn_days(session, conversation.workspace_id))
    dues = []
    for o in view.get("obligations") or []:
        start = _local_midnight(dt.date.fromisoformat(o["starts_on"]), zone)
        due = _local_midnight(dt.date.fromisoformat(o["due_on"]) + dt.timedelta(days=1), zone)
        dues.append(sla.LegalDue(key=o["key"], starts_at=start, due_at=due, warn_at=max(due - ahead, start)))
    return sla.set_legal_timers(session, conversation, dues)


def resync_workspace(session: Session, workspace_id: int) -> int:
    """Re-count the legal timers of the workspace's open conversations that have a case (settings changed)."""
    from sqlalchemy import select

    rows = session.scalars(select(Conversation).join(LegalCase, LegalCase.conversation_id == Conversation.id)
                           .where(Conversation.workspace_id == workspace_id,
                                  Conversation.status.in_((Status.new.value, Status.open.value,
                                                           Status.pending.value)),
                                  Conversation.merged_into_id.is_(None)))
    return sum(1 for c in rows if sync_timers(session, c))


def on_conversation_changed(session: Session, conversation: Conversation, changed: frozenset[str]) -> None:
    """A conversation's contact reason changed: its situation (when not chosen by hand) and timers may too."""
    if "category" in changed and session.get(LegalCase, conversation.id) is not None:
        sync_timers(session, conversation)


def _parse_inputs(raw: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON (ISO dates, sums as strings, flags) -> the calculator's typed values; bad ones are 422s."""
    from decimal import Decimal, InvalidOperation

    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if value in (None, ""):
            continue
        if name in deadlines.DATE_FIELDS:
            try:
                out[name] = dt.date.fromisoformat(str(value))
            except ValueError:
                raise field_error(f"inputs.{name}", "an ISO date YYYY-MM-DD") from None
        elif name in deadlines.MONEY_FIELDS:
            try:
                out[name] = Decimal(str(value).replace(",", ".").replace(" ", ""))
            except InvalidOperation:
                raise field_error(f"inputs.{name}", "a sum in roubles") from None
        elif name in deadlines.FLAG_FIELDS:
            if not isinstance(value, bool):
                raise field_error(f"inputs.{name}", "true, false or null")
            out[name] = value
        else:
            raise field_error(f"inputs.{name}", "unknown input")
    return out


def case_view(session: Session, actor: Actor, conversation: Conversation) -> dict[str, Any]:
    """The conversation's situation (chosen, else from its contact reason), the inputs and what is owed."""
    return _view(session, conversation)


def save_case(session: Session, actor: Actor, conversation_id: int, situation: str | None,
              inputs: dict[str, Any]) -> dict[str, Any]:
    conversation = get_conversation(session, actor, conversation_id)
    if situation is not None and situation not in SITUATIONS:
        raise field_error("situation", f"one of: {', '.join(SITUATIONS)}")
    clean = {k: v for k, v in (inputs or {}).items() if v not in (None, "")}
    typed = _parse_inputs(clean)
    effective = situation or reason_situations(session, conversation.workspace_id).get(conversation.category or "")
    if effective:
        compute(session, actor.workspace_id, effective, typed)  # impossible dates are a 422 now, not later
    case = session.get(LegalCase, conversation.id)
    before = None if case is None else {"situation": case.situation, "inputs": case.inputs}
    if case is None:
        case = LegalCase(conversation_id=conversation.id, workspace_id=conversation.workspace_id)
        session.add(case)
    case.situation, case.inputs, case.updated_at, case.updated_by = situation, clean, utcnow(), actor.user_id
    session.flush()
    record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="legal_case_changed",
                 before=before, after={"situation": situation, "inputs": clean})
    view = _view(session, conversation)
    if sync_timers(session, conversation, view):
        from otklik.conversations.service import _announce, conversation_event_data

        conversation.version += 1
        conversation.updated_at = utcnow()
        _announce(session, "conversation.updated", conversation.workspace_id,
                  {**conversation_event_data(conversation), "changed": ["legal_due_at"]})
    return view


# -- the legal-deadline reply check (conversations.reply_checks): every path a reply leaves by ------------------


def overdue_obligations(session: Session, conversation: Conversation,
                        now: dt.datetime | None = None) -> list[sla.SlaTimer]:
    now = now or utcnow()
    if conversation.legal_due_at is None or aware(conversation.legal_due_at) > aware(now):
        return []
    return [t for t in sla.timers_for(session, conversation.id)
            if sla.is_legal(t.kind) and t.stopped_at is None and t.due_at is not None
            and aware(t.due_at) <= aware(now)]


def _acknowledged_since(session: Session, conversation_id: int, since: dt.datetime) -> bool:
    from sqlalchemy import select

    rows = session.scalars(select(Message.meta).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.outbound.value,
        Message.created_at >= since).order_by(Message.id.desc()).limit(50))
    return any("legal_overdue" in ((meta or {}).get("acknowledged") or []) for meta in rows)


def legal_reply_check(session: Session, conversation: Conversation, text: str,
                      context: dict[str, Any]) -> list[reply_checks.Problem]:
    """A public reply in a conversation whose legal deadline has passed: the agent confirms once that the reply
    takes it into account (409 `legal_overdue` until acknowledged; after one acknowledged reply it is a hint);
    the assistant's and automation rules' texts get the hint (the assistant hands such a case to a person)."""
    late = overdue_obligations(session, conversation)
    if not late:
        return []
    view = _view(session, conversation)
    by_key = {o["key"]: o for o in view.get("obligations") or []}
    parts = []
    for t in late:
        key = t.kind[len(sla.LEGAL_PREFIX):]
        o = by_key.get(key)
        if o is None:
            continue
        penalty = f", неустойка {o['penalty']} ₽" if o.get("penalty") else ""
        parts.append(f"«{o['title']}» ({o['article']}) — срок {dt.date.fromisoformat(o['due_on']):%d.%m.%Y}, "
                     f"просрочка {o['overdue_days']} дн.{penalty}")
    if not parts:
        return []
    message = "Срок по закону истёк: " + "; ".join(parts) + ". Ответ должен это учитывать."
    earliest = min(aware(t.due_at) for t in late if t.due_at is not None)
    machine = context.get("author") == "assistant" or context.get("path") == "rule"
    severity = "hint" if machine or _acknowledged_since(session, conversation.id, earliest) else "confirm"
    return [reply_checks.Problem("legal_overdue", message, severity=severity,  # type: ignore[arg-type]
                                 details={"obligations": [t.kind[len(sla.LEGAL_PREFIX):] for t in late]})]


reply_checks.register_content("legal_deadline", legal_reply_check)


def _register() -> None:
    from otklik.conversations.service import register_change_hook

    register_change_hook(on_conversation_changed)


_register()


# -- the customer's own account of elapsed time (the assistant asks before it answers) ----------------------------

# situations whose terms count from the customer's demand (handing the goods in for repair, asking for the money
# back): «уже 50 дней» dates that demand; others (a delivery date agreed, goods received) are not pre-filled
DEMAND_SITUATIONS = ("warranty_repair", "defect")


def assess_message(session: Session, conversation: Conversation, text: str, reason: str | None,
                   today: dt.date | None = None) -> dict[str, Any] | None:
    """A customer message in a consumer-law situation that states how long it has taken («ремонт уже 50 дней»):
    the demand date it implies is put on the case for the agent to confirm (unless one is there already), the
    legal timers follow, and the obligations the customer's account already puts past due are returned with a
    note for the hand-off. None when the message is in no such situation or states no elapsed time."""
    from otklik.guardrails.extract import elapsed_days

    case = session.get(LegalCase, conversation.id)
    situation = (case.situation if case is not None and case.situation else None) or \
        reason_situations(session, conversation.workspace_id).get(reason or conversation.category or "")
    if situation not in DEMAND_SITUATIONS:
        return None
    zone = non_working_for(session, conversation.workspace_id)[1]
    from zoneinfo import ZoneInfo

    today = today or dt.datetime.now(ZoneInfo(zone)).date()
    days = elapsed_days(text, today)
    if days is None or days <= 0 or days > 3 * 366:
        return None
    inputs = dict(case.inputs or {}) if case is not None else {}
    demanded = (today - dt.timedelta(days=days)).isoformat()
    prefilled = False
    if not inputs.get("demanded_on"):
        if case is None:
            case = LegalCase(conversation_id=conversation.id, workspace_id=conversation.workspace_id,
                             situation=None, inputs={})
            session.add(case)
        case.inputs = {**inputs, "demanded_on": demanded}
        case.updated_at = utcnow()
        session.flush()
        record_audit(session, Actor.system(conversation.workspace_id, kind="assistant"), entity_type="conversation",
                     entity_id=conversation.id, action="legal_case_changed", before={"inputs": inputs},
                     after={"inputs": case.inputs}, note=f"from the customer's message: {days} days ago")
        prefilled = True
    view = _view(session, conversation, situation_hint=situation)  # the reason may not be on it yet
    sync_timers(session, conversation, view)
    late = [o for o in view.get("obligations") or [] if o.get("overdue_days")]
    parts = [f"{o['title']} ({o['article']}): срок {dt.date.fromisoformat(o['due_on']):%d.%m.%Y}, просрочка "
             f"{o['overdue_days']} дн." for o in late]
    note = (f"по словам клиента прошло {days} дн."
            + (f", дата обращения ≈ {dt.date.fromisoformat(demanded):%d.%m.%Y} — проверьте" if prefilled else "")
            + ("; " + "; ".join(parts) if parts else ""))
    return {"situation": situation, "elapsed_days": days, "prefilled": prefilled, "overdue": late, "note": note}
