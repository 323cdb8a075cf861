"""bookings: services, installers on business calendars, booked visits and the cells they hold (issue 16)

Revision ID: 0026
Revises: 0030
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0030"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str | None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "booking_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(14, 2), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("booking_services", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_services")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_booking_services_workspace_id_name")),
    )
    op.create_table(
        "installers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("contractor", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("areas", JSON, nullable=False),
        sa.Column("service_ids", JSON,
                  nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("installers", "workspace_id", "workspaces", "CASCADE"),
        _fk("installers", "user_id", "users", "SET NULL"),
        _fk("installers", "calendar_id", "calendars", None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installers")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_installers_workspace_id_name")),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("installer_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("order_number", sa.String(64), nullable=False),
        sa.Column("area", sa.String(120), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_ts", sa.BigInteger(), nullable=False),
        sa.Column("end_ts", sa.BigInteger(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("price", sa.Numeric(14, 2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("missed_on", sa.String(10), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_score", sa.SmallInteger(), nullable=True),
        sa.Column("feedback_comment", sa.Text(), nullable=False),
        sa.Column("reschedules", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(16), nullable=False),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("bookings", "workspace_id", "workspaces", "CASCADE"),
        _fk("bookings", "service_id", "booking_services", None),
        _fk("bookings", "installer_id", "installers", None),
        _fk("bookings", "customer_id", "customers", "CASCADE"),
        _fk("bookings", "conversation_id", "conversations", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_ws_installer_ts", "bookings", ["workspace_id", "installer_id", "start_ts", "end_ts",
                                                          "status"])  # covers the slot search
    op.create_index("ix_bookings_ws_start", "bookings", ["workspace_id", "start_at"])
    op.create_index("ix_bookings_status_start", "bookings", ["status", "start_at"])
    op.create_index("ix_bookings_ws_customer", "bookings", ["workspace_id", "customer_id"])
    op.create_table(
        "booking_cells",
        sa.Column("installer_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        _fk("booking_cells", "installer_id", "installers", "CASCADE"),
        _fk("booking_cells", "booking_id", "bookings", "CASCADE"),
        _fk("booking_cells", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("installer_id", "starts_at", name=op.f("pk_booking_cells")),
    )
    op.create_index(op.f("ix_booking_cells_booking_id"), "booking_cells", ["booking_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_cells_booking_id"), table_name="booking_cells")
    op.drop_table("booking_cells")
    op.drop_index("ix_bookings_ws_customer", table_name="bookings")
    op.drop_index("ix_bookings_status_start", table_name="bookings")
    op.drop_index("ix_bookings_ws_start", table_name="bookings")
    op.drop_index("ix_bookings_ws_installer_ts", table_name="bookings")
    op.drop_table("bookings")
    op.drop_table("installers")
    op.drop_table("booking_services")
