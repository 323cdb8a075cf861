"""What an operator's monitoring calls: `/healthz` (the process answers), `/readyz` (it can serve: the
database, Redis when configured and the job queue answer; 503 naming what failed) and `/metrics` (Prometheus
text; open unless OTKLIK_METRICS_TOKEN is set, then `Authorization: Bearer <token>`).

The outbox and job-queue figures are read when scraped, from the database and the queue themselves, so any
web process reports the same numbers. Checks never hang: each has a timeout, and a failure is one log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from starlette.concurrency import run_in_threadpool

from otklik import __version__
from otklik.accounts.security import same
from otklik.conversations.models import OutboxItem, OutboxStatus
from otklik.platform import metrics
from otklik.platform.config import get_settings
from otklik.platform.db import aware, get_engine, utcnow

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
CHECK_TIMEOUT = 3.0


class QueueCollector(Collector):
    """Outbox depth, age and dead letters, and the job queue's depth, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("otklik_outbox_messages", "Outbox rows not yet delivered, by status "
                                  "(dead: gave up after the last retry)", labels=["status"])
        age = GaugeMetricFamily("otklik_outbox_oldest_pending_seconds",
                                "Age of the oldest outbox row still waiting to be delivered")
        try:
            with get_engine().connect() as conn:
                rows = conn.execute(select(OutboxItem.status, func.count(), func.min(OutboxItem.created_at))
                                    .where(OutboxItem.status.in_([OutboxStatus.pending.value,
                                                                  OutboxStatus.sending.value,
                                                                  OutboxStatus.dead.value]))
                                    .group_by(OutboxItem.status)).all()
        except Exception as exc:  # a scrape must answer; /readyz says what is down
            log.warning("metrics: the outbox could not be read: %s", type(exc).__name__)
        else:
            counts = {s.value: 0 for s in (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.dead)}
            oldest = None
            for status, count, first in rows:
                counts[status] = int(count)
                if status != OutboxStatus.dead.value and first is not None:
                    first = aware(first)
                    oldest = first if oldest is None or first < oldest else oldest
            for status, count in counts.items():
                depth.add_metric([status], count)
            age.add_metric([], max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
            yield depth
            yield age
        queue = GaugeMetricFamily("otklik_job_queue_depth", "Jobs waiting in the queue (assistant, delivery)")
        try:
            from otklik.platform.jobs import huey

            queue.add_metric([], float(huey.pending_count()))
        except Exception as exc:  # the other figures still answer
            log.warning("metrics: the job queue could not be read: %s", type(exc).__name__)
        else:
            yield queue


_collector = QueueCollector()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Whether it can serve is /readyz's question."""
    return {"status": "ok", "version": __version__}


def _check_database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_redis() -> None:
    import redis

    url = get_settings().redis_url
    assert url is not None
    client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def _check_queue() -> None:
    from otklik.platform.jobs import huey

    huey.pending_count()


async def _run_check(check: Callable[[], None]) -> str | None:
    try:
        await asyncio.wait_for(run_in_threadpool(check), timeout=CHECK_TIMEOUT)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # the answer names the failure; no traceback in the log
        return type(exc).__name__
    return None


@router.get("/readyz")
async def readyz() -> JSONResponse:
    """Readiness: 200 when the database, Redis (when configured) and the job queue answer, else 503 with
    each check's result, so a load balancer stops sending traffic to a process that cannot serve it."""
    settings = get_settings()
    checks: dict[str, Callable[[], None]] = {"database": _check_database}
    if settings.redis_url:
        checks["redis"] = _check_redis
    checks["queue"] = _check_queue
    results = dict(zip(checks, await asyncio.gather(*(_run_check(c) for c in checks.values())), strict=True))
    failed = {name: error for name, error in results.items() if error}
    for name, error in failed.items():
        log.warning("not ready: %s: %s", name, error)
    body: dict[str, Any] = {"status": "unavailable" if failed else "ok", "version": __version__,
                            "checks": {name: error or "ok" for name, error in results.items()}}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics")
def prometheus_metrics(request: Request) -> Response:
    token = get_settings().metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        if not same(sent, f"Bearer {token.get_secret_value()}"):
            return JSONResponse({"error": {"code": "unauthorized", "message": "send Authorization: Bearer "
                                           "<OTKLIK_METRICS_TOKEN>", "fields": []}}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
    return Response(metrics.render([_collector]), media_type=metrics.CONTENT_TYPE)
