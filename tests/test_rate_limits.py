"""Rate limits shared across processes through Redis (issue 17 §2): the widget's, the web forms', password
resets' and sign-in's windows count every web process's hits when OTKLIK_REDIS_URL is set; without it each
process counts alone (the embedded default), and a Redis outage never stops a request.

The two-server test starts two `otklik serve` processes on the test database and Redis (only when the suite
runs with OTKLIK_TEST_REDIS_URL): a visitor alternating between them gets the limit once, not once per process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from otklik.platform.config import get_settings
from otklik.platform.errors import RateLimited
from otklik.platform.ratelimit import SlidingWindow
from tests.conftest import DATABASE_URL, PASSWORD, REDIS_URL, make_workspace

OTKLIK = str(Path(sys.executable).with_name("otklik"))
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (OTKLIK_TEST_REDIS_URL)")


def test_without_redis_each_process_counts_alone(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", None)
    a, b = SlidingWindow(3, 60, name="t-alone"), SlidingWindow(3, 60, name="t-alone")
    for _ in range(3):
        a.hit("k")
        b.hit("k")  # another process's window: its own count
    with pytest.raises(RateLimited, match="try again in"):
        a.hit("k")
    a.hit("other")  # keys are apart


def test_redis_down_falls_back_to_the_process_window_without_failing(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    window = SlidingWindow(2, 60, name="t-down")
    window.hit("k")
    window.hit("k")
    with pytest.raises(RateLimited):
        window.hit("k")


@needs_redis
def test_two_windows_of_one_name_share_the_count_through_redis():
    a, b = SlidingWindow(4, 60, name="t-shared"), SlidingWindow(4, 60, name="t-shared")
    a.clear()
    a.hit("v1")
    b.hit("v1")
    a.hit("v1")
    b.hit("v1")
    for window in (a, b):
        with pytest.raises(RateLimited, match="try again in"):
            window.hit("v1")
    a.hit("v2")  # another key has its own window
    unnamed = SlidingWindow(1, 60)  # no name: always this process's own (the SMTP endpoint's per-client one)
    unnamed.hit("v1")
    a._hits.clear()  # the older tests' reset clears the shared window too
    b.hit("v1")
    a.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(tmp_path):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("otklik:rl:*"):
        client.delete(key)
    env = {**os.environ, "OTKLIK_DATABASE_URL": DATABASE_URL, "OTKLIK_REDIS_URL": REDIS_URL,
           "OTKLIK_QUEUE": "memory", "OTKLIK_EMBEDDED_WORKER": "false", "OTKLIK_DATA_DIR": str(tmp_path),
           "OTKLIK_LOG_LEVEL": "warning"}
    procs, urls = [], []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"serve-{name}.log"
            proc = subprocess.Popen([OTKLIK, "serve", "--port", str(port)], env=env, stdout=log.open("w"),
                                    stderr=subprocess.STDOUT)
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
            deadline = time.time() + 60
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"serve {name} exited: {log.read_text()}")
                try:
                    if httpx.get(urls[-1] + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    raise AssertionError(f"serve {name} did not come up: {log.read_text()}")
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
        for key in client.scan_iter("otklik:rl:*"):
            client.delete(key)


@needs_redis
@pytest.mark.slow
def test_two_web_processes_share_the_widget_form_and_sign_in_limits(two_servers):
    url_a, url_b = two_servers
    ws = make_workspace("limits")
    key = httpx.get(url_a + "/api/v1/widget/settings", headers=ws.admin).json()["public_key"]

    # widget sessions: 30 a minute per address (web/widget/api.py), alternating between the two processes
    answers = [httpx.post((url_a, url_b)[n % 2] + "/api/v1/widget/session", json={"key": key, "language": "ru"})
               for n in range(32)]
    assert [r.status_code for r in answers[:30]] == [200] * 30
    assert [r.status_code for r in answers[30:]] == [429, 429]  # per process it would have been 30 + 30
    assert answers[30].json()["error"]["code"] == "rate_limited"

    # the widget's forms (callback, offline): 5 in 10 minutes per address, across both processes
    token = answers[0].json()["token"]
    forms = [httpx.post((url_a, url_b)[n % 2] + "/api/v1/widget/offline", headers={"X-Otklik-Visitor": token},
                        json={"name": "Анна", "email": f"a{n}@example.com", "text": "Перезвоните",
                              "client_id": uuid.uuid4().hex}).status_code for n in range(6)]
    assert forms[5] == 429 and 429 not in forms[:5], forms

    # sign-in: 10 failures per account in 15 minutes (accounts/signin.py), 5 on each process
    body = {"email": ws.agent_email, "password": "wrong-password", "workspace": ws.slug}
    failures = [httpx.post((url_a, url_b)[n % 2] + "/api/v1/auth/login", json=body).status_code for n in range(10)]
    assert failures == [401] * 10
    right = {**body, "password": PASSWORD}
    assert httpx.post(url_b + "/api/v1/auth/login", json=right).status_code == 429
    assert httpx.post(url_a + "/api/v1/auth/login", json=right).status_code == 429
