"""Test setup: one migrated database per run (SQLite by default, PostgreSQL with OTKLIK_TEST_DATABASE_URL).

Every test gets its own workspace, so tests are isolated by the same rule the product enforces.
Jobs run inline (Huey immediate mode) unless a test starts real processes.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="otklik-test-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
DATABASE_URL = os.environ.get("OTKLIK_TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.db"
os.environ["OTKLIK_DATABASE_URL"] = DATABASE_URL
os.environ["OTKLIK_QUEUE"] = "memory"
# The e5 encoder costs ~40 ms a passage to index: tests run the assistant on its base variant, except
# tests/assistant/test_e5.py, which turns it on for its own small KB.
os.environ.setdefault("OTKLIK_E5", "off")
os.environ["OTKLIK_DATA_DIR"] = str(_TMP / "data")
os.environ["OTKLIK_QUEUE_PATH"] = str(_TMP / "queue.db")
if os.environ.get("OTKLIK_TEST_REDIS_URL"):
    os.environ["OTKLIK_REDIS_URL"] = os.environ["OTKLIK_TEST_REDIS_URL"]
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


def _reset_postgres() -> None:
    from sqlalchemy import create_engine

    url = DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    from otklik.migrations import upgrade

    if DATABASE_URL.startswith("postgresql"):
        _reset_postgres()
    upgrade(DATABASE_URL)


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
