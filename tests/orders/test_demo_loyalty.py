"""The demo shop has loyalty tiers computed from its customers' orders, and the demo visitor has a referral code."""

from __future__ import annotations

from sqlalchemy import func, select

from otklik.customers.models import Customer
from otklik.demo import SLUG, seed_demo
from otklik.orders import loyalty
from otklik.platform.db import session_scope


def test_demo_tiers_are_computed_from_the_orders():
    seed_demo()
    with session_scope() as s:
        from otklik.accounts.models import Workspace

        ws_id = s.scalar(select(Workspace.id).where(Workspace.slug == SLUG))
        assert [t.name for t in loyalty.list_tiers(s, ws_id)] == ["Бронза", "Серебро", "Золото"]
        counts = dict(s.execute(select(Customer.loyalty_tier, func.count()).where(Customer.workspace_id == ws_id)
                                .group_by(Customer.loyalty_tier)).tuples().all())
        assert counts.get("Бронза", 0) > 0 and counts.get("Серебро", 0) > 0, counts
        # what is stored is what the orders say now
        assert loyalty.recompute(s, ws_id) == 0
