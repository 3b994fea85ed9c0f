"""citizens, their contacts, case messages and attachments, intake keys (issue 14)

Revision ID: 0016_intake
Revises: 0015_statistics_rollup
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0016_intake"
down_revision = "0015_statistics_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
