"""The reports at work: the rollup's refresh job after each commit that marked a change and the worker's sweep;
the weekly report by e-mail (reports/weekly.py): the worker's sweep and one job per workspace."""

from __future__ import annotations

import logging

from sqlalchemy import distinct, select

from otklik.platform.db import run_transaction, session_scope
from otklik.platform.jobs import task
from otklik.reports import rollup
from otklik.reports.models import RollupMark

log = logging.getLogger(__name__)


@task(retries=2, retry_delay=2)  # idempotent: a second run finds the marks folded
def refresh_rollup(workspace_id: int) -> int:
    folded = 0
    while True:
        n = run_transaction(lambda session: rollup.refresh(session, workspace_id))
        folded += n
        if n < rollup.MARK_BATCH:
            return folded


def sweep_rollup() -> dict[str, int]:
    """Fold what lost jobs left, and fill a few missing past days of each workspace with history."""
    from otklik.accounts.models import Workspace

    with session_scope(write=False) as session:
        marked = list(session.scalars(select(distinct(RollupMark.workspace_id))))
        workspaces = list(session.scalars(select(Workspace.id)))
    out = {"folded": 0, "filled": 0}
    for workspace_id in marked:
        out["folded"] += refresh_rollup.call_local(workspace_id)
    for workspace_id in workspaces:
        try:
            out["filled"] += rollup.fill_missing(workspace_id)
        except Exception:  # one workspace's failure must not stop the others
            log.exception("rollup fill failed for workspace %s", workspace_id)
    out.update(sweep_schedules())
    return out


SCHEDULES_EVERY = 600.0  # seconds: the weekly report and the NPS schedule need no finer clock
_schedules_at: list[float] = []


def sweep_schedules(*, force: bool = False) -> dict[str, int]:
    """The weekly report's and the NPS survey's sweeps, at most every 10 minutes per process. They ride on the
    rollup's minute sweep, which `otklik worker` and the embedded worker already run (both places start it), so
    they need no Periodic of their own."""
    import time

    now = time.monotonic()
    if not force and _schedules_at and now - _schedules_at[0] < SCHEDULES_EVERY:
        return {}
    _schedules_at[:] = [now]
    from otklik.feedback import jobs as feedback_jobs

    out = {"weekly": 0, "nps": 0}
    for name, sweep in (("weekly", sweep_weekly), ("nps", feedback_jobs.sweep_nps)):
        try:
            out[name] = sweep()
        except Exception:  # one schedule's failure must not stop the other, nor the rollup
            log.exception("the %s sweep failed", name)
    return out


@task(retries=1, retry_delay=60)  # idempotent: each (week, address) is claimed once before it is sent
def send_weekly_report(workspace_id: int, now: str | None = None) -> int:
    import datetime as dt

    from otklik.reports import weekly

    return weekly.send_workspace(workspace_id, now=dt.datetime.fromisoformat(now) if now else None)


def sweep_weekly(now: object = None) -> int:
    """The workspaces with someone to send the weekly report to: one `send_weekly_report` job each (the job
    finds the due week and skips the addresses already sent)."""
    import datetime as dt

    from otklik.reports.models import WeeklyReportOptIn, WeeklyReportSettings

    with session_scope(write=False) as session:
        ids = set(session.scalars(select(WeeklyReportOptIn.workspace_id).distinct()))
        ids |= set(session.scalars(select(WeeklyReportSettings.workspace_id).where(
            WeeklyReportSettings.addresses != "")))
    stamp = now.isoformat() if isinstance(now, dt.datetime) else None
    for workspace_id in sorted(ids):
        send_weekly_report(workspace_id, stamp)
    return len(ids)
