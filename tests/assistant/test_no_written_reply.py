"""Issue 19: with the assistant on, a callback request (widget «Заказать звонок», the API) or a call event on the
phone channel failed the assistant's job with a 409 on every try, re-queued every minute by the sweep. The bot
must not write into a conversation that takes no written replies, and a job that can never succeed must stop,
say why once, and leave the conversation to a person."""

from __future__ import annotations

import logging
import uuid

from otklik.assistant import jobs as assistant_jobs
from otklik.assistant import service
from otklik.platform.errors import Conflict
from tests.assistant.test_live import decisions, enable, messages
from tests.channels.test_phone import SIGNING, events_url, send


def _no_errors(caplog) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]


def _assert_handed_to_a_person(client, ws, conversation_id: int) -> None:
    (d,) = decisions(client, ws, conversation_id)
    assert d["action"] == "handoff" and d["reason"] == "no_written_reply"
    msgs = messages(client, ws, conversation_id)
    assert not [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert [m for m in msgs if m["author_kind"] == "assistant" and m["is_internal"]]  # the agent's summary
    conversation = client.get(f"/api/v1/conversations/{conversation_id}", headers=ws.agent).json()
    assert conversation["status"] in {"new", "open"}


def test_widget_callback_request_goes_to_a_person_without_a_failing_job(client, ws, caplog):
    enable(client, ws)
    caplog.set_level(logging.INFO)
    key = client.get("/api/v1/widget/settings", headers=ws.admin).json()["public_key"]
    visitor = client.post("/api/v1/widget/session", json={"key": key, "language": "ru"}).json()
    r = client.post("/api/v1/widget/callback", headers={"X-Otklik-Visitor": visitor["token"]},
                    json={"name": "Олег", "phone": "8 (999) 123-45-67", "preferred_time": "после 18:00",
                          "client_id": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    _assert_handed_to_a_person(client, ws, r.json()["conversation_id"])
    _no_errors(caplog)


def test_api_callback_and_missed_call_go_to_a_person(client, ws, caplog):
    enable(client, ws)
    caplog.set_level(logging.INFO)
    r = client.post("/api/v1/phone/callbacks", headers=ws.agent,
                    json={"phone": "+7 916 555-44-33", "name": "Ольга", "comment": "Про возврат заказа 4512"})
    assert r.status_code == 201, r.text
    _assert_handed_to_a_person(client, ws, r.json()["conversation_id"])
    account = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "phone", "config": {}, "secrets": {"signing_secret": SIGNING}}).json()
    r = send(client, account, {"event": "call.missed", "call_id": "c-19", "from": "+79160001122",
                               "to": "+74950000000", "direction": "inbound"}, url=events_url(account))
    assert r.status_code in (200, 202), r.text
    phone = client.get("/api/v1/conversations?channel=phone", headers=ws.agent).json()["items"]
    decided = [d for conversation in phone for d in decisions(client, ws, conversation["id"])]
    assert len(phone) == 2 and [d["reason"] for d in decided] == ["no_written_reply"] * 2
    _no_errors(caplog)


def test_a_permanent_error_in_the_assistant_job_is_said_once_and_not_retried(client, ws, caplog, monkeypatch):
    """Whatever refuses (here a stand-in 409 from the pipeline): one log line, one note, no retry, no sweep."""
    enable(client, ws)
    calls: list[int] = []

    def refuse(session, message_id, **_):
        calls.append(message_id)
        raise Conflict("this conversation takes no replies", code="reply_refused")

    monkeypatch.setattr(service, "process_message", refuse)
    caplog.set_level(logging.INFO)
    from tests.conftest import inbound

    got = inbound(client, ws, text="Где мой заказ?", identity="refused@example.com")
    assert len(calls) == 1
    assert assistant_jobs.sweep_pending() == 0  # its decision is the failure: the sweep does not bring it back
    assert len(calls) == 1
    (d,) = decisions(client, ws, got["conversation_id"])
    assert d["action"] == "handoff" and d["reason"] == "error"
    notes = [m for m in messages(client, ws, got["conversation_id"]) if m["is_internal"]]
    assert len(notes) == 1 and "this conversation takes no replies" in notes[0]["body_text"]
    said = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None
    _no_errors(caplog)
