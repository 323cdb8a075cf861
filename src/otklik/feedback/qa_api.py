"""HTTP surface of QA scoring (docs/qa.md): a conversation's scorecards, a supervisor's review with the same
scorecard, the sample worth reviewing, and mystery-shopper scenarios and runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.feedback import mystery, qa

router = APIRouter(tags=["qa"])


class ReviewBody(Strict):
    items: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=8)]] = Field(
        max_length=len(qa.ITEMS), description=f"item → pass / partial / fail / na; items: {', '.join(qa.ITEMS)}")
    comment: str = Field(default="", max_length=4000)


@router.get("/conversations/{conversation_id}/qa")
def conversation_qa(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The automatic scorecard (each item with its evidence: message ids), the manual review and their
    agreement."""
    return qa.scores_of(db, actor, conversation_id)


@router.post("/conversations/{conversation_id}/qa/review")
def review(conversation_id: int, body: ReviewBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A supervisor's scorecard of the conversation (items left out are n/a)."""
    qa.review(db, actor, conversation_id, body.items, body.comment)
    return qa.scores_of(db, actor, conversation_id)


@router.get("/qa/sample")
def qa_sample(actor: CurrentActor, db: DB, n: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict[str, Any]]:
    """Conversations to review by hand: the lowest scores, the low CSAT, a few at random (not reviewed yet)."""
    return qa.sample(db, actor, n)


@router.post("/qa/rescore", status_code=202)
def qa_rescore(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Score every solved conversation of the workspace again (admins; after the phrase rules changed): a job on
    the worker, enqueued after this request commits, in batches of 200."""
    from otklik.accounts.models import Role
    from otklik.feedback.jobs import rescore_qa
    from otklik.platform.events import after_commit

    actor.require(Role.admin)
    workspace_id = actor.workspace_id
    after_commit(db, lambda: rescore_qa(workspace_id))
    return {"queued": True}


# -- mystery shopping (docs/qa.md «Mystery shopping») ------------------------------------------------------

class ScenarioIn(Strict):
    title: str = Field(min_length=1, max_length=mystery.MAX_TITLE, description="«Хочу вернуть товар, но не знаю как»")
    opening: str = Field(min_length=1, max_length=mystery.MAX_OPENING, description="the test visitor's first message")
    expected: str = Field(default="", max_length=mystery.MAX_EXPECTED,
                          description="what a good answer contains, one point a line")


class RunIn(Strict):
    language: Literal["ru", "en"] = "ru"


@router.get("/mystery/scenarios")
def mystery_scenarios(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    return [mystery.scenario_data(s) for s in mystery.list_scenarios(db, actor)]


@router.post("/mystery/scenarios", status_code=201)
def create_mystery_scenario(body: ScenarioIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A scenario (supervisors): its runs open a test widget session with the opening message."""
    return mystery.scenario_data(mystery.create_scenario(db, actor, title=body.title, opening=body.opening,
                                                         expected=body.expected))


@router.get("/mystery/scenarios/{scenario_id}")
def mystery_scenario(scenario_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return {**mystery.scenario_data(mystery.get_scenario(db, actor, scenario_id)),
            "runs": mystery.list_runs(db, actor, scenario_id)}


@router.delete("/mystery/scenarios/{scenario_id}", status_code=204)
def delete_mystery_scenario(scenario_id: int, actor: CurrentActor, db: DB) -> None:
    mystery.delete_scenario(db, actor, scenario_id)


@router.post("/mystery/scenarios/{scenario_id}/runs", status_code=201)
def start_mystery_run(scenario_id: int, actor: CurrentActor, db: DB, body: RunIn | None = None) -> dict[str, Any]:
    """Start a run: a new test visitor of the website widget sends the opening message; the conversation is
    worked like any other, flagged `mystery` (out of every customer figure), and scored by QA when solved."""
    run = mystery.start_run(db, actor, scenario_id, language=(body or RunIn()).language)
    return mystery.run_data(db, run)


@router.get("/mystery/runs")
def mystery_runs(actor: CurrentActor, db: DB,
                 scenario_id: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> list[dict[str, Any]]:
    """Runs, newest first, each with its QA score and the expected points the replies covered."""
    return mystery.list_runs(db, actor, scenario_id)


@router.get("/mystery/runs/{run_id}")
def mystery_run(run_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return mystery.get_run(db, actor, run_id)
