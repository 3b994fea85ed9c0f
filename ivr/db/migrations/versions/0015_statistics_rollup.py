"""daily roll-up of call figures and each call's previous call (issue 13 statistics)

Revision ID: 0015_statistics_rollup
Revises: 0014_forward_period_index
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0015_statistics_rollup"
down_revision = "0014_forward_period_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
