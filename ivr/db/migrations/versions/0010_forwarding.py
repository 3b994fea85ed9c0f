"""responsible units: their users, cases forwarded to them, their answers

Revision ID: 0010_forwarding
Revises: 0009_web_user_hotline
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0010_forwarding"
down_revision = "0009_web_user_hotline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled by the forwarding work of issue 13


def downgrade() -> None:
    pass
