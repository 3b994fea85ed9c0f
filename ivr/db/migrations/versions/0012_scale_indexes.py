"""indexes for a province's scale: screen-pop, per-hotline statistics, case search

Revision ID: 0012_scale_indexes
Revises: 0011_knowledge_base
Create Date: 2026-11-30

Measured with bench/province_scale.py (nine million calls, 100,000 cases; see
README.md, "At a province's scale"):
- a caller's latest calls (the agent's screen-pop) read the last ten rows of
  (caller_number, started_at) instead of sorting every call of a number that
  called thousands of times;
- a hotline's statistics read (hotline_id, started_at) instead of the whole
  period of every hotline;
- whether an agent answered a call (what an agent may read) is one probe of
  (uniqueid, agent_id) in queue_calls, not a hash of all their calls;
- case search by words (``ILIKE '%…%'``) uses trigram indexes (pg_trgm, a
  trusted extension shipped with PostgreSQL) on PostgreSQL; SQLite keeps its
  scan.
"""

from __future__ import annotations

from alembic import op

revision = "0012_scale_indexes"
down_revision = "0011_knowledge_base"
branch_labels = None
# Indexes on queue_calls: the queue branch must be there first.
depends_on = "0006_callbacks"


def upgrade() -> None:
    op.create_index("ix_calls_caller_number_started_at", "calls", ["caller_number", "started_at"])
    op.create_index("ix_calls_hotline_id_started_at", "calls", ["hotline_id", "started_at"])
    op.create_index("ix_queue_calls_uniqueid_agent_id", "queue_calls", ["uniqueid", "agent_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in ("summary", "transcript"):
            op.create_index(
                f"ix_cases_{column}_trgm",
                "cases",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_transcript_trgm", table_name="cases")
        op.drop_index("ix_cases_summary_trgm", table_name="cases")
    op.drop_index("ix_queue_calls_uniqueid_agent_id", table_name="queue_calls")
    op.drop_index("ix_calls_hotline_id_started_at", table_name="calls")
    op.drop_index("ix_calls_caller_number_started_at", table_name="calls")
