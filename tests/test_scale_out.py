"""Scale-out on PostgreSQL + Redis: two `otklik serve` processes and one `otklik worker`.

- a message posted through process A reaches a WebSocket client connected to process B;
- a reply is delivered exactly once even when the worker is SIGKILLed in the middle of delivery.
Runs only when the suite runs on PostgreSQL with Redis (the second half of .ci/run).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATABASE_URL, REDIS_URL, WORKER, make_workspace
from tests.stand_ins import WebhookReceiver

REDIS = os.environ.get("OTKLIK_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATABASE_URL.startswith("postgresql") and REDIS),
                       reason="needs PostgreSQL + Redis (OTKLIK_TEST_DATABASE_URL, OTKLIK_TEST_REDIS_URL)"),
]
OTKLIK = str(Path(sys.executable).with_name("otklik"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    import redis

    # A queue of its own, emptied first: Redis database 7 in a plain run; under xdist the worker's own
    # database (tests/conftest.py), which nothing else uses, so parallel workers never empty each other's.
    queue_redis = REDIS_URL if WORKER else REDIS.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(queue_redis).flushdb()
    return {**os.environ, "OTKLIK_DATABASE_URL": DATABASE_URL, "OTKLIK_REDIS_URL": queue_redis,
            "OTKLIK_QUEUE": "redis", "OTKLIK_EMBEDDED_WORKER": "false", "OTKLIK_DATA_DIR": str(tmp_path),
            "OTKLIK_OUTBOX_LEASE_SECONDS": "3", "OTKLIK_OUTBOX_SWEEP_SECONDS": "1", "OTKLIK_LOG_LEVEL": "warning"}


def start(args, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen([OTKLIK, *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up: {log.read_text()}")


@pytest.fixture
def servers(env, tmp_path):
    procs = []
    urls = []
    for name in ("a", "b"):
        port = free_port()
        log = tmp_path / f"serve-{name}.log"
        proc = start(["serve", "--port", str(port)], env, log)
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
        wait_http(urls[-1] + "/healthz", proc, log)
    yield urls
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=15)


def test_event_posted_to_a_reaches_websocket_on_b(servers):
    import websockets

    ws = make_workspace("scale")
    url_a, url_b = servers

    async def scenario() -> dict:
        async with websockets.connect(url_b.replace("http", "ws") + "/api/v1/ws") as conn:
            await conn.send(json.dumps({"type": "auth", "token": ws.agent_token}))
            assert json.loads(await conn.recv())["type"] == "ready"
            async with httpx.AsyncClient() as client:
                r = await client.post(url_a + "/api/v1/inbound", headers=ws.agent, json={
                    "identity_kind": "email", "identity": "x@example.com", "text": "через процесс A"})
                assert r.status_code == 201, r.text
            while True:
                event = json.loads(await asyncio.wait_for(conn.recv(), timeout=10))
                if event["type"] == "message.created":
                    return event

    event = asyncio.run(scenario())
    assert event["data"]["body_text"] == "через процесс A"


def test_reply_delivered_exactly_once_when_worker_is_killed_mid_delivery(servers, env, tmp_path):
    ws = make_workspace("kill")
    url_a, _ = servers
    receiver = WebhookReceiver()
    receiver.hold_first = 20.0  # the first delivery hangs inside the vendor; we kill the worker meanwhile
    try:
        r = httpx.put(url_a + "/api/v1/channels/api", headers=ws.admin, json={"webhook_url": receiver.url})
        receiver.secret = r.json()["secret"]
        got = httpx.post(url_a + "/api/v1/inbound", headers=ws.agent, json={
            "identity_kind": "email", "identity": "k@example.com", "text": "вопрос"}).json()
        reply = httpx.post(f"{url_a}/api/v1/conversations/{got['conversation_id']}/messages", headers=ws.agent,
                           json={"text": "ответ ровно один раз"})
        assert reply.status_code == 201 and reply.json()["delivery_status"] == "queued"

        worker = start(["worker", "--workers", "2"], env, tmp_path / "worker-1.log")
        deadline = time.time() + 30
        while not receiver.requests and time.time() < deadline:
            time.sleep(0.1)
        assert receiver.requests, (tmp_path / "worker-1.log").read_text()
        worker.send_signal(signal.SIGKILL)  # mid-delivery: the vendor has it, we never recorded it
        worker.wait(timeout=10)

        worker = start(["worker", "--workers", "2"], env, tmp_path / "worker-2.log")
        try:
            status = None
            deadline = time.time() + 40
            while time.time() < deadline:
                msgs = httpx.get(f"{url_a}/api/v1/conversations/{got['conversation_id']}/messages",
                                 headers=ws.agent).json()["items"]
                status = next(m for m in msgs if m["id"] == reply.json()["id"])["delivery_status"]
                if status == "sent":
                    break
                time.sleep(0.3)
            assert status == "sent", (tmp_path / "worker-2.log").read_text()
        finally:
            worker.terminate()
            worker.wait(timeout=15)
        assert len(receiver.requests) >= 2  # it was attempted again after the crash...
        assert {r["key"] for r in receiver.requests} == set(receiver.applied)  # ...with the same key
        assert len(receiver.applied) == 1  # ...and applied exactly once
    finally:
        receiver.close()
