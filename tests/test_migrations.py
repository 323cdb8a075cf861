"""Migrations and models agree: autogenerate finds nothing to do on a migrated database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from otklik.migrations import all_models
from otklik.migrations.env_filters import include_object
from otklik.platform.db import Base, get_engine


def test_models_match_migrations():
    all_models()
    with get_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
