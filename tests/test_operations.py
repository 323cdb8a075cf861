"""What monitoring calls (issue 17 §3, §4): /healthz (the process answers), /readyz (503 naming the database or
Redis when either is down, where /healthz had answered 200), /metrics in Prometheus text (requests by route
template and status, inbound messages by channel, outbox and queue depth, WebSockets, assistant decisions),
with an optional scrape token, and the multiprocess mode that sums every process's samples."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from otklik.platform.config import get_settings
from otklik.web import operations
from tests.conftest import inbound


def _samples(client, headers=None) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_is_liveness_and_readyz_checks_the_database(client, monkeypatch):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"

    down = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    monkeypatch.setattr(operations, "get_engine", lambda: down)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] != "ok"
    assert client.get("/healthz").status_code == 200  # the process is up: restarting it would not help
    metrics_text = client.get("/metrics")  # a scrape still answers, without the figures it cannot read
    assert metrics_text.status_code == 200 and "otklik_http_requests_total" in metrics_text.text


def test_readyz_names_redis_when_it_is_configured_and_down(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"]["redis"] != "ok" and body["checks"]["database"] == "ok"


def test_metrics_count_requests_by_route_template_messages_and_queues(client, ws):
    before = _samples(client)
    first = inbound(client, ws, identity="metrics@example.com", text="Где мой заказ?")
    inbound(client, ws, identity="metrics@example.com", text="Ещё вопрос", kind="email")
    conversation_id = first["conversation_id"]
    assert client.get(f"/api/v1/conversations/{conversation_id}", headers=ws.agent).status_code == 200
    assert client.get("/api/v1/conversations/999999999", headers=ws.agent).status_code == 404
    assert client.get("/no/such/page/123").status_code == 404
    after = _samples(client)
    route = "/api/v1/conversations/{conversation_id}"
    assert _value(after, "otklik_http_requests_total", method="GET", route=route, status="200") == \
        _value(before, "otklik_http_requests_total", method="GET", route=route, status="200") + 1
    assert _value(after, "otklik_http_requests_total", method="GET", route=route, status="404") >= 1
    assert _value(after, "otklik_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert not any("999999999" in str(labels) or "/no/such" in str(labels) for _, labels in after)
    assert _value(after, "otklik_http_request_duration_seconds_count", method="POST", route="/api/v1/inbound") >= 2
    assert _value(after, "otklik_inbound_messages_total", channel="api") == \
        _value(before, "otklik_inbound_messages_total", channel="api") + 2  # POST /api/v1/inbound's channel
    decided = sum(v for (name, _), v in after.items() if name == "otklik_assistant_decision_seconds_count")
    assert decided >= 2  # jobs run inline in tests: each customer message got its decision (or a skip)
    for status in ("pending", "sending", "dead"):
        assert ("otklik_outbox_messages", (("status", status),)) in after
    assert ("otklik_outbox_oldest_pending_seconds", ()) in after
    assert ("otklik_job_queue_depth", ()) in after


def test_metrics_count_open_websockets(client, ws):
    with client.websocket_connect("/api/v1/ws") as conn:
        conn.send_json({"type": "auth", "token": ws.agent_token})
        assert conn.receive_json()["type"] == "ready"
        assert _value(_samples(client), "otklik_websocket_connections", route="/api/v1/ws") == 1
    assert _value(_samples(client), "otklik_websocket_connections", route="/api/v1/ws") == 0


def test_metrics_token_when_set(client, monkeypatch):
    from pydantic import SecretStr

    monkeypatch.setattr(get_settings(), "metrics_token", SecretStr("scrape-secret"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_multiprocess_mode_sums_every_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    bump = ("from otklik.platform import metrics; metrics.INBOUND_MESSAGES.labels('telegram').inc(3); "
            "metrics.HTTP_REQUESTS.labels('GET', '/x', '200').inc()")
    for _ in range(2):  # two web processes (or a web process and a worker) sharing the folder
        subprocess.run([sys.executable, "-c", bump], env=env, check=True, timeout=60)
    scrape = subprocess.run([sys.executable, "-c", "from otklik.platform import metrics; "
                             "print(metrics.render().decode())"], env=env, check=True, timeout=60,
                            capture_output=True, text=True).stdout
    assert re.search(r'otklik_inbound_messages_total\{channel="telegram"\} 6\.0', scrape), scrape
    assert re.search(r'otklik_http_requests_total\{method="GET",route="/x",status="200"\} 2\.0', scrape), scrape
