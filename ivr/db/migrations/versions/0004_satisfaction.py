"""satisfaction rating on calls and cases

Revision ID: 0004_satisfaction
Revises: 0003_cases
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_satisfaction"
down_revision = "0003_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("satisfaction", sa.Integer(), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("satisfaction", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("satisfaction")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("satisfaction")
