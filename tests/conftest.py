"""Test setup: one migrated database per test process (SQLite by default, PostgreSQL with
OTKLIK_TEST_DATABASE_URL).

Every test gets its own workspace, so tests are isolated by the same rule the product enforces.
Jobs run inline (Huey immediate mode) unless a test starts real processes.

Under pytest-xdist (`make test` runs `-n auto`) each worker process is a separate test run: its own temp
dir (SQLite file, queue file, data dir), its own PostgreSQL database (`<name>_gw0`, `<name>_gw1`…, created on
demand next to the one OTKLIK_TEST_DATABASE_URL names) and its own Redis database number (the event bus's
pub/sub channel follows the number, so one worker never hears another's events). Live servers take free ports.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# "gw0", "gw1"… in a pytest-xdist worker (set before this module is imported); "" in a plain run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_database_url(url: str) -> str:
    """The worker's own PostgreSQL database beside the given one: otklik_ci -> otklik_ci_gw0."""
    if not (WORKER and url.startswith("postgresql")):
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(hide_password=False)


def _worker_redis_url(url: str | None) -> str | None:
    """The worker's own Redis database number: gw0 -> 1, gw1 -> 2… (a plain run keeps the given one).

    Redis delivers pub/sub messages across database numbers, but the event bus names its channel after the
    number (otklik.platform.events), so workers' buses stay apart; keys (the scale-out test's queue) too."""
    if not (url and WORKER):
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(WORKER.removeprefix('gw')) + 1}"))


_TMP = Path(tempfile.mkdtemp(prefix=f"otklik-test-{WORKER}-" if WORKER else "otklik-test-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
DATABASE_URL = _worker_database_url(os.environ.get("OTKLIK_TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.db")
os.environ["OTKLIK_DATABASE_URL"] = DATABASE_URL
os.environ["OTKLIK_QUEUE"] = "memory"
# The in-process app runs no background sweeps (outbox, assistant, SLA, time rules: `Periodic` threads in the
# lifespan): tests call the sweeps themselves, and a sweep of the app's own firing in the middle of a test raced
# it (an index rebuilt under the test, a breach fired on the real clock instead of the test's). Channel pollers
# already stay off with the memory queue (channels.registry.start_background).
os.environ["OTKLIK_EMBEDDED_WORKER"] = "false"
# Vendors are local stand-ins on 127.0.0.1: the SSRF guard on admins' vendor URLs would refuse them
# (tests/channels/test_vendor_url_guard.py turns it back on)
os.environ["OTKLIK_ALLOW_PRIVATE_VENDOR_URLS"] = "true"
# The e5 encoder costs ~40 ms a passage to index: tests run the assistant on its base variant, except
# tests/assistant/test_e5.py, which turns it on for its own small KB.
os.environ.setdefault("OTKLIK_E5", "off")
# The app's background SLA sweep runs once at start-up, then daily: tests build timelines in the past and sweep
# them themselves with an explicit `now` (tests/conversations/test_sla.py)
os.environ.setdefault("OTKLIK_SLA_SWEEP_SECONDS", "86400")
os.environ["OTKLIK_DATA_DIR"] = str(_TMP / "data")
os.environ["OTKLIK_QUEUE_PATH"] = str(_TMP / "queue.db")
REDIS_URL = _worker_redis_url(os.environ.get("OTKLIK_TEST_REDIS_URL"))
if REDIS_URL:
    os.environ["OTKLIK_REDIS_URL"] = REDIS_URL
else:
    os.environ.pop("OTKLIK_REDIS_URL", None)

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from otklik.accounts import service as accounts  # noqa: E402
from otklik.accounts.models import Role  # noqa: E402
from otklik.platform.db import get_engine, session_scope  # noqa: E402

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _create_worker_database() -> None:
    """Creates this worker's database, connecting to the one OTKLIK_TEST_DATABASE_URL names (which exists)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(DATABASE_URL).database
    engine = create_engine(_psycopg(os.environ["OTKLIK_TEST_DATABASE_URL"]), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _reset_postgres() -> None:
    from sqlalchemy import create_engine

    engine = create_engine(_psycopg(DATABASE_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    from otklik.migrations import upgrade

    if not WORKER and getattr(config.option, "numprocesses", None):
        return  # the xdist controller runs no tests: each worker migrates its own database
    if DATABASE_URL.startswith("postgresql"):
        if WORKER:
            _create_worker_database()
        _reset_postgres()
    upgrade(DATABASE_URL)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests share one live server and one Chromium per process: under xdist they all go to one
    worker (`--dist loadgroup`), so the other workers never start a second browser or server."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def app():
    from otklik.app import create_app

    return create_app()


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app) as c:
        yield c


@dataclass
class WS:
    """A workspace with an admin and an agent, each with an API token."""

    id: int
    slug: str
    admin_id: int
    agent_id: int
    admin_token: str
    agent_token: str
    admin_email: str
    agent_email: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def agent(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_token}"}

    def actor(self, role: str = "admin") -> accounts.Actor:
        user_id = self.admin_id if role == "admin" else self.agent_id
        return accounts.Actor(workspace_id=self.id, user_id=user_id, role=Role(role))


def make_workspace(prefix: str = "ws") -> WS:
    n = next(_counter)
    slug = f"{prefix}-{os.getpid()}-{n}"
    with session_scope() as session:
        workspace, admin = accounts.bootstrap_workspace(session, slug=slug, name=f"Shop {n}",
                                                        admin_email=f"admin{n}@example.com",
                                                        admin_password=PASSWORD)
        agent = accounts.create_user(session, accounts.actor_for(admin), email=f"agent{n}@example.com",
                                     name=f"Agent {n}", role=Role.agent, password=PASSWORD)
        admin_token, _ = accounts.create_api_token(session, accounts.actor_for(admin), name="admin")
        agent_token, _ = accounts.create_api_token(session, accounts.actor_for(agent), name="agent")
        return WS(id=workspace.id, slug=slug, admin_id=admin.id, agent_id=agent.id, admin_token=admin_token,
                  agent_token=agent_token, admin_email=admin.email, agent_email=agent.email)


@pytest.fixture
def ws() -> WS:
    return make_workspace()


@pytest.fixture
def other_ws() -> WS:
    return make_workspace("other")


@pytest.fixture(scope="session")
def engine():
    return get_engine()


def inbound(client: TestClient, ws: WS, *, identity: str = "ivan@example.com", kind: str = "email",
            text: str = "Где мой заказ?", message_id: str | None = None, **extra) -> dict:
    body = {"identity_kind": kind, "identity": identity, "text": text, **extra}
    if message_id is not None:
        body["message_id"] = message_id
    response = client.post("/api/v1/inbound", json=body, headers=ws.agent)
    assert response.status_code in (200, 201), response.text
    return response.json()
