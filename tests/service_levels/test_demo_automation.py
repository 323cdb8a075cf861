"""The demo shop has two rules and two macros that work: a legal threat is made urgent, tagged and noted."""

from __future__ import annotations

from sqlalchemy import delete, select

from otklik import demo
from otklik.accounts import service as accounts
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation, Message
from otklik.customers.models import Customer
from otklik.platform.db import session_scope
from otklik.platform.events import discard_after_commit
from otklik.service_levels import jobs as rule_jobs
from otklik.service_levels.models import Macro, Rule


def test_the_demo_rules_and_macros():
    demo.seed_demo()
    rule_jobs.install()
    with session_scope() as session:
        workspace = accounts.get_workspace_by_slug(session, demo.SLUG)
        assert workspace is not None
        ws_id = workspace.id
        rules = {r.name: r for r in session.scalars(select(Rule).where(Rule.workspace_id == ws_id))}
        macros = {m.name for m in session.scalars(select(Macro).where(Macro.workspace_id == ws_id))}
    assert set(rules) == {"Юрист / суд / Роспотребнадзор → срочно", "Ожидает ответа 3 дня → решено"}
    assert macros == {"Возврат: запросить фото", "Передать в «Гарантия и сервис»"}
    with session_scope() as session:
        got = conversations.receive(session, ws_id, conversations.InboundMessage(
            channel="email", identity_kind="email", identity_value="lawyer-demo@example.com",
            text="Если не вернёте деньги, обращусь в Роспотребнадзор."))
        cid, customer_id = got.conversation.id, got.conversation.customer_id
    try:
        with session_scope() as session:
            conv = session.get(Conversation, cid)
            assert conv is not None and conv.priority.value == "urgent"
            assert "претензия" in conversations.tags_of(session, [cid])[cid]
            notes = session.scalars(select(Message.body_text).where(Message.conversation_id == cid,
                                                                    Message.is_internal.is_(True))).all()
            assert any("старшему смены" in n for n in notes)
    finally:  # the demo workspace is shared with tests/test_demo.py in this process: leave it as it was
        with session_scope() as session:
            session.execute(delete(Conversation).where(Conversation.customer_id == customer_id))
            session.execute(delete(Customer).where(Customer.id == customer_id))
            discard_after_commit(session)
