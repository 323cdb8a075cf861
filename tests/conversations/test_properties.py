"""Property-based tests (Hypothesis) of the status rules and of customer/conversation merges."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from otklik.conversations import service
from otklik.conversations.models import Conversation, Message, Status
from otklik.customers import service as customers
from otklik.customers.models import Customer, Identity
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict
from tests.conftest import make_workspace

OPS = st.lists(st.one_of(
    st.just(("customer",)),
    st.just(("reply",)),
    st.just(("note",)),
    st.tuples(st.just("status"), st.sampled_from(list(Status))),
), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_status_rules_hold_for_any_sequence(ops):
    ws = make_workspace("prop")
    actor = ws.actor("agent")
    counter = 0

    def customer_writes():
        nonlocal counter
        counter += 1
        with session_scope() as s:
            r = service.receive(s, ws.id, service.InboundMessage(
                channel="email", identity_kind="email", identity_value="p@example.com", text=f"сообщение {counter}",
                channel_message_id=f"m{counter}"))
            return r.conversation.id, r.new_conversation

    current, _ = customer_writes()
    replied = False
    for op in ops:
        with session_scope(write=False) as s:
            before = s.get(Conversation, current)
            before_status = Status(before.status)
        if op[0] == "customer":
            cid, new = customer_writes()
            if before_status == Status.closed:
                assert new and cid != current
                with session_scope(write=False) as s:
                    assert s.get(Conversation, cid).previous_conversation_id == current
                current, replied = cid, False
            else:
                assert cid == current and not new
                expected = Status.open if before_status in (Status.pending, Status.solved) else before_status
                with session_scope(write=False) as s:
                    assert s.get(Conversation, cid).status == expected.value
        elif op[0] in ("reply", "note"):
            try:
                with session_scope() as s:
                    service.reply(s, actor, current, text="ответ", is_internal=op[0] == "note")
                assert before_status != Status.closed or op[0] == "note"
                replied = replied or op[0] == "reply"
            except Conflict:
                assert before_status == Status.closed and op[0] == "reply"
        else:
            target = op[1]
            try:
                with session_scope() as s:
                    service.update_conversation(s, actor, current, {"status": target.value})
                assert service.can_transition(before_status, target)
            except Conflict:
                assert not service.can_transition(before_status, target)
        with session_scope(write=False) as s:
            conv = s.get(Conversation, current)
            assert (conv.first_response_at is not None) == replied
            assert (conv.solved_at is not None) == (conv.status in ("solved", "closed"))
            if before_status == Status.closed and conv.id == before.id:
                assert conv.status == "closed"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(min_value=2, max_value=5),
       merges=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=6))
def test_customer_merges_preserve_everything(n, merges):
    ws = make_workspace("merge")
    actor = ws.actor("agent")
    ids = []
    with session_scope() as s:
        for i in range(n):
            r = service.receive(s, ws.id, service.InboundMessage(
                channel="telegram", identity_kind="telegram", identity_value=str(1000 + i), text=f"привет {i}"))
            customers.add_identity(s, actor, r.conversation.customer_id,
                                   customers.IdentityInput("email", f"c{i}@example.com"))
            ids.append(r.conversation.customer_id)
    for a, b in merges:
        target, source = ids[a % n], ids[b % n]
        try:
            with session_scope() as s:
                customers.merge_customers(s, actor, target_id=target, source_id=source)
        except Exception as exc:  # self-merge (422) or already merged (409) — and then nothing changed
            assert getattr(exc, "status_code", None) in (409, 422)
    with session_scope(write=False) as s:
        live = set(s.scalars(select(Customer.id).where(Customer.workspace_id == ws.id,
                                                       Customer.merged_into_id.is_(None))))
        owners = list(s.scalars(select(Identity.customer_id).where(Identity.workspace_id == ws.id)))
        assert len(owners) == 2 * n and set(owners) <= live
        conv_owners = list(s.scalars(select(Conversation.customer_id).where(Conversation.workspace_id == ws.id)))
        assert len(conv_owners) == n and set(conv_owners) <= live
        assert s.scalar(select(func.count()).select_from(Message).where(Message.workspace_id == ws.id)) == n
        for i in range(n):
            c = customers.find_by_identity(s, ws.id, "telegram", str(1000 + i))
            assert c is not None and c.id in live


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4))
def test_conversation_merges_keep_every_message(sizes):
    ws = make_workspace("cmerge")
    actor = ws.actor("agent")
    conv_ids = []
    with session_scope() as s:
        for i, size in enumerate(sizes):
            for j in range(size):
                r = service.receive(s, ws.id, service.InboundMessage(
                    channel="vk", identity_kind="vk", identity_value=str(500 + i), text=f"m{i}-{j}"))
            conv_ids.append(r.conversation.id)
    target = conv_ids[0]
    for source in conv_ids[1:]:
        with session_scope() as s:
            service.merge_conversations(s, actor, target_id=target, source_id=source)
    with session_scope(write=False) as s:
        texts = set(s.scalars(select(Message.body_text).where(Message.conversation_id == target,
                                                              Message.author_kind == "customer")))
        assert texts == {f"m{i}-{j}" for i, size in enumerate(sizes) for j in range(size)}
        conv = s.get(Conversation, target)
        assert conv.message_count == sum(sizes) + len(sizes) - 1  # plus one system note per merge


MESSAGES = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["email", "telegram"]),
                              st.one_of(st.none(), st.integers(0, 5))), min_size=1, max_size=15)


def _inbound(person, channel, vendor_id):
    kind, value = ("email", f"p{person}@example.com") if channel == "email" else ("telegram", str(7000 + person))
    return service.InboundMessage(channel=channel, identity_kind=kind, identity_value=value,
                                  text=f"от {person}", channel_message_id=None if vendor_id is None else f"v{vendor_id}")


def _setup(prestate):
    """A workspace where person 0's email conversation is solved and person 1's is closed."""
    ws = make_workspace("batch")
    actor = ws.actor("agent")
    for person, status in prestate:
        with session_scope() as s:
            r = service.receive(s, ws.id, _inbound(person, "email", None))
            service.update_conversation(s, actor, r.conversation.id, {"status": status})
    return ws


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES)
def test_a_batch_is_the_same_as_one_message_at_a_time(messages):
    prestate = [(0, "solved"), (1, "closed")]
    one_by_one, batched = _setup(prestate), _setup(prestate)
    singles = []
    for m in messages:
        with session_scope() as s:
            r = service.receive(s, one_by_one.id, _inbound(*m))
            singles.append((r.conversation.number, r.duplicate, r.new_conversation, r.message.body_text))
    with session_scope() as s:
        results = service.receive_many(s, batched.id, [_inbound(*m) for m in messages])
        together = [(r.conversation.number, r.duplicate, r.new_conversation, r.message.body_text) for r in results]
    assert together == singles

    def final(ws):
        with session_scope(write=False) as s:
            return sorted((c.number, c.status, c.message_count, c.previous_conversation_id is not None)
                          for c in s.scalars(select(Conversation).where(Conversation.workspace_id == ws.id)))

    assert final(batched) == final(one_by_one)
