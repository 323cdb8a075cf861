"""Mystery shopping (docs/qa.md «Mystery shopping»): a supervisor writes a scenario — a title, the opening
message, what a good answer contains — and starts runs of it. A run opens a test session of the website widget
(the widget registers the opener: this domain never imports the web layer) that sends the opening message, so the
agents and the assistant meet it like any visitor's; its conversation is flagged `mystery` in the same
transaction and is therefore left out of every customer figure (reports, rollup, exports, CSAT/NPS surveys). A run
is scored by the QA scorecard when it is solved, like any conversation, plus which expected points the replies
covered.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import AuthorKind, Conversation, Message
from otklik.feedback.models import MysteryRun, MysteryScenario
from otklik.feedback.qa import QaScore
from otklik.platform.errors import Conflict, NotFound, field_error

MAX_TITLE, MAX_OPENING, MAX_EXPECTED, MAX_POINTS = 200, 2000, 4000, 20
LANGUAGES = ("ru", "en")

# (session, workspace id, opening text, language) → the id of the conversation the test visitor's message opened
Opener = Callable[[Session, int, str, str], int]
_opener: list[Opener] = []


def register_opener(opener: Opener) -> None:
    """The website widget's test session (web/widget): called once at import."""
    _opener[:] = [opener]


def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise field_error(field, "required")
    if len(text) > limit:
        raise field_error(field, f"at most {limit} characters")
    return text


def points(expected: str) -> list[str]:
    return [line.strip(" -•\t") for line in (expected or "").splitlines() if line.strip(" -•\t")]


def create_scenario(session: Session, actor: Actor, *, title: str, opening: str, expected: str = ""
                    ) -> MysteryScenario:
    actor.require(Role.supervisor)
    scenario = MysteryScenario(workspace_id=actor.workspace_id, title=_text(title, "title", MAX_TITLE),
                               opening=_text(opening, "opening", MAX_OPENING),
                               expected="\n".join(points(_text(expected, "expected", MAX_EXPECTED, required=False))),
                               created_by_id=actor.user_id)
    if len(points(scenario.expected)) > MAX_POINTS:
        raise field_error("expected", f"at most {MAX_POINTS} points, one a line")
    session.add(scenario)
    session.flush()
    record_audit(session, actor, entity_type="mystery_scenario", entity_id=scenario.id, action="created",
                 after={"title": scenario.title})
    return scenario


def get_scenario(session: Session, actor: Actor, scenario_id: int) -> MysteryScenario:
    actor.require(Role.supervisor)
    scenario = session.get(MysteryScenario, scenario_id)
    if scenario is None or scenario.workspace_id != actor.workspace_id:
        raise NotFound(f"scenario {scenario_id} not found")
    return scenario


def list_scenarios(session: Session, actor: Actor) -> list[MysteryScenario]:
    actor.require(Role.supervisor)
    return list(session.scalars(select(MysteryScenario).where(MysteryScenario.workspace_id == actor.workspace_id)
                                .order_by(MysteryScenario.id.desc())))


def delete_scenario(session: Session, actor: Actor, scenario_id: int) -> None:
    """A scenario and its runs' records go; the runs' conversations stay (still out of the figures)."""
    scenario = get_scenario(session, actor, scenario_id)
    session.delete(scenario)
    record_audit(session, actor, entity_type="mystery_scenario", entity_id=scenario_id, action="deleted")
    session.flush()


def start_run(session: Session, actor: Actor, scenario_id: int, *, language: str = "ru") -> MysteryRun:
    """Open a test widget session that sends the scenario's opening message; flag its conversation `mystery`
    before the transaction commits, so no figure ever counts it."""
    scenario = get_scenario(session, actor, scenario_id)
    if language not in LANGUAGES:
        raise field_error("language", f"one of {', '.join(LANGUAGES)}")
    if not _opener:
        raise Conflict("the website widget is not loaded in this process", code="no_widget")
    conversation_id = _opener[0](session, actor.workspace_id, scenario.opening, language)
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.workspace_id != actor.workspace_id:
        raise NotFound("the test session opened no conversation")
    conversation.mystery = True
    run = MysteryRun(workspace_id=actor.workspace_id, scenario_id=scenario.id, conversation_id=conversation.id,
                     started_by_id=actor.user_id)
    session.add(run)
    session.flush()
    record_audit(session, actor, entity_type="mystery_run", entity_id=run.id, action="started",
                 after={"scenario_id": scenario.id, "conversation_id": conversation.id})
    return run


_WORD = re.compile(r"\w+", re.UNICODE)


def _stems(text: str) -> list[str]:
    """Words of 3+ letters, cut to their first 5 (a crude stem: «возврата» and «возврат» meet at «возвр»)."""
    return [w[:5] for w in _WORD.findall(text.lower()) if len(w) >= 3]


_OR = re.compile(r"\s+(?:или|либо|or)\s+|\s*/\s*", re.IGNORECASE)


def covered(expected: str, replies: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Each expected point and the first reply that holds all its words (by stem), or None. «чек или номер
    заказа» is two alternatives: either one covers the point."""
    out = []
    for point in points(expected):
        alternatives = [set(_stems(part)) for part in _OR.split(point) if _stems(part)]
        found = None
        for message_id, text in replies:
            words = _WORD.findall(text.lower())
            if any(all(any(w.startswith(stem) for w in words) for stem in wanted) for wanted in alternatives):
                found = message_id
                break
        out.append({"point": point, "message_id": found})
    return out


def run_data(session: Session, run: MysteryRun, scenario: MysteryScenario | None = None) -> dict[str, Any]:
    scenario = scenario or session.get(MysteryScenario, run.scenario_id)
    conversation = session.get(Conversation, run.conversation_id) if run.conversation_id else None
    replies: list[tuple[int, str]] = []
    auto = manual = None
    if conversation is not None:
        replies = [(m.id, m.body_text or "") for m in session.scalars(select(Message).where(
            Message.conversation_id == conversation.id, Message.is_internal.is_(False),
            Message.author_kind.in_((AuthorKind.agent.value, AuthorKind.assistant.value))).order_by(Message.id))]
        for row in session.scalars(select(QaScore).where(QaScore.conversation_id == conversation.id)):
            if row.kind == "auto":
                auto = row
            else:
                manual = row
    points_found = covered(scenario.expected if scenario else "", replies)
    return {
        "id": run.id, "scenario_id": run.scenario_id, "scenario": scenario.title if scenario else "",
        "started_at": _iso(run.started_at), "started_by_id": run.started_by_id,
        "conversation_id": run.conversation_id, "number": conversation.number if conversation else None,
        "status": conversation.status if conversation else None, "replies": len(replies),
        "score": auto.score if auto else None, "manual_score": manual.score if manual else None,
        "items": json.loads(auto.items) if auto else None,
        "expected": points_found, "expected_found": sum(p["message_id"] is not None for p in points_found),
    }


def _iso(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def list_runs(session: Session, actor: Actor, scenario_id: int | None = None, limit: int = 100
              ) -> list[dict[str, Any]]:
    actor.require(Role.supervisor)
    stmt = select(MysteryRun).where(MysteryRun.workspace_id == actor.workspace_id)
    if scenario_id is not None:
        get_scenario(session, actor, scenario_id)
        stmt = stmt.where(MysteryRun.scenario_id == scenario_id)
    runs = list(session.scalars(stmt.order_by(MysteryRun.id.desc()).limit(limit)))
    scenarios = {s.id: s for s in session.scalars(select(MysteryScenario).where(
        MysteryScenario.id.in_({r.scenario_id for r in runs})))} if runs else {}
    return [run_data(session, r, scenarios.get(r.scenario_id)) for r in runs]


def get_run(session: Session, actor: Actor, run_id: int) -> dict[str, Any]:
    actor.require(Role.supervisor)
    run = session.get(MysteryRun, run_id)
    if run is None or run.workspace_id != actor.workspace_id:
        raise NotFound(f"run {run_id} not found")
    return run_data(session, run)


def scenario_data(scenario: MysteryScenario) -> dict[str, Any]:
    return {"id": scenario.id, "title": scenario.title, "opening": scenario.opening,
            "expected": points(scenario.expected), "created_at": _iso(scenario.created_at),
            "created_by_id": scenario.created_by_id}
