"""Background jobs of the conversations domain (Huey tasks). Each is idempotent; rows are the truth."""

from __future__ import annotations

from otklik.conversations import outbox
from otklik.platform.jobs import task


@task(retries=3, retry_delay=5)
def deliver_outbox(outbox_id: int) -> str:
    return outbox.deliver(outbox_id)


def sweep_sla() -> dict[str, int]:
    """Fire due SLA warnings and breaches (conversations/sla.py): every worker runs it every
    `OTKLIK_SLA_SWEEP_SECONDS`; each warning or breach fires once however many sweep at the same time."""
    from otklik.conversations import sla
    from otklik.platform.db import session_scope

    total = {"warned": 0, "breached": 0}
    for _ in range(20):  # at most 20 batches of 500 per run; the next run takes the rest
        with session_scope() as session:
            fired = sla.sweep(session)
        total = {k: total[k] + fired[k] for k in total}
        if sum(fired.values()) == 0:
            break
    return total


def sweep_outbox() -> int:
    """Re-enqueue rows that are due: retries whose back-off ended, and leases a dead worker left behind.

    Run by every worker every `OTKLIK_OUTBOX_SWEEP_SECONDS`; duplicates are harmless (claims are atomic).
    """
    ids = outbox.due_ids()
    for outbox_id in ids:
        deliver_outbox(outbox_id)
    return len(ids)
