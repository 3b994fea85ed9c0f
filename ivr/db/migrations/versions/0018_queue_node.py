"""queue records and agent records carry the Asterisk node they were on (issue 15)

Nothing to change: ``queue_calls``, ``agent_sessions``, ``agent_pauses`` and
``queue_log`` have carried ``node`` since 0002_queue_stats, in their unique keys
(node + uniqueid for a queue call), so the same uniqueid on two nodes is two
rows and the statistics sum over nodes (tests/test_cluster_queues_db.py). The
revision is kept so the chain stays as reserved.

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
