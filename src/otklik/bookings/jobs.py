"""Bookings at work: every worker's minute sweep marks visits missed at the end of their day and enqueues the
day-before reminders and the «Всё ли удобно?» questions as jobs (each idempotent: a second run finds it sent)."""

from __future__ import annotations

import datetime as dt

from otklik.bookings import service
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.jobs import task


@task(retries=2, retry_delay=30)
def send_reminder(booking_id: int) -> bool:
    return run_transaction(lambda session: service.send_reminder(session, booking_id))


@task(retries=2, retry_delay=30)
def ask_after_visit(booking_id: int) -> bool:
    return run_transaction(lambda session: service.ask_after_visit(session, booking_id))


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """Run by the web process's embedded worker and by `otklik worker` every minute (`Periodic`)."""
    now = now or utcnow()
    with session_scope() as session:
        missed = service.mark_missed(session, now=now)
    with session_scope(write=False) as session:
        reminders = service.due_reminders(session, now=now)
        questions = service.due_questions(session)
    for booking_id in reminders:
        send_reminder(booking_id)
    for booking_id in questions:
        ask_after_visit(booking_id)
    return {"missed": missed, "reminded": len(reminders), "asked": len(questions)}
