"""knowledge base: articles on administrative procedures

Revision ID: 0011_knowledge_base
Revises: 0010_forwarding
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0011_knowledge_base"
down_revision = "0010_forwarding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled by the knowledge-base work of issue 13


def downgrade() -> None:
    pass
