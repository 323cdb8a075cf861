"""`otklik backup PATH` / `otklik restore PATH`: the database, the attachment files and a key check, as one folder.

Consistent while the server runs: SQLite through its online backup API (one read snapshot), PostgreSQL through
`pg_dump` (one snapshot) or, without it, a logical export read inside one REPEATABLE READ transaction. Files are
copied after the database snapshot, so every attachment the database names is there (a newer one may be too).
Restore only ever writes into an empty database: it never merges into, or overwrites, live data.
Never reads or writes the key itself: the backup records a fingerprint of OTKLIK_SECRET_KEY, so a restore under
another key (whose channel secrets could not be decrypted) is refused before anything is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, func, inspect, select, text
from sqlalchemy import types as sa_types
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_DUMP_FILE = "database.pgdump"
LOGICAL_DIR = "tables"
FILES_DIR = "files"
SKIPPED_TABLES = {"alembic_version"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
log = logging.getLogger(__name__)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def key_fingerprint(secret_key: str) -> str:
    """Names the key without revealing it: a one-way, purpose-bound hash (not usable to encrypt anything)."""
    return hashlib.sha256(b"otklik-backup-key-fingerprint\x00" + secret_key.encode()).hexdigest()[:24]


def _sa_url(url: str) -> str:
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


def _engine(url: str) -> Engine:
    return create_engine(_sa_url(url))


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


def _pg_env(url: str) -> dict[str, str]:
    """libpq settings for pg_dump/pg_restore: the password travels in the environment, not on the command line."""
    parsed = make_url(_sa_url(url))
    env = dict(os.environ)
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[name] = str(value)
    return env


def _data_tables(metadata: MetaData) -> list[Table]:
    """Every table holding data, parents before children; SQLite's FTS5 index tables are left out (the
    triggers of the restored schema rebuild them as the rows go in)."""
    fts = {t.name for t in metadata.sorted_tables if t.name.endswith("_fts")}
    skipped = SKIPPED_TABLES | fts | {t.name for t in metadata.sorted_tables
                                      if any(t.name.startswith(f + "_") for f in fts)}
    return [t for t in metadata.sorted_tables if t.name not in skipped and not t.name.startswith("sqlite_")]


def _reflect(conn: Any) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=conn)
    return metadata


def _revision(conn: Any) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.scalar(text("SELECT version_num FROM alembic_version"))


def _row_counts(conn: Any, tables: list[Table]) -> dict[str, int]:
    return {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0) for t in tables}


# -- what an existing database holds ------------------------------------------------------------------

@dataclass
class Contents:
    revision: str | None
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def database_contents(database_url: str) -> Contents:
    """The schema revision and each data table's row count (no tables at all: an empty database)."""
    if database_url.startswith("sqlite") and not _sqlite_path(database_url).exists():
        return Contents(revision=None)
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            return Contents(revision=_revision(conn), tables=_row_counts(conn, _data_tables(_reflect(conn))))
    finally:
        engine.dispose()


# -- backup -------------------------------------------------------------------------------------------

def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _export_logical(database_url: str, folder: Path) -> tuple[str | None, dict[str, int]]:
    """Each table as JSON lines (a header with the column names, then one list of values a row) from one
    snapshot: REPEATABLE READ on PostgreSQL, one read transaction on SQLite."""
    engine = _engine(database_url)
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            metadata = _reflect(conn)
            revision = _revision(conn)
            (folder / LOGICAL_DIR).mkdir(parents=True)
            for order, table in enumerate(_data_tables(metadata)):
                columns = [c for c in table.columns if c.computed is None]
                pk = list(table.primary_key.columns) or columns[:1]
                n = 0
                with (folder / LOGICAL_DIR / f"{order:03d}-{table.name}.jsonl").open("w", encoding="utf-8") as out:
                    out.write(json.dumps({"table": table.name, "columns": [c.name for c in columns]}) + "\n")
                    for row in conn.execute(select(*columns).order_by(*pk)).yield_per(1000):
                        out.write(json.dumps([_encode(v) for v in row], ensure_ascii=False) + "\n")
                        n += 1
                counts[table.name] = n
    finally:
        engine.dispose()
    return revision, counts


def _backup_sqlite(database_url: str, folder: Path) -> tuple[str | None, dict[str, int]]:
    source_path = _sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}: check OTKLIK_DATABASE_URL")
    target = folder / SQLITE_FILE
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=60)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot even while the server writes
        finally:
            copy.close()
    finally:
        source.close()
    contents = database_contents(f"sqlite:///{target}")
    return contents.revision, contents.tables


def _backup_pg_dump(database_url: str, folder: Path) -> tuple[str | None, dict[str, int]]:
    target = folder / PG_DUMP_FILE
    result = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)],  # noqa: S603, S607
                            env=_pg_env(database_url), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[:500]} (or run with --logical)")
    contents = database_contents(database_url)  # counts as of just after the dump: for the report only
    return contents.revision, contents.tables


def _copy_files(source: Path, target: Path) -> int:
    count = 0
    if not source.is_dir():
        return 0
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            count += 1
    return count


def create_backup(path: Path, *, database_url: str, attachments_dir: Path, secret_key: str,
                  logical: bool = False) -> dict[str, Any]:
    """Writes a backup to `path`: a new folder, or a .tar/.tar.gz/.tgz archive of that folder."""
    path = Path(path)
    if path.exists() and (path.is_file() or any(path.iterdir())):
        raise BackupError(f"{path} already exists and is not empty: choose a new path")
    archive = path.name.endswith(ARCHIVE_SUFFIXES)
    work = Path(tempfile.mkdtemp(prefix="otklik-backup-", dir=path.parent if path.parent.exists() else None)) \
        if archive else path
    work.mkdir(parents=True, exist_ok=True)
    try:
        if database_url.startswith("sqlite") and not logical:
            kind = "sqlite"
            revision, tables = _backup_sqlite(database_url, work)
        elif database_url.startswith("postgresql") and not logical and shutil.which("pg_dump"):
            kind = "pg_dump"
            revision, tables = _backup_pg_dump(database_url, work)
        else:
            kind = "logical"
            revision, tables = _export_logical(database_url, work)
        files = _copy_files(attachments_dir, work / FILES_DIR)
        manifest = {
            "otklik_backup": FORMAT_VERSION, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "database": kind, "dialect": "sqlite" if database_url.startswith("sqlite") else "postgresql",
            "revision": revision, "key_fingerprint": key_fingerprint(secret_key), "tables": tables, "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        if archive:
            mode = "w:gz" if path.name.endswith((".gz", ".tgz")) else "w"
            with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
                tar.add(work, arcname="otklik-backup")
        return manifest
    except BaseException:
        if not archive:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if archive:
            shutil.rmtree(work, ignore_errors=True)


# -- restore ------------------------------------------------------------------------------------------

def _unpack(path: Path, into: Path) -> Path:
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    found = [p.parent for p in into.rglob(MANIFEST)]
    if len(found) != 1:
        raise BackupError(f"{path} is not an otklik backup (no {MANIFEST} inside)")
    return found[0]


def _decode(value: Any, column_type: Any) -> Any:
    if value is None:
        return None
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return value
    if python_type is dt.datetime and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
    if python_type is dt.date and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if python_type is dt.time and isinstance(value, str):
        return dt.time.fromisoformat(value)
    if python_type is bool and isinstance(value, int):
        return bool(value)
    if python_type is bytes and isinstance(value, str):
        return base64.b64decode(value)
    if python_type is decimal.Decimal and isinstance(value, str | int | float):
        return decimal.Decimal(str(value))
    return value


def _rows_from_folder(folder: Path) -> Iterator[tuple[str, list[str], Iterator[list[Any]]]]:
    for file in sorted((folder / LOGICAL_DIR).glob("*.jsonl")):
        with file.open(encoding="utf-8") as lines:
            header = json.loads(next(lines))
            yield header["table"], header["columns"], (json.loads(line) for line in lines)


def _rows_from_sqlite(path: Path) -> Iterator[tuple[str, list[str], Iterator[list[Any]]]]:
    engine = _engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            for table in _data_tables(_reflect(conn)):
                columns = [c for c in table.columns if c.computed is None]
                pk = list(table.primary_key.columns) or columns[:1]
                rows = (list(map(_encode, r)) for r in conn.execute(select(*columns).order_by(*pk)).yield_per(1000))
                yield table.name, [c.name for c in columns], rows
    finally:
        engine.dispose()


def _import_logical(database_url: str, source: Iterator[tuple[str, list[str], Iterator[list[Any]]]]) -> None:
    """Inserts every table's rows into the (migrated, empty) target, then moves PostgreSQL's id sequences past
    the restored ids. Foreign keys are checked at commit (SQLite) or by the rows' order (PostgreSQL, where the
    session skips triggers when it may: a self-reference or a cycle between tables then loads in any order)."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            else:
                try:
                    with conn.begin_nested():
                        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                except DBAPIError:  # not a superuser: rows go in dependency order, checked as they go
                    log.info("restore: session_replication_role refused; foreign keys checked row by row")
            target = _reflect(conn)
            for name, columns, rows in source:
                table = target.tables.get(name)
                if table is None:
                    raise BackupError(f"table {name} of the backup does not exist in the target schema")
                wanted = [c for c in columns if c in table.columns and table.columns[c].computed is None]
                index = [columns.index(c) for c in wanted]
                types = [table.columns[c].type for c in wanted]
                batch: list[dict[str, Any]] = []
                for row in rows:
                    batch.append({c: _decode(row[i], t) for c, i, t in zip(wanted, index, types, strict=True)})
                    if len(batch) >= 500:
                        conn.execute(table.insert(), batch)
                        batch = []
                if batch:
                    conn.execute(table.insert(), batch)
            if engine.dialect.name == "postgresql":
                for table in target.sorted_tables:
                    for column in table.primary_key.columns:
                        if isinstance(column.type, sa_types.Integer):
                            seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                              {"t": table.name, "c": column.name})
                            if seq:
                                conn.execute(text(f'SELECT setval(:s, COALESCE(MAX("{column.name}"), 1), '  # noqa: S608
                                                  f'MAX("{column.name}") IS NOT NULL) FROM "{table.name}"'),
                                             {"s": seq})
    finally:
        engine.dispose()


def _restore_sqlite_file(backup_file: Path, database_url: str) -> None:
    target_path = _sqlite_path(database_url)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):  # an empty database's leftovers must not be replayed over the copy
        Path(str(target_path) + suffix).unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _restore_pg_dump(backup_file: Path, database_url: str, schema_exists: bool) -> None:
    if not shutil.which("pg_restore"):
        raise BackupError("this backup was written by pg_dump and pg_restore is not on PATH: install the "
                          "PostgreSQL client tools")
    command = ["pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    if schema_exists:
        command += ["--clean", "--if-exists"]  # an empty, migrated schema: replaced by the backup's
    result = subprocess.run([*command, "--dbname", _pg_env(database_url)["PGDATABASE"], str(backup_file)],  # noqa: S603
                            env=_pg_env(database_url), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()[:500]}")


def restore_backup(path: Path, *, database_url: str, attachments_dir: Path, secret_key: str,
                   upgrade: Callable[[str, str], None]) -> dict[str, Any]:
    """Restores `path` (a folder or an archive written by create_backup) into an empty database.

    `upgrade(database_url, revision)` applies migrations (otklik.migrations.upgrade; passed in because the
    platform stands below the domains whose tables the migrations create)."""
    path = Path(path)
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    with tempfile.TemporaryDirectory(prefix="otklik-restore-") as tmp:
        folder = _unpack(path, Path(tmp)) if path.is_file() else path
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise BackupError(f"{path} is not an otklik backup (no readable {MANIFEST})") from None
        if manifest.get("otklik_backup") != FORMAT_VERSION:
            raise BackupError(f"unknown backup format {manifest.get('otklik_backup')!r}")
        if manifest["key_fingerprint"] != key_fingerprint(secret_key):
            raise BackupError("OTKLIK_SECRET_KEY differs from the key this backup was made with (fingerprint "
                              f"{manifest['key_fingerprint']}): channel secrets and signed links would not work. "
                              "Set OTKLIK_SECRET_KEY to the original key and run restore again.")
        target_dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        contents = database_contents(database_url)
        if contents.rows:
            busy = ", ".join(f"{t} ({n})" for t, n in contents.tables.items() if n)[:300]
            raise BackupError(f"the target database is not empty: {busy}. Restore only into an empty database "
                              "(a new one, or one just created by `otklik migrate`).")
        kind = manifest["database"]
        if kind == "sqlite" and target_dialect == "sqlite":
            _restore_sqlite_file(folder / SQLITE_FILE, database_url)
        elif kind == "pg_dump":
            if target_dialect != "postgresql":
                raise BackupError("this backup was written by pg_dump: restore it into PostgreSQL, or make a "
                                  "logical one (`otklik backup --logical`) to move to SQLite")
            _restore_pg_dump(folder / PG_DUMP_FILE, database_url, schema_exists=bool(contents.tables))
        else:  # a logical export, or a SQLite file going into PostgreSQL: rows copied into a migrated schema
            if contents.tables and contents.revision != manifest["revision"]:
                raise BackupError(f"the target schema is at {contents.revision}, the backup at "
                                  f"{manifest['revision']}: restore into a database with no tables")
            if not contents.tables:
                upgrade(database_url, manifest["revision"] or "head")
            source = (_rows_from_sqlite(folder / SQLITE_FILE) if kind == "sqlite" else _rows_from_folder(folder))
            _import_logical(database_url, source)
        upgrade(database_url, "head")  # a backup of an older release comes up to this release's schema
        files = _copy_files(folder / FILES_DIR, attachments_dir)
    manifest["restored_files"] = files
    return manifest
