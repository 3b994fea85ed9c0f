"""a supervisor may be limited to one hotline

Revision ID: 0009_web_user_hotline
Revises: 0008_web_sessions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_web_user_hotline"
down_revision = "0008_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.add_column(sa.Column("hotline_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("hotline_id")
