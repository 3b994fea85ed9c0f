"""publication of selected cases: the citizen's consent, the public texts

Revision ID: 0013_publication
Revises: 0012_scale_indexes
Create Date: 2026-11-30

A case may be published on the hotline's public page only with the citizen's
consent (recorded with who recorded it and when); a supervisor publishes texts
without personal data under a random public id (the case code is sequential
and is never shown there).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0013_publication"
down_revision = "0012_scale_indexes"
branch_labels = None
# It alters `cases`: the cases branch (0003 → 0004 → 0007) is already below
# 0010_forwarding, which declares it, so nothing more is needed here.
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("publish_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("publish_consent_by", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("publish_consent_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("publish_consent_note", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("public_id", sa.String(length=24), nullable=True))
        batch.add_column(
            sa.Column("public_title", sa.String(length=200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("public_text", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("public_answer", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("published_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("published_by", sa.String(length=128), nullable=True))
    op.create_index("ix_cases_public_id", "cases", ["public_id"], unique=True)
    op.create_index("ix_cases_published_at", "cases", ["published_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_published_at", table_name="cases")
    op.drop_index("ix_cases_public_id", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in (
            "published_by", "published_at", "public_answer", "public_text", "public_title",
            "public_id", "publish_consent_note", "publish_consent_at", "publish_consent_by",
            "publish_consent",
        ):  # fmt: skip
            batch.drop_column(column)
