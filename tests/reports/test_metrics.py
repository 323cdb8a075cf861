"""Every figure of docs/metrics.md on one hand-written timeline, compared with the number worked out by hand in
the comments. The workspace keeps Moscow time (UTC+3): the range 2026-03-02..2026-03-03 is
[2026-03-01 21:00Z, 2026-03-03 21:00Z)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from otklik.accounts.models import AuditEntry
from otklik.assistant.models import AssistantDecision
from otklik.conversations.models import Conversation, Message
from otklik.conversations.sla import SlaTimer
from otklik.customers.models import Customer
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import session_scope
from otklik.reports import service as reports

_number = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)


NOW = at(5, 12)


def add_conversation(session, ws_id: int, customer: Customer, channel: str, created: dt.datetime, *,
                     first: dt.datetime | None = None, solved: dt.datetime | None = None, status: str = "open",
                     transfers: int = 0, merged_into: int | None = None,
                     assistant_answered: dt.datetime | None = None) -> Conversation:
    conversation = Conversation(
        workspace_id=ws_id, number=next(_number) + ws_id * 1000, customer_id=customer.id, channel=channel,
        status=status, created_at=created, updated_at=created, last_message_at=created,
        last_customer_message_at=created, first_response_at=first, solved_at=solved, transfer_count=transfers,
        merged_into_id=merged_into, assistant_answered_at=assistant_answered)
    session.add(conversation)
    session.flush()
    return conversation


def assistant(session, conversation: Conversation, action: str, reason: str, when: dt.datetime) -> None:
    message = Message(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                      channel=conversation.channel, direction="inbound", author_kind="customer",
                      delivery_status="received", created_at=when)
    session.add(message)
    session.flush()
    session.add(AssistantDecision(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                                  message_id=message.id, action=action, reason=reason, created_at=when))


def timer(session, conversation: Conversation, breached: dt.datetime | None) -> None:
    session.add(SlaTimer(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                         kind="first_response", target_minutes=60, started_at=conversation.created_at,
                         state="breached" if breached else "met", breached_at=breached))


def survey(session, conversation: Conversation, kind: str, score: int) -> None:
    session.add(SurveyAnswer(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                             customer_id=conversation.customer_id, kind=kind, channel=conversation.channel,
                             score=score, comment="", sent_at=conversation.created_at,
                             answered_at=conversation.created_at))


@pytest.fixture
def timeline(ws, other_ws):
    with session_scope() as s:
        a, b, c, d, e = (Customer(workspace_id=ws.id, name=n) for n in "ABCDE")
        s.add_all([a, b, c, d, e])
        s.flush()
        # c1: answered by a person after 10 min, solved after 2 h, SLA met, CSAT 5
        c1 = add_conversation(s, ws.id, a, "telegram", at(2, 9), first=at(2, 9, 10), solved=at(2, 11),
                              status="solved")
        timer(s, c1, None)
        survey(s, c1, "csat", 5)
        # closing a solved conversation is no re-open
        s.add(AuditEntry(workspace_id=ws.id, actor_kind="user", entity_type="conversation", entity_id=c1.id,
                         action="status_changed", before={"status": "solved"}, after={"status": "closed"},
                         created_at=at(2, 12)))
        # c2: first answer after 2 h, closed after 24 h, transferred once, SLA breached, CSAT 2, CES 3
        c2 = add_conversation(s, ws.id, b, "email", at(2, 10), first=at(2, 12), solved=at(3, 10), status="closed",
                              transfers=1)
        timer(s, c2, at(2, 11))
        survey(s, c2, "csat", 2)
        survey(s, c2, "ces", 3)
        # c3: 23:30 Moscow on the 2nd (inside); answered in 1 min; solved, re-opened by the customer, solved again
        # 12 h after it started; CSAT 4, NPS 10
        c3 = add_conversation(s, ws.id, c, "widget", at(2, 20, 30), first=at(2, 20, 31), solved=at(3, 8, 30),
                              status="solved")
        s.add(AuditEntry(workspace_id=ws.id, actor_kind="system", entity_type="conversation", entity_id=c3.id,
                         action="status_changed", before={"status": "solved"}, after={"status": "open"},
                         note="customer wrote again", created_at=at(2, 22)))
        survey(s, c3, "csat", 4)
        survey(s, c3, "nps", 10)
        # c4: A again next day (c1 is a repeat contact); the assistant answered, nobody else; solved after 5 min
        c4 = add_conversation(s, ws.id, a, "telegram", at(3, 8), solved=at(3, 8, 5), status="solved")
        assistant(s, c4, "answer", "answered", at(3, 8, 1))
        survey(s, c4, "nps", 3)
        # c5: the assistant answered, then handed off; a person answered after 30 min; two transfers; SLA met
        c5 = add_conversation(s, ws.id, d, "widget", at(3, 12), first=at(3, 12, 30), transfers=2)
        assistant(s, c5, "answer", "answered", at(3, 12, 1))
        assistant(s, c5, "handoff", "negative", at(3, 12, 2))
        timer(s, c5, None)
        # c6: the assistant answered at 13:01 and the customer went quiet (still open): contained
        add_conversation(s, ws.id, e, "widget", at(3, 13), assistant_answered=at(3, 13, 1))
        assistant(s, s.query(Conversation).filter_by(workspace_id=ws.id, customer_id=e.id).one(), "answer",
                  "answered", at(3, 13, 1))
        # outside the range: D at 23:00 Moscow on the 1st; C at 00:30 Moscow on the 4th (makes c3 a repeat)
        add_conversation(s, ws.id, d, "widget", at(1, 20))
        add_conversation(s, ws.id, c, "email", at(3, 21, 30))
        # merged into c2: not a conversation of its own, and not B's repeat contact
        add_conversation(s, ws.id, b, "email", at(2, 11), merged_into=c2.id, status="closed")
        # another workspace, same range: never counted
        x = Customer(workspace_id=other_ws.id, name="X")
        s.add(x)
        s.flush()
        foreign = add_conversation(s, other_ws.id, x, "telegram", at(2, 9), first=at(2, 9, 1), solved=at(2, 9, 2),
                                   status="solved", transfers=5)
        survey(s, foreign, "csat", 1)
    return ws


def figures(ws_id: int, **filters) -> dict:
    with session_scope(write=False) as s:
        return reports.summary(s, ws_id, reports.make_filters("2026-03-02", "2026-03-03", **filters), now=NOW)


def test_conversations_count_the_range_in_workspace_days(timeline):
    # c1..c6; the one at 23:00 Moscow on the 1st and at 00:30 on the 4th are outside, the merged one too
    assert figures(timeline.id)["conversations"] == 6


def test_first_response_median_and_p90(timeline):
    # people's first answers: c1 600 s, c2 7200 s, c3 60 s, c5 1800 s (c4, c6: the assistant only — none)
    # sorted 60, 600, 1800, 7200 → median (600 + 1800) / 2 = 1200; p90 nearest rank ⌈0.9·4⌉ = 4th = 7200
    got = figures(timeline.id)
    assert (got["first_responses"], got["first_response_median_s"], got["first_response_p90_s"]) == (4, 1200, 7200)


def test_resolution_median(timeline):
    # solved: c1 7200, c2 86400, c3 43200 (to the last solve), c4 300 → median (7200 + 43200) / 2 = 25200
    got = figures(timeline.id)
    assert (got["solved"], got["resolution_median_s"], got["resolution_p90_s"]) == (4, 25200, 86400)


def test_sla_met_rate(timeline):
    # targets on c1 (met), c2 (breached), c5 (met) → 2 / 3
    got = figures(timeline.id)
    assert (got["sla_conversations"], got["sla_met_rate"]) == (3, round(2 / 3, 4))


def test_csat_nps_ces(timeline):
    # CSAT 5, 2, 4 → 4–5: 2 of 3; the other workspace's 1 is not counted. NPS 10 (promoter), 3 (detractor)
    # → (1 − 1) / 2 · 100 = 0. CES: one answer, 3
    got = figures(timeline.id)
    assert (got["csat"], got["csat_responses"], got["csat_low"]) == (round(2 / 3, 4), 3, 1)
    assert (got["nps"], got["nps_responses"], got["ces_avg"]) == (0.0, 2, 3.0)


def test_first_contact_resolution(timeline):
    # solved c1 (yes), c2 (transferred), c3 (re-opened), c4 (yes) → 2 / 4
    got = figures(timeline.id)
    assert (got["fcr_rate"], got["reopened"]) == (0.5, 1)


def test_repeat_contacts(timeline):
    # c1 (A again in c4 a day later), c3 (C again at 00:30 on the 4th: outside the range, inside 7 days);
    # B's merged conversation is no repeat; D's earlier one is before c5 → 2 / 6
    assert figures(timeline.id)["repeat_contact_rate"] == round(2 / 6, 4)


def test_bot_containment(timeline):
    # the assistant answered c4, c5, c6; c5 was handed off and a person answered; c4 solved, c6 silent → 2 / 3
    got = figures(timeline.id)
    assert (got["bot_conversations"], got["bot_containment_rate"]) == (3, round(2 / 3, 4))
    assert (got["handoffs"], got["handoff_reasons"]) == (1, {"negative": 1})


def test_transfers_per_conversation(timeline):
    # 0 + 1 + 0 + 0 + 2 + 0 = 3 transfers over 6 conversations
    assert figures(timeline.id)["transfers_per_conversation"] == 0.5


def test_filters(timeline):
    # widget: c3, c5, c6. first answers 60 and 1800 → median 930; one solved (c3, 43200)
    got = figures(timeline.id, channel="widget")
    assert (got["conversations"], got["first_response_median_s"], got["resolution_median_s"]) == (3, 930, 43200)
    # c3 is repeated by C's e-mail conversation: a repeat on another channel still counts → 1 / 3
    assert got["repeat_contact_rate"] == round(1 / 3, 4)
    assert figures(timeline.id, channel="vk")["conversations"] == 0
    assert figures(timeline.id, channel="vk")["csat"] is None


def test_rates_are_null_with_nothing_to_count(ws):
    got = figures(ws.id)
    assert got["conversations"] == 0
    for key in ("first_response_median_s", "first_response_p90_s", "resolution_median_s", "sla_met_rate", "csat",
                "nps", "ces_avg", "fcr_rate", "repeat_contact_rate", "bot_containment_rate",
                "transfers_per_conversation"):
        assert got[key] is None, key


def test_median_and_percentile():
    assert reports.median([3, 1, 2]) == 2
    assert reports.median([4, 1, 3, 2]) == 2.5
    assert reports.percentile(list(range(1, 11)), 0.9) == 9
    assert reports.percentile([5], 0.9) == 5


def test_scattered_ids_give_the_same_figures(timeline, monkeypatch):
    # an import's old conversations get new ids: the side tables are then read by chunks of ids, not one range
    dense = figures(timeline.id)
    monkeypatch.setattr(reports, "ID_CHUNK", 2)
    monkeypatch.setattr(reports, "_id_filters", lambda column, ids: [column.in_(ids[i:i + reports.ID_CHUNK])
                                                                      for i in range(0, len(ids), reports.ID_CHUNK)])
    assert figures(timeline.id) == dense
    assert reports._id_filters.__name__ == "<lambda>"


def test_id_filters_choose_a_range_or_chunks():
    from otklik.conversations.models import Conversation

    assert len(reports._id_filters(Conversation.id, [5, 6, 8, 9])) == 1
    chunks = reports._id_filters(Conversation.id, list(range(1, 100_000, 50)))
    assert len(chunks) == 4  # 2,000 scattered ids in chunks of 500
