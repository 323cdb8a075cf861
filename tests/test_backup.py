"""`otklik backup` / `otklik restore` (issue 17 §3): a round trip into an empty install compares every table's
rows and every attachment file; the refusals (a non-empty target, another key); the outside check's contract
(the restored database served by `otklik serve` answers the same API token with the same conversations).

The source is the suite's own database (SQLite, or PostgreSQL with OTKLIK_TEST_DATABASE_URL); the PostgreSQL
targets are `<that database>_restore`, created beside it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from otklik.migrations import upgrade
from otklik.platform import backup
from otklik.platform.config import get_settings
from tests.conftest import DATABASE_URL, inbound
from tests.test_scale_out import free_port, wait_http

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
KEY = get_settings().secret_key.get_secret_value()
OTKLIK = str(Path(sys.executable).with_name("otklik"))
ON_POSTGRES = DATABASE_URL.startswith("postgresql")


def _sa(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _empty_pg_database(suffix: str) -> str:
    """A PostgreSQL database beside the suite's one, created if missing, with its schema emptied."""
    from sqlalchemy.engine import make_url

    parsed = make_url(DATABASE_URL)
    name = f"{parsed.database}_{suffix}"
    admin = create_engine(_sa(DATABASE_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = parsed.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(_sa(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def _snapshot(url: str) -> dict[str, list[tuple]]:
    """Every data table's rows (computed columns left out), in primary-key order, in a dialect-neutral form."""
    engine = create_engine(_sa(url))
    try:
        with engine.connect() as conn:
            result = {}
            for table in backup._data_tables(backup._reflect(conn)):
                columns = sorted((c for c in table.columns if c.computed is None), key=lambda c: c.name)
                pk = list(table.primary_key.columns) or columns
                result[table.name] = [tuple(backup._encode(v) for v in row)
                                      for row in conn.execute(select(*columns).order_by(*pk))]
            return result
    finally:
        engine.dispose()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} \
        if root.exists() else {}


def _restore(path: Path, url: str, data_dir: Path, key: str = KEY) -> dict:
    return backup.restore_backup(path, database_url=url, attachments_dir=data_dir / "attachments", secret_key=key,
                                 upgrade=lambda u, r: upgrade(u, revision=r))


@pytest.fixture
def seeded(client, ws):
    """A workspace with conversations, messages (searchable), an attachment file and an API token."""
    for n in range(3):
        inbound(client, ws, identity=f"backup{n}@example.com", text=f"Где заказ номер {n}? Жду посылку")
    r = client.post("/api/v1/attachments", files={"file": ("чек.png", PNG, "image/png")}, headers=ws.agent)
    assert r.status_code == 201, r.text
    return ws


def _compare(source_url: str, target_url: str, target_data: Path) -> None:
    before, after = _snapshot(source_url), _snapshot(target_url)
    assert before.keys() == after.keys()
    for table in before:
        assert after[table] == before[table], table
    assert _files(target_data / "attachments") == _files(get_settings().attachments_dir)


def test_round_trip_into_an_empty_install_keeps_every_row_and_file(seeded, tmp_path):
    manifest = backup.create_backup(tmp_path / "b", database_url=DATABASE_URL,
                                    attachments_dir=get_settings().attachments_dir, secret_key=KEY)
    assert manifest["database"] == ("pg_dump" if ON_POSTGRES else "sqlite")
    assert manifest["files"] >= 1 and manifest["tables"]["messages"] >= 3
    target = _empty_pg_database("restore") if ON_POSTGRES else f"sqlite:///{tmp_path}/restored.db"
    _restore(tmp_path / "b", target, tmp_path / "data")
    _compare(DATABASE_URL, target, tmp_path / "data")
    # a second restore into what is now a full database is refused, naming the tables
    with pytest.raises(backup.BackupError, match=r"target database is not empty: \w+ \(\d+\)"):
        _restore(tmp_path / "b", target, tmp_path / "data")


def test_search_works_after_restore(seeded, tmp_path):
    backup.create_backup(tmp_path / "b.tar.gz", database_url=DATABASE_URL,
                         attachments_dir=get_settings().attachments_dir, secret_key=KEY, logical=True)
    target = f"sqlite:///{tmp_path}/restored.db"  # a logical backup goes into either database
    _restore(tmp_path / "b.tar.gz", target, tmp_path / "data")
    _compare(DATABASE_URL, target, tmp_path / "data")
    with sqlite3.connect(f"{tmp_path}/restored.db") as conn:  # the FTS index was rebuilt by the triggers
        assert conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'посылк*'").fetchone()[0] >= 3


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (OTKLIK_TEST_DATABASE_URL)")
def test_sqlite_backup_restores_into_postgresql(seeded, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path}/middle.db"
    backup.create_backup(tmp_path / "logical", database_url=DATABASE_URL, attachments_dir=tmp_path / "none",
                         secret_key=KEY, logical=True)
    _restore(tmp_path / "logical", sqlite_url, tmp_path / "d1")  # PostgreSQL -> SQLite
    backup.create_backup(tmp_path / "file", database_url=sqlite_url, attachments_dir=tmp_path / "none",
                         secret_key=KEY)
    target = _empty_pg_database("restore2")
    _restore(tmp_path / "file", target, tmp_path / "d2")  # SQLite file -> PostgreSQL, sequences moved on
    before, after = _snapshot(DATABASE_URL), _snapshot(target)
    assert after == before
    engine = create_engine(_sa(target))
    with engine.begin() as conn:  # the next id continues after the restored ones
        top = conn.scalar(text("SELECT max(id) FROM workspaces"))
        new = conn.scalar(text("INSERT INTO workspaces (slug, name, language, timezone, conversation_seq, "
                               "created_at) VALUES ('after-restore', 'x', 'ru', 'UTC', 0, now()) RETURNING id"))
        assert new > top
    engine.dispose()


def test_restore_refuses_another_key_and_a_non_empty_database(seeded, tmp_path):
    backup.create_backup(tmp_path / "b", database_url=DATABASE_URL, attachments_dir=tmp_path / "none",
                         secret_key=KEY)
    target = f"sqlite:///{tmp_path}/t.db"
    with pytest.raises(backup.BackupError, match="OTKLIK_SECRET_KEY differs"):
        _restore(tmp_path / "b", target, tmp_path / "d", key="another-key-entirely")
    assert not (tmp_path / "t.db").exists()  # nothing written
    with pytest.raises(backup.BackupError, match="not empty"):
        _restore(tmp_path / "b", DATABASE_URL, tmp_path / "d")
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.create_backup(tmp_path / "b", database_url=DATABASE_URL, attachments_dir=tmp_path / "none",
                             secret_key=KEY)


def test_restore_into_a_freshly_migrated_empty_database(seeded, tmp_path):
    target = _empty_pg_database("restore") if ON_POSTGRES else f"sqlite:///{tmp_path}/migrated.db"
    upgrade(target)  # `otklik migrate` first: tables, but no rows
    backup.create_backup(tmp_path / "b", database_url=DATABASE_URL, attachments_dir=tmp_path / "none",
                         secret_key=KEY)
    _restore(tmp_path / "b", target, tmp_path / "d")
    assert _snapshot(target) == _snapshot(DATABASE_URL)


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite online backup under concurrent writes")
def test_backup_while_the_server_writes_is_consistent(client, ws, tmp_path):
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            inbound(client, ws, identity=f"busy{n}@example.com", text=f"сообщение {n}")
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(3):
            backup.create_backup(tmp_path / f"b{i}", database_url=DATABASE_URL, attachments_dir=tmp_path / "none",
                                 secret_key=KEY)
    finally:
        stop.set()
        writer.join()
    for i in range(3):
        with sqlite3.connect(tmp_path / f"b{i}" / backup.SQLITE_FILE) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            # each message's conversation is in the same snapshot
            assert conn.execute("SELECT count(*) FROM messages m LEFT JOIN conversations c "
                                "ON c.id = m.conversation_id WHERE c.id IS NULL").fetchone()[0] == 0


def test_cli_contract_restored_install_serves_the_same_token_and_conversations(seeded, client, tmp_path):
    before = client.get("/api/v1/conversations", headers=seeded.admin).json()
    env = {**os.environ, "OTKLIK_LOG_LEVEL": "warning"}
    done = subprocess.run([OTKLIK, "backup", str(tmp_path / "b.tar")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    target = _empty_pg_database("restore") if ON_POSTGRES else f"sqlite:///{tmp_path}/restored.db"
    restored = {**env, "OTKLIK_DATABASE_URL": target, "OTKLIK_DATA_DIR": str(tmp_path / "data"),
                "OTKLIK_QUEUE": "sqlite", "OTKLIK_QUEUE_PATH": str(tmp_path / "queue.db")}
    restored.pop("OTKLIK_REDIS_URL", None)
    done = subprocess.run([OTKLIK, "restore", str(tmp_path / "b.tar")], env=restored, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([OTKLIK, "restore", str(tmp_path / "b.tar")], env=restored, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([OTKLIK, "serve", "--port", str(port)], env=restored, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        after = httpx.get(f"http://127.0.0.1:{port}/api/v1/conversations", headers=seeded.admin, timeout=10)
        assert after.status_code == 200, after.text
        assert [c["id"] for c in after.json()["items"]] == [c["id"] for c in before["items"]]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
