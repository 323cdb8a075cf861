"""`make demo` (issue 14 §3): an open late-delivery conversation has an unsent draft, for the demo admin and its
agent, that the phrase checker flags (never and avoid phrases), and the shop has a phrase of its own."""

from __future__ import annotations

from sqlalchemy import select

from otklik.accounts.models import User, Workspace
from otklik.conversations.drafts import ReplyDraft
from otklik.demo import EMAIL, SLUG, seed_demo
from otklik.guardrails import phrases
from otklik.guardrails.phrase_rules import PhraseRule
from otklik.platform.db import session_scope


def test_the_demo_has_a_draft_that_trips_the_checker():
    seed_demo()
    with session_scope() as session:
        ws = session.scalar(select(Workspace).where(Workspace.slug == SLUG))
        assert ws is not None
        admin = session.scalar(select(User).where(User.workspace_id == ws.id, User.email == EMAIL))
        drafts = list(session.scalars(select(ReplyDraft).where(ReplyDraft.workspace_id == ws.id)))
        assert admin is not None and admin.id in {d.user_id for d in drafts}
        found = phrases.check(drafts[0].text)
        assert {m.severity for m in found} == {"never", "avoid"}
        assert {"ru.notme.not_to_me", "ru.must.you", "ru.but.no"} <= {m.rule_id for m in found}
        own = list(session.scalars(select(PhraseRule).where(PhraseRule.workspace_id == ws.id)))
        assert [r.phrase for r in own] == ["(ваш|этот) заказ (потерян|утерян)"]
