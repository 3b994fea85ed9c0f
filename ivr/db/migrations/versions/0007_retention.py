"""retention: who put a case under legal hold, when and why; erasure marks

Revision ID: 0007_retention
Revises: 0004_satisfaction
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0007_retention"
down_revision = "0004_satisfaction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("legal_hold_reason", sa.Text(), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("legal_hold_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("legal_hold_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("erased_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("transcripts", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("legal_hold_at")
        batch_op.drop_column("legal_hold_by")
        batch_op.drop_column("legal_hold_reason")
