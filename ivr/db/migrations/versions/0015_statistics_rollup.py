"""daily roll-up of call figures and each call's previous call (issue 13 statistics)

Revision ID: 0015_statistics_rollup
Revises: 0014_forward_period_index
Create Date: 2026-11-30

A year's statistics page at a province's scale (README, "At a province's
scale"; ivr/reports/call_rollup.py):
- ``rolled_days``, ``call_day_counts``, ``queue_day_counts``: the figures of
  settled UTC days, summed instead of two million calls;
- ``calls.previous_call_at`` / ``previous_call_anywhere_at`` and two partial
  indexes: distinct callers as a count of each number's first call of the
  period, instead of a hash of a million numbers. Existing calls get theirs
  here, in one pass per column (a window over each number's calls).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.db.models import UtcDateTime

revision = "0015_statistics_rollup"
down_revision = "0014_forward_period_index"
branch_labels = None
# Reads queue records: the queue branch must be there first.
depends_on = "0006_callbacks"

HAS_NUMBER = "caller_number <> ''"


def upgrade() -> None:
    op.create_table(
        "rolled_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", UtcDateTime(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("queue_calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_rolled_days")),
    )
    op.create_table(
        "call_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "hotline_id", "dimension", "value", name=op.f("pk_call_day_counts")
        ),
    )
    op.create_index(
        "ix_call_day_counts_dimension_day",
        "call_day_counts",
        ["dimension", "day", "hotline_id", "value", "calls"],
    )
    op.create_table(
        "queue_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.Column("wait_tenths", sa.Integer(), nullable=False),
        sa.Column("waits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "queue", name=op.f("pk_queue_day_counts")),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("previous_call_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("previous_call_anywhere_at", UtcDateTime(), nullable=True))
    # Each existing call's previous call: lag() over the number's calls.
    for column, partition in (
        ("previous_call_at", "hotline_id, caller_number"),
        ("previous_call_anywhere_at", "caller_number"),
    ):
        op.execute(
            f"UPDATE calls SET {column} = chain.previous FROM ("
            f"SELECT id, lag(started_at) OVER (PARTITION BY {partition} "
            "ORDER BY started_at, id) AS previous FROM calls "
            f"WHERE {HAS_NUMBER}) AS chain "
            "WHERE calls.id = chain.id AND chain.previous IS NOT NULL"
        )
    op.create_index(
        "ix_calls_caller_number_hotline_id",
        "calls",
        ["caller_number", "hotline_id", "started_at"],
    )
    where = sa.text(HAS_NUMBER)
    op.create_index(
        "ix_calls_first_caller_hotline",
        "calls",
        ["hotline_id", "started_at", "previous_call_at"],
        postgresql_where=where,
        sqlite_where=where,
    )
    op.create_index(
        "ix_calls_first_caller_anywhere",
        "calls",
        ["started_at", "previous_call_anywhere_at"],
        postgresql_where=where,
        sqlite_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_calls_first_caller_anywhere", table_name="calls")
    op.drop_index("ix_calls_first_caller_hotline", table_name="calls")
    op.drop_index("ix_calls_caller_number_hotline_id", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("previous_call_anywhere_at")
        batch.drop_column("previous_call_at")
    op.drop_table("queue_day_counts")
    op.drop_index("ix_call_day_counts_dimension_day", table_name="call_day_counts")
    op.drop_table("call_day_counts")
    op.drop_table("rolled_days")
