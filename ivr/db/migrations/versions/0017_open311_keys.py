"""API keys of Open311 client apps (issue 14)

Revision ID: 0017_open311_keys
Revises: 0016_intake
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0017_open311_keys"
down_revision = "0016_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
