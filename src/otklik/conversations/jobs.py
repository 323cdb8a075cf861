"""Background jobs of the conversations domain (Huey tasks). Each is idempotent; rows are the truth."""

from __future__ import annotations

from otklik.conversations import outbox
from otklik.platform.jobs import task


@task(retries=3, retry_delay=5)
def deliver_outbox(outbox_id: int) -> str:
    return outbox.deliver(outbox_id)


def sweep_outbox() -> int:
    """Re-enqueue rows that are due: retries whose back-off ended, and leases a dead worker left behind.

    Run by every worker every `OTKLIK_OUTBOX_SWEEP_SECONDS`; duplicates are harmless (claims are atomic).
    """
    ids = outbox.due_ids()
    for outbox_id in ids:
        deliver_outbox(outbox_id)
    return len(ids)
