"""the on-time report reads a period's forwards per hotline

Revision ID: 0014_forward_period_index
Revises: 0013_publication
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0014_forward_period_index"
down_revision = "0013_publication"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_case_forwards_hotline_sent", "case_forwards", ["hotline_id", "sent_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_case_forwards_hotline_sent", table_name="case_forwards")
