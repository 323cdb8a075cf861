"""The job queue: Huey, with SQLite storage embedded by default and Redis when scaled out.

Jobs are enqueued after commit and must be idempotent: the database row is the truth, the job is a nudge,
and a periodic sweep re-enqueues anything a crashed worker left behind. Every job is declared with `task()`:
a job that fails with a permanent error (a 4xx-like `DomainError`) stops there, said once in one log line,
never retried; only what may pass on a later try (a crash, a timeout, 429) is retried.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, signals
from huey.consumer import Consumer

from otklik.platform.config import get_settings
from otklik.platform.errors import DomainError, RateLimited
from otklik.platform.logs import bound_request_id, current_request_id


def _make_huey() -> Huey:
    settings = get_settings()
    if settings.queue_backend == "redis":
        if not settings.redis_url:
            raise RuntimeError("OTKLIK_QUEUE=redis needs OTKLIK_REDIS_URL")
        return RedisHuey("otklik", url=settings.redis_url, utc=True)
    if settings.queue_backend == "memory":
        from huey import MemoryHuey

        return MemoryHuey("otklik", immediate=True, utc=True)
    Path(settings.queue_path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("otklik", filename=settings.queue_path, utc=True)


log = logging.getLogger(__name__)
huey: Huey = _make_huey()


def is_permanent(exc: BaseException) -> bool:
    """An error that the same job would meet again on every try: a refused request (4xx), not a rate limit."""
    return isinstance(exc, DomainError) and 400 <= exc.status_code < 500 and not isinstance(exc, RateLimited)


class Job:
    """The callable Huey runs for one job kind: `job` itself, with permanent errors turned into a result."""

    def __init__(self, job: Callable[..., Any]):
        functools.update_wrapper(self, job)  # Huey names the task after the function: same name as before
        self.job = job
        self.name: str = job.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # the request that enqueued it (after its commit): this job's log lines, and the jobs it enqueues in
        # turn (an assistant answer's delivery), carry the same request id
        request_id = kwargs.pop(REQUEST_ID_KWARG, None)
        with bound_request_id(request_id if isinstance(request_id, str) else current_request_id()):
            try:
                return self.job(*args, **kwargs)
            except DomainError as exc:
                if not is_permanent(exc):
                    raise
                log.warning("job %s%r gave up, it cannot succeed (not retried): %s %s", self.name, args,
                            exc.code, exc.message)
                return f"gave up: {exc.code}"


REQUEST_ID_KWARG = "_otklik_request_id"
_job_tasks: set[type] = set()  # the task classes `task()` declared: their `Job` takes the request id back


@huey.signal(signals.SIGNAL_ENQUEUED)
def _carry_request_id(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
    """A job enqueued while a request id is bound (a request's after-commit work, or a job for a request)
    takes it along in its keyword arguments; `Job` binds it again where the job runs, in any process."""
    request_id = current_request_id()
    if request_id and type(task) in _job_tasks and isinstance(task.kwargs, dict):
        task.kwargs.setdefault(REQUEST_ID_KWARG, request_id)


def task(*, retries: int = 0, retry_delay: int = 0) -> Callable[[Callable[..., Any]], Any]:
    """`@task(retries=3, retry_delay=5)`: a Huey task whose permanent errors end it at once (see `Job`)."""

    def declare(job: Callable[..., Any]) -> Any:
        wrapper = huey.task(retries=retries, retry_delay=retry_delay)(Job(job))
        _job_tasks.add(wrapper.task_class)
        return wrapper

    return declare


def run_consumer(workers: int = 2) -> None:
    """Block running a Huey consumer (the `otklik worker` process)."""
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=False,
                                    check_worker_health=True, scheduler_interval=1, initial_delay=0.05,
                                    max_delay=1.0)
    consumer.run()


class _EmbeddedConsumer(Consumer):
    """Huey's consumer inside the web process: the server owns the signals, not the consumer."""

    def _set_signal_handlers(self) -> None:
        return None


class Periodic:
    """Calls `fn` every `seconds` in a daemon thread until stopped (the outbox sweep)."""

    def __init__(self, fn: Callable[[], object], seconds: float):
        self._fn = fn
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="otklik-periodic", daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:
            try:
                self._fn()
            except Exception:
                log.exception("periodic job failed")
            if self._stop.wait(self._seconds):
                return


def start_embedded_consumer(workers: int = 2) -> Consumer | None:
    if huey.immediate:  # tasks already run inline (tests)
        return None
    consumer = _EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=False,
                                 check_worker_health=False, scheduler_interval=1, initial_delay=0.05,
                                 max_delay=1.0)
    consumer.start()
    return consumer
