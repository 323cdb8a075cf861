"""Alembic migrations for every domain's tables, and the runner used by `otklik migrate`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(database_url: str | None = None) -> Config:
    from otklik.platform.config import get_settings

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    url = database_url or get_settings().database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def all_models() -> None:
    """Import every table so `Base.metadata` is complete (for autogenerate and tests)."""
    import otklik.accounts.models
    import otklik.accounts.password_reset
    import otklik.assistant.models
    import otklik.bookings.models
    import otklik.calendars.models
    import otklik.channels.email.models
    import otklik.channels.models
    import otklik.conversations.drafts
    import otklik.conversations.inbox
    import otklik.conversations.models
    import otklik.conversations.routing
    import otklik.conversations.sla
    import otklik.conversations.templates
    import otklik.crm.models
    import otklik.customers.models
    import otklik.customers.suggestions
    import otklik.customers.tasks
    import otklik.feedback.models
    import otklik.feedback.qa
    import otklik.feedback.reviews
    import otklik.guardrails.compensation_models
    import otklik.guardrails.models
    import otklik.guardrails.phrase_rules
    import otklik.knowledge.models
    import otklik.notifications.models
    import otklik.privacy.models
    import otklik.reports.models
    import otklik.orders.models
    import otklik.proactive.models
    import otklik.service_levels.models
    import otklik.web.widget.models  # noqa: F401
