"""EXPERIMENT, not the product: `otklik serve` with SQLite write transactions queued on an in-process lock.

Used by `bench/ingest.py --sqlite-writer-lock` to test the fix suggested in BENCHMARKS.md for the SQLite
ingestion tail: today every writer thread runs `BEGIN IMMEDIATE` and, when the database is locked, SQLite's
busy handler sleeps and retries (sleeps grow to 100 ms), so a waiting request can lose the race again and
again. Here a writer first takes a process-wide lock (waiters wake as soon as it is released) and releases it
at COMMIT/ROLLBACK; SQLite's busy timeout then only arbitrates between processes.
Same arguments as `otklik serve`.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from sqlalchemy import Engine, event

import otklik.platform.db as db

_original_setup = db._sqlite_setup


def _setup_with_writer_lock(engine: Engine) -> None:
    _original_setup(engine)
    lock = threading.Lock()
    holders: set[int] = set()  # id() of the DBAPI connection holding the lock
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def acquire(conn: Any) -> None:
        if conn.get_execution_options().get("sqlite_immediate", False):
            lock.acquire()
            holders.add(id(conn.connection.dbapi_connection))

    def release(dbapi_connection: Any) -> None:
        key = id(dbapi_connection)
        if key in holders:
            holders.discard(key)
            lock.release()

    def commit(dbapi_connection: Any) -> None:
        try:
            do_commit(dbapi_connection)
        finally:
            release(dbapi_connection)  # after COMMIT has finished, not before

    def rollback(dbapi_connection: Any) -> None:
        try:
            do_rollback(dbapi_connection)
        finally:
            release(dbapi_connection)

    event.listen(engine, "begin", acquire, insert=True)  # before the BEGIN IMMEDIATE listener
    dialect.do_commit = commit  # type: ignore[method-assign]
    dialect.do_rollback = rollback  # type: ignore[method-assign]


db._sqlite_setup = _setup_with_writer_lock

if __name__ == "__main__":
    from otklik.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
