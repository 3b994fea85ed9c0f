"""calls table

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("caller_raw", sa.String(length=64), nullable=False),
        sa.Column("caller_withheld", sa.Boolean(), nullable=False),
        sa.Column("dialed_number", sa.String(length=32), nullable=False),
        sa.Column("keys_pressed", sa.String(length=128), nullable=False),
        sa.Column("area_code", sa.String(length=64), nullable=True),
        sa.Column("route_kind", sa.String(length=32), nullable=True),
        sa.Column("route_target", sa.String(length=255), nullable=True),
        sa.Column("last_step", sa.String(length=64), nullable=False),
        sa.Column("started_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=128), nullable=True),
        sa.Column("dial_status", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_calls_uniqueid")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_area_code"), ["area_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_caller_number"), ["caller_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_linkedid"), ["linkedid"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_started_at"), ["started_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_started_at"))
        batch_op.drop_index(batch_op.f("ix_calls_linkedid"))
        batch_op.drop_index(batch_op.f("ix_calls_caller_number"))
        batch_op.drop_index(batch_op.f("ix_calls_area_code"))

    op.drop_table("calls")
