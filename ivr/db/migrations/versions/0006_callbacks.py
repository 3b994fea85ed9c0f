"""callback requests that keep the caller's place in the queue

Revision ID: 0006_callbacks
Revises: 0002_queue
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0006_callbacks"
down_revision = "0002_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("call_uniqueid", sa.String(length=64), nullable=False),
        sa.Column("case_code", sa.String(length=16), nullable=True),
        sa.Column("joined_at", sa.Float(), nullable=False),
        sa.Column("requested_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_result", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
    )
    op.create_index(
        op.f("ix_callback_requests_queue"), "callback_requests", ["queue"], unique=False
    )
    op.create_index(
        op.f("ix_callback_requests_status"), "callback_requests", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_requests_status"), table_name="callback_requests")
    op.drop_index(op.f("ix_callback_requests_queue"), table_name="callback_requests")
    op.drop_table("callback_requests")
