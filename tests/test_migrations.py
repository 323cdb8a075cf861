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


def test_0008_moves_an_earlier_shipped_answer_threshold_and_keeps_a_chosen_one(tmp_path):
    import sqlalchemy as sa

    from otklik.migrations import upgrade

    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url, "0007")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # SQLite leaves foreign keys unchecked on a plain engine: no workspaces needed
        for ws, threshold in ((1, 0.731), (2, 0.9)):
            conn.execute(sa.text(
                "INSERT INTO assistant_settings (workspace_id, enabled, channels, answer_threshold, "
                "negativity_threshold, urgency_threshold, tone, greeting, working_hours, out_of_hours_message, "
                "updated_at) VALUES (:ws, 1, '[]', :t, 0.95, 0.95, 'formal', '', '{}', '', '2026-01-01')"),
                {"ws": ws, "t": threshold})
    upgrade(url, "0008")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT workspace_id, answer_threshold FROM assistant_settings")).all())
    assert rows == {1: 0.75, 2: 0.9}
    engine.dispose()


def test_0009_turns_the_assistants_working_hours_into_the_default_calendar(tmp_path):
    import sqlalchemy as sa

    from otklik.migrations import upgrade

    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url, "0008")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ws, zone, hours in ((1, "Asia/Novosibirsk", '{"days": [0, 1, 2, 3, 4, 5], "start": "10:00", "end": "20:00"}'),
                                (2, "Europe/Moscow", "{}")):
            conn.execute(sa.text("INSERT INTO workspaces (id, slug, name, language, timezone, conversation_seq, "
                                 "created_at) VALUES (:ws, :slug, 'x', 'ru', :zone, 0, '2026-01-01')"),
                         {"ws": ws, "slug": f"w{ws}", "zone": zone})
            conn.execute(sa.text(
                "INSERT INTO assistant_settings (workspace_id, enabled, channels, answer_threshold, bot_name, "
                "negativity_threshold, urgency_threshold, tone, greeting, working_hours, out_of_hours_message, "
                "updated_at) VALUES (:ws, 1, '[]', 0.75, '', 0.95, 0.95, 'formal', '', :h, '', '2026-01-01')"),
                {"ws": ws, "h": hours})
    upgrade(url, "0009")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT workspace_id, time_zone, hours, holidays, is_default FROM calendars")).all()
        columns = [c["name"] for c in sa.inspect(conn).get_columns("assistant_settings")]
    assert len(rows) == 1 and rows[0][0] == 1 and rows[0][1] == "Asia/Novosibirsk" and rows[0][3] == "RU"
    import json

    hours = json.loads(rows[0][2])
    assert hours["sat"] == [["10:00", "20:00"]] and hours["sun"] == [] and rows[0][4]
    assert "working_hours" not in columns
    engine.dispose()
