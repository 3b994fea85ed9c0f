"""knowledge base: articles on administrative procedures

Revision ID: 0011_knowledge_base
Revises: 0010_forwarding
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.db.models import UtcDateTime

revision = "0011_knowledge_base"
down_revision = "0010_forwarding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Searched with LIKE '%word%' on folded_text: no index serves a leading
    # wildcard, and none is needed for a few thousand articles (docs/web.md).
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=True),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("documents", sa.Text(), nullable=False),
        sa.Column("fees", sa.Text(), nullable=False),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("processing_time", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("folded_title", sa.String(length=255), nullable=False),
        sa.Column("folded_text", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    for column in ("hotline_id", "topic", "published"):
        op.create_index(op.f(f"ix_kb_articles_{column}"), "kb_articles", [column], unique=False)


def downgrade() -> None:
    op.drop_table("kb_articles")
