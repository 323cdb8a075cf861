"""Upgrades (issue 17 §3): a database made by the oldest shipped schema (0001), with a row in every one of its
tables, migrates to head one revision at a time — each revision's new tables get a row too before the next
migration runs over them — keeping every row; and the last migration goes down one step and up again.

The rows are generated from the reflected schema (a value of each column's type, the parent's id for a foreign
key), so a table added later is covered without editing this test."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from otklik.migrations import alembic_config, upgrade

OLDEST = "0001"
WHEN = dt.datetime(2026, 1, 1, 12, 0)


def _value(column: sa.Column, dialect: str) -> object:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 1
    if isinstance(kind, sa.DateTime):
        return WHEN if dialect == "sqlite" else WHEN.replace(tzinfo=dt.UTC)
    if isinstance(kind, sa.Date):
        return WHEN.date()
    if isinstance(kind, sa.Numeric | sa.Float):
        return 1
    if isinstance(kind, sa.JSON) or kind.__class__.__name__ in ("JSONB", "JSON"):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b"x"
    if isinstance(kind, sa.String | sa.Text):
        length = getattr(kind, "length", None) or 10
        return "x"[:length]
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({kind!r})")


def _fill_every_table(engine: sa.Engine) -> None:
    """One row in each empty table (parents first: every foreign key points at id 1); a table a migration
    already filled (a backfill) keeps what it has."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version" or "_fts" in table.name:
                continue
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                continue
            row = {}
            for column in table.columns:
                if column.primary_key and isinstance(column.type, sa.Integer) and not column.foreign_keys:
                    continue  # the database numbers it: 1 in an empty table
                if column.computed is not None or column.name == "search_vector":
                    continue
                row[column.name] = 1 if column.foreign_keys else _value(column, engine.dialect.name)
            conn.execute(table.insert().values(**row))


def _count(engine: sa.Engine) -> dict[str, int]:
    tables = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version" and "_fts" not in t]
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}


def _database_url(tmp_path) -> tuple[str, object]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database beside the test one."""
    base = os.environ.get("OTKLIK_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path}/upgrade.db", None
    import psycopg

    name = f"otklik_upgrade_{uuid.uuid4().hex[:8]}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + "/" + name, drop


@pytest.mark.xdist_group("upgrade")
def test_oldest_schema_with_data_in_every_table_upgrades_to_head_and_the_last_step_goes_down(tmp_path):
    url, drop = _database_url(tmp_path)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        script = ScriptDirectory.from_config(alembic_config(url))
        revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
        assert revisions[0] == OLDEST
        expected: dict[str, int] = {}
        for revision in revisions:
            upgrade(url, revision)
            now = _count(engine)
            changed = {t: (n, now.get(t)) for t, n in expected.items() if now.get(t) != n}
            assert not changed, f"{revision} lost, duplicated or dropped rows (before, after): {changed}"
            _fill_every_table(engine)
            expected = _count(engine)
            assert all(expected.values()), f"tables left empty at {revision}"
        assert len(expected) >= 60  # every table of head got its rows on the way
        kept = expected
        head = script.get_current_head()
        previous = script.get_revision(head).down_revision
        config = alembic_config(url)
        command.downgrade(config, "-1")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == previous
        below = _count(engine)  # the tables the last migration did not create keep their rows
        assert below == {t: n for t, n in kept.items() if t in below}
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head
        after = _count(engine)
        assert set(after) == set(kept) and {t: after[t] for t in below} == below
    finally:
        engine.dispose()
        if drop:
            drop()  # type: ignore[operator]
