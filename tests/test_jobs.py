"""No job kind can loop forever (issue 19): every Huey task is declared through `platform.jobs.task`, and a job
that raises a permanent error (a 4xx-like `DomainError`: Conflict, NotFound, InvalidInput...) runs once, is not
retried and leaves no traceback; an error that may pass (a crash, a rate limit) is still retried."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import pytest
from huey import signals

from otklik.platform import jobs
from otklik.platform.errors import Conflict, InvalidInput, NotFound, RateLimited

SRC = Path(jobs.__file__).resolve().parents[1]


def _job_modules() -> list[str]:
    """Every module of the product that declares a job (the registry knows only those imported so far)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path != Path(jobs.__file__).resolve():
            assert "huey.task(" not in text and "huey.periodic_task(" not in text, (
                f"{path.relative_to(SRC)} declares a Huey task directly: use otklik.platform.jobs.task")
        if "@task(" in text:
            found.append("otklik." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    return found


def _job_kinds() -> dict[str, object]:
    for module in _job_modules():
        importlib.import_module(module)
    kinds = {}
    for name, task_class in jobs.huey._registry._registry.items():
        module = sys.modules.get(task_class.__module__)
        if module is None or not task_class.__module__.startswith("otklik."):
            continue  # a task a test declared for itself
        kinds[name] = getattr(module, task_class.__name__)
    return kinds


def test_every_job_kind_is_declared_through_the_guard():
    kinds = _job_kinds()
    assert {"otklik.assistant.jobs.assistant_process", "otklik.conversations.jobs.deliver_outbox",
            "otklik.channels.jobs.process_channel_event"} <= set(kinds)
    for name, wrapper in kinds.items():
        assert isinstance(wrapper.func, jobs.Job), f"{name} is not declared with otklik.platform.jobs.task"


@pytest.mark.parametrize("error", [Conflict("a phone conversation takes no written replies", code="reply_refused"),
                                   NotFound("message 1 not found"), InvalidInput("bad input")],
                         ids=["conflict", "not_found", "invalid"])
def test_no_job_kind_retries_a_permanent_error(error, monkeypatch, caplog):
    emitted: list[tuple[str, str]] = []

    def watch(signal, task, *args, **kwargs):
        emitted.append((signal, task.name))

    jobs.huey.signal(signals.SIGNAL_ERROR, signals.SIGNAL_RETRYING)(watch)
    caplog.set_level(logging.INFO)
    try:
        for name, wrapper in _job_kinds().items():
            calls: list[tuple] = []

            def refuse(*args, _calls=calls, **kwargs):
                _calls.append(args)
                raise error

            monkeypatch.setattr(wrapper.func, "job", refuse)
            jobs.huey.execute(wrapper.s(1, "x"))
            assert len(calls) == 1, f"{name} ran {len(calls)} times"
    finally:
        jobs.huey.disconnect_signal(watch)
        jobs.huey.storage.flush_schedule()  # the retries these stand-ins scheduled never run
    assert emitted == []  # neither a retry nor an unhandled error
    said = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert said and all(r.exc_info is None for r in said)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_error_that_may_pass_is_still_retried(monkeypatch):
    retried: list[str] = []

    def watch(signal, task, *args, **kwargs):
        retried.append(task.name)

    jobs.huey.signal(signals.SIGNAL_RETRYING)(watch)
    try:
        for error in (RuntimeError("database is locked"), RateLimited("slow down")):
            for name, wrapper in _job_kinds().items():
                if not wrapper.retries:
                    continue

                def fail(*args, _error=error, **kwargs):
                    raise _error

                monkeypatch.setattr(wrapper.func, "job", fail)
                before = len(retried)
                jobs.huey.execute(wrapper.s(1, "x"))
                assert len(retried) > before, f"{name} did not retry {type(error).__name__}"
    finally:
        jobs.huey.disconnect_signal(watch)
        jobs.huey.storage.flush_schedule()  # the retries these stand-ins scheduled never run
