"""Background jobs of loyalty (Huey tasks): the shop's referral-reward webhook. Rows are the truth; the job is
a nudge, and the sweep re-enqueues retries whose back-off ended and leases a dead worker left behind."""

from __future__ import annotations

from otklik.orders import loyalty
from otklik.platform.jobs import task


@task(retries=0)
def deliver_referral_webhook(referral_id: int) -> str:
    return loyalty.deliver(referral_id)


def sweep() -> int:
    """Run every minute by the web process's embedded worker and by `otklik worker`; duplicates are harmless
    (claims are atomic). Also keeps tiers counted over a period true as purchases age out of it (daily)."""
    ids = loyalty.due_ids()
    for referral_id in ids:
        deliver_referral_webhook(referral_id)
    loyalty.recompute_periodic_tiers()
    return len(ids)
