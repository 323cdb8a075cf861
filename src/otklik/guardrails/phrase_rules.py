"""A workspace's phrase rules on top of the shipped list: its own phrases, shipped ones switched off or given
another severity, reason or alternatives (table `phrase_rules`); the reply check every public reply passes
(«never» phrases: an agent confirms, the assistant never sends one; «avoid» phrases and tone: hints only); and
the report of the phrases agents used most. Never renders anything and never imports the web or the assistant.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role, User
from otklik.accounts.service import Actor, record_audit
from otklik.conversations import reply_checks
from otklik.conversations.models import Conversation, Message
from otklik.guardrails import phrases
from otklik.guardrails.phrases import Engine, Rule
from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow
from otklik.platform.errors import NotFound, field_error

CUSTOM_PREFIX = "ws."
MAX_ALTERNATIVES = 10
MAX_TEXT = 500
MAX_CUSTOM_RULES = 500


class PhraseRule(Base):
    """A workspace's own phrase (`shipped_id` empty) or its change to a shipped one (`shipped_id` set; empty
    fields keep the shipped values)."""

    __tablename__ = "phrase_rules"
    __table_args__ = (UniqueConstraint("workspace_id", "shipped_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    shipped_id: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(2))
    phrase: Mapped[str | None] = mapped_column(String(phrases.MAX_PHRASE))
    severity: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    alternatives: Mapped[list[str] | None] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


@dataclass(frozen=True)
class RuleView:
    rule: Rule
    enabled: bool
    changed: bool  # a shipped rule this workspace changed (or switched off)

    def as_dict(self) -> dict[str, Any]:
        return {**self.rule.as_dict(), "enabled": self.enabled, "changed": self.changed}


# -- the workspace's rules --------------------------------------------------------------------------------------


def _rows(session: Session, workspace_id: int) -> list[PhraseRule]:
    return list(session.scalars(select(PhraseRule).where(PhraseRule.workspace_id == workspace_id)
                                .order_by(PhraseRule.id)))


def _custom(row: PhraseRule) -> Rule:
    return Rule(id=f"{CUSTOM_PREFIX}{row.id}", language=row.language, phrase=row.phrase or "",
                severity=row.severity or "avoid", reason=row.reason or "", alternatives=tuple(row.alternatives or ()),
                shipped=False)


def _views(rows: list[PhraseRule]) -> list[RuleView]:
    changes = {r.shipped_id: r for r in rows if r.shipped_id}
    out: list[RuleView] = []
    for rule in phrases.shipped_rules():
        row = changes.get(rule.id)
        if row is None:
            out.append(RuleView(rule, True, False))
            continue
        changed = replace(rule, severity=row.severity or rule.severity, reason=row.reason or rule.reason,
                          alternatives=tuple(row.alternatives) if row.alternatives else rule.alternatives)
        out.append(RuleView(changed, row.enabled, True))
    out.extend(RuleView(_custom(r), r.enabled, False) for r in rows if not r.shipped_id)
    return out


def rule_views(session: Session, actor: Actor, *, language: str | None = None, q: str | None = None) -> list[RuleView]:
    views = _views(_rows(session, actor.workspace_id))
    if language:
        views = [v for v in views if v.rule.language == language]
    if q:
        needle = phrases.normalise(q.strip())
        views = [v for v in views if needle in v.rule.phrase or needle in phrases.normalise(v.rule.reason)
                 or needle in v.rule.id]
    return views


def get_view(session: Session, actor: Actor, rule_id: str) -> RuleView:
    for view in _views(_rows(session, actor.workspace_id)):
        if view.rule.id == rule_id:
            return view
    raise NotFound(f"phrase rule {rule_id} not found")


_cache: dict[int, tuple[tuple[Any, ...], Engine]] = {}
_cache_lock = threading.Lock()


def engine_for(session: Session, workspace_id: int) -> Engine:
    """The workspace's enabled rules, compiled; recompiled only when its rows change (one small read a call)."""
    rows = _rows(session, workspace_id)
    if not rows:
        return phrases.shipped_engine()
    key = tuple((r.id, r.updated_at, r.enabled) for r in rows)
    with _cache_lock:
        hit = _cache.get(workspace_id)
        if hit and hit[0] == key:
            return hit[1]
    engine = Engine([v.rule for v in _views(rows) if v.enabled])
    with _cache_lock:
        _cache[workspace_id] = (key, engine)
    return engine


# -- changes ----------------------------------------------------------------------------------------------------


def _clean(data: dict[str, Any], *, custom: bool) -> dict[str, Any]:
    """Checks the fields given; 422 naming the field."""
    out: dict[str, Any] = {}
    if "language" in data:
        if data["language"] not in phrases.LANGUAGES:
            raise field_error("language", f"one of: {', '.join(phrases.LANGUAGES)}")
        out["language"] = data["language"]
    if "phrase" in data:
        if not custom:
            raise field_error("phrase", "a shipped rule's phrase stays as shipped: add your own rule instead")
        try:
            out["phrase"] = phrases.check_phrase(str(data["phrase"] or ""))
        except phrases.PhraseError as exc:
            raise field_error("phrase", str(exc)) from None
    if "severity" in data:
        if data["severity"] not in phrases.SEVERITIES:
            raise field_error("severity", f"one of: {', '.join(phrases.SEVERITIES)}")
        out["severity"] = data["severity"]
    if "reason" in data:
        reason = " ".join(str(data["reason"] or "").split())
        if len(reason) > MAX_TEXT:
            raise field_error("reason", f"at most {MAX_TEXT} characters")
        if custom and not reason:
            raise field_error("reason", "say why the phrase should not be used")
        out["reason"] = reason or None
    if "alternatives" in data:
        items = data["alternatives"]
        if not isinstance(items, list) or len(items) > MAX_ALTERNATIVES:
            raise field_error("alternatives", f"a list of at most {MAX_ALTERNATIVES} texts")
        clean = []
        for i, item in enumerate(items):
            text = " ".join(str(item).split()) if isinstance(item, str) else ""
            if not text or len(text) > MAX_TEXT:
                raise field_error(f"alternatives.{i}", f"1-{MAX_TEXT} characters")
            clean.append(text)
        out["alternatives"] = clean or None
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise field_error("enabled", "true or false")
        out["enabled"] = data["enabled"]
    return out


def create_rule(session: Session, actor: Actor, data: dict[str, Any]) -> RuleView:
    actor.require(Role.supervisor)
    for name in ("language", "phrase", "severity", "reason"):
        if data.get(name) in (None, ""):
            raise field_error(name, "required")
    clean = _clean(data, custom=True)
    count = len([r for r in _rows(session, actor.workspace_id) if not r.shipped_id])
    if count >= MAX_CUSTOM_RULES:
        raise field_error("phrase", f"at most {MAX_CUSTOM_RULES} own rules")
    row = PhraseRule(workspace_id=actor.workspace_id, shipped_id=None, updated_by=actor.user_id,
                     enabled=clean.pop("enabled", True), **clean)
    session.add(row)
    session.flush()
    record_audit(session, actor, entity_type="phrase_rule", entity_id=row.id, action="created",
                 after={"phrase": row.phrase, "severity": row.severity})
    return get_view(session, actor, f"{CUSTOM_PREFIX}{row.id}")


def _custom_row(session: Session, actor: Actor, rule_id: str) -> PhraseRule | None:
    if not rule_id.startswith(CUSTOM_PREFIX):
        return None
    number = rule_id.removeprefix(CUSTOM_PREFIX)
    row = session.get(PhraseRule, int(number)) if number.isdigit() and len(number) < 12 else None
    if row is None or row.workspace_id != actor.workspace_id or row.shipped_id:
        raise NotFound(f"phrase rule {rule_id} not found")  # another workspace's rule is not there at all
    return row


def update_rule(session: Session, actor: Actor, rule_id: str, data: dict[str, Any]) -> RuleView:
    actor.require(Role.supervisor)
    row = _custom_row(session, actor, rule_id)
    if row is None:
        get_view(session, actor, rule_id)  # 404 for an unknown id
        clean = _clean(data, custom=False)
        if "language" in clean:
            raise field_error("language", "a shipped rule's language stays as shipped")
        row = session.scalar(select(PhraseRule).where(PhraseRule.workspace_id == actor.workspace_id,
                                                      PhraseRule.shipped_id == rule_id))
        if row is None:
            shipped = next(r for r in phrases.shipped_rules() if r.id == rule_id)
            row = PhraseRule(workspace_id=actor.workspace_id, shipped_id=rule_id, language=shipped.language,
                             enabled=True)
            session.add(row)
    else:
        clean = _clean(data, custom=True)
        if clean.get("reason", "x") is None:
            raise field_error("reason", "say why the phrase should not be used")
    for key, value in clean.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    row.updated_by = actor.user_id
    session.flush()
    record_audit(session, actor, entity_type="phrase_rule", entity_id=row.id, action="updated",
                 after={"rule_id": rule_id, **{k: v for k, v in clean.items()}})
    return get_view(session, actor, rule_id)


def delete_rule(session: Session, actor: Actor, rule_id: str) -> None:
    """Deletes a workspace's own rule, or takes back its changes to a shipped one (the shipped rule stays)."""
    actor.require(Role.supervisor)
    row = _custom_row(session, actor, rule_id)
    if row is None:
        get_view(session, actor, rule_id)
        row = session.scalar(select(PhraseRule).where(PhraseRule.workspace_id == actor.workspace_id,
                                                      PhraseRule.shipped_id == rule_id))
        if row is None:
            return
    record_audit(session, actor, entity_type="phrase_rule", entity_id=row.id, action="deleted",
                 before={"rule_id": rule_id})
    session.delete(row)
    session.flush()


# -- checks -----------------------------------------------------------------------------------------------------


def check_text(session: Session, actor: Actor, text: str, *, language: str | None = None) -> list[phrases.Match]:
    return engine_for(session, actor.workspace_id).check(text, language=language)


def is_upset(conversation: Conversation) -> bool:
    """The assistant judged the customer angry or the matter urgent."""
    return conversation.sentiment == "negative" or bool(conversation.urgent)


def phrase_reply_check(session: Session, conversation: Conversation, text: str,
                       context: dict[str, Any]) -> list[reply_checks.Problem]:
    """The server's re-check on send, on every path: a «never» phrase must be confirmed by the agent
    (`phrase_never`), and the assistant never sends one (block); «avoid» phrases and tone are hints."""
    matches = engine_for(session, conversation.workspace_id).check(text)
    problems: list[reply_checks.Problem] = []
    never = [m for m in matches if m.severity == "never"]
    if never:
        by_assistant = context.get("author") == "assistant"
        shown = "; ".join(f"«{m.phrase}»" for m in never[:3])
        problems.append(reply_checks.Problem(
            code="phrase_never", severity="block" if by_assistant else "confirm",
            # in the rule's own words (Russian for a Russian phrase): the agent's page shows it as it is
            message=f"{shown} — {never[0].reason} → {' / '.join(never[0].alternatives[:2])}",
            details={"matches": [m.as_dict() for m in never]}))
    avoid = [m for m in matches if m.severity == "avoid"]
    if avoid:
        problems.append(reply_checks.Problem(
            code="phrase_avoid", severity="hint",
            message="better without: " + "; ".join(f"«{m.phrase}»" for m in avoid[:3]),
            details={"matches": [m.as_dict() for m in avoid]}))
    for hint in phrases.tone_hints(text, upset=is_upset(conversation), language=phrases.language_of(text)):
        problems.append(reply_checks.Problem(code=hint["code"], severity="hint", message=hint["message"],
                                             details={"alternatives": hint["alternatives"]}))
    return problems


reply_checks.register_content("phrases", phrase_reply_check)


# -- the report -------------------------------------------------------------------------------------------------

REPORT_LIMIT = 50_000  # replies scanned per report, newest first


def report(session: Session, actor: Actor, *, since: dt.datetime, until: dt.datetime,
           top: int = 5) -> dict[str, Any]:
    """Every public agent reply in [since, until) scored by the workspace's rules: per agent, how many replies,
    how many with a phrase, and the most frequent phrases."""
    if until <= since:
        raise field_error("until", "comes after since")
    engine = engine_for(session, actor.workspace_id)
    stmt = (select(Message.author_user_id, Message.body_text)
            .where(Message.workspace_id == actor.workspace_id, Message.author_kind == "agent",
                   Message.direction == "outbound", Message.is_internal.is_(False),
                   Message.created_at >= since, Message.created_at < until)
            .order_by(Message.id.desc()).limit(REPORT_LIMIT))
    per_agent: dict[int | None, dict[str, Any]] = {}
    rules = {r.id: r for r in engine.rules}
    for user_id, body in session.execute(stmt):
        entry = per_agent.setdefault(user_id, {"replies": 0, "flagged": 0, "never": 0, "rules": Counter(),
                                               "words": {}})
        entry["replies"] += 1
        found = engine.check(body or "")
        if found:
            entry["flagged"] += 1
            entry["never"] += sum(1 for m in found if m.severity == "never")
            entry["rules"].update(m.rule_id for m in found)
            for m in found:  # the words as agents wrote them, most frequent first, for the report to show
                entry["words"].setdefault(m.rule_id, Counter())[" ".join(m.phrase.lower().split())] += 1
    names = dict(session.execute(select(User.id, User.name).where(User.workspace_id == actor.workspace_id)).all())
    agents = []
    for user_id, entry in per_agent.items():
        agents.append({
            "agent_id": user_id, "agent_name": names.get(user_id or 0, "—"), "replies": entry["replies"],
            "flagged_replies": entry["flagged"], "never_phrases": entry["never"],
            "top": [{"rule_id": rid, "count": n, "phrase": rules[rid].phrase if rid in rules else rid,
                     "said": entry["words"][rid].most_common(1)[0][0],
                     "severity": rules[rid].severity if rid in rules else "avoid"}
                    for rid, n in entry["rules"].most_common(top)]})
    agents.sort(key=lambda a: (-a["never_phrases"], -a["flagged_replies"], a["agent_name"]))
    return {"since": since.isoformat(), "until": until.isoformat(), "agents": agents}
