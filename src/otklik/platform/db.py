"""Engine, sessions and the declarative base. SQLite (WAL) is the embedded default; PostgreSQL in production.

Write transactions on SQLite start with BEGIN IMMEDIATE so concurrent writers queue on the busy timeout
instead of failing with "database is locked" when a read transaction tries to upgrade.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, CursorResult, DateTime, Engine, MetaData, Result, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from otklik.platform.config import get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def affected(result: Result[Any]) -> int:
    """Rows changed by an UPDATE/DELETE."""
    return cast(CursorResult[Any], result).rowcount


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """A naive datetime read back from SQLite is UTC: give it its zone (an aware one is returned as it is)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15}, pool_size=20,
                               max_overflow=20)
        _sqlite_setup(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def _factories() -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    engine = get_engine()
    reader = sessionmaker(bind=engine, expire_on_commit=False)
    writer = sessionmaker(bind=engine.execution_options(sqlite_immediate=True), expire_on_commit=False)
    return reader, writer


def new_session(*, write: bool = True) -> Session:
    reader, writer = _factories()
    return (writer if write else reader)()


# SQLite has one writer at a time. Queueing writers of this process on a lock (instead of SQLite's
# sleep-and-retry busy handler) hands the write lock over the moment it is free: the tail latency of
# concurrent writes drops from hundreds of milliseconds to the length of the queue.
# A semaphore, not a lock: FastAPI may finish a request's unit of work on another thread than it began.
_sqlite_writer = threading.BoundedSemaphore(1)
WRITE_SLOT_TIMEOUT = 30.0


@contextmanager
def _write_slot(write: bool) -> Iterator[None]:
    if write and get_settings().is_sqlite:
        if not _sqlite_writer.acquire(timeout=WRITE_SLOT_TIMEOUT):
            raise OperationalError("acquire write slot", {}, Exception("database is locked (write queue full)"))
        try:
            yield
        finally:
            _sqlite_writer.release()
    else:
        yield


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error, then runs after-commit hooks."""
    from otklik.platform import events

    with _write_slot(write):
        session = new_session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    events.flush_after_commit(session)


def is_transient(exc: BaseException) -> bool:
    """A failure that a fresh attempt of the same transaction can get past (deadlock, lost race, lock)."""
    if not isinstance(exc, OperationalError | DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in {"40P01", "40001", "55P03"}:
        return True
    return "database is locked" in str(orig)


class RetryTransaction(Exception):
    """Raised inside a unit of work to have `run_transaction` start it again from scratch."""


T = TypeVar("T")


def run_transaction(work: Callable[[Session], T], *, attempts: int = 4) -> T:
    """Run `work` in its own unit of work, again from scratch on a transient failure."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope() as session:
                return work(session)
        except (OperationalError, DBAPIError, RetryTransaction) as exc:
            if attempt == attempts or not (isinstance(exc, RetryTransaction) or is_transient(exc)):
                raise
            time.sleep(0.01 * attempt * attempt)
    raise AssertionError("unreachable")
