"""queue statistics: queue calls, agent sessions and pauses, queue_log, member overrides

Revision ID: 0002_queue
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0002_queue"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("interface", sa.String(length=128), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("paused_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("unpaused_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_pauses")),
        sa.UniqueConstraint(
            "node", "interface", "queue", "paused_at", name=op.f("uq_agent_pauses_node")
        ),
    )
    with op.batch_alter_table("agent_pauses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_pauses_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_pauses_paused_at"), ["paused_at"], unique=False)

    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("interface", sa.String(length=128), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("login_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("logout_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sessions")),
        sa.UniqueConstraint(
            "node", "interface", "queue", "login_at", name=op.f("uq_agent_sessions_node")
        ),
    )
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_sessions_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_sessions_login_at"), ["login_at"], unique=False)

    op.create_table(
        "queue_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("caller_id", sa.String(length=64), nullable=False),
        sa.Column("first_queue", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("queues_visited", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.String(length=64), nullable=True),
        sa.Column("joined_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("agent_interface", sa.String(length=128), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("rings_unanswered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_calls")),
        sa.UniqueConstraint("node", "uniqueid", name=op.f("uq_queue_calls_node")),
    )
    with op.batch_alter_table("queue_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_calls_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_calls_joined_at"), ["joined_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_calls_linkedid"), ["linkedid"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_calls_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_calls_shift_id"), ["shift_id"], unique=False)

    op.create_table(
        "queue_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("time", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("callid", sa.String(length=64), nullable=False),
        sa.Column("queuename", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("data1", sa.String(length=128), nullable=False),
        sa.Column("data2", sa.String(length=128), nullable=False),
        sa.Column("data3", sa.String(length=128), nullable=False),
        sa.Column("data4", sa.String(length=128), nullable=False),
        sa.Column("data5", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_log")),
        sa.UniqueConstraint(
            "node", "time", "callid", "queuename", "agent", "event", name=op.f("uq_queue_log_node")
        ),
    )
    with op.batch_alter_table("queue_log", schema=None) as batch_op:
        batch_op.create_index("ix_queue_log_queuename_time", ["queuename", "time"], unique=False)

    op.create_table(
        "queue_member_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("until", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_member_overrides")),
        sa.UniqueConstraint("agent_id", "queue", name=op.f("uq_queue_member_overrides_agent_id")),
    )


def downgrade() -> None:
    op.drop_table("queue_member_overrides")
    with op.batch_alter_table("queue_log", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_log_queuename_time")

    op.drop_table("queue_log")
    with op.batch_alter_table("queue_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_calls_shift_id"))
        batch_op.drop_index(batch_op.f("ix_queue_calls_queue"))
        batch_op.drop_index(batch_op.f("ix_queue_calls_linkedid"))
        batch_op.drop_index(batch_op.f("ix_queue_calls_joined_at"))
        batch_op.drop_index(batch_op.f("ix_queue_calls_agent_id"))

    op.drop_table("queue_calls")
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_sessions_login_at"))
        batch_op.drop_index(batch_op.f("ix_agent_sessions_agent_id"))

    op.drop_table("agent_sessions")
    with op.batch_alter_table("agent_pauses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_pauses_paused_at"))
        batch_op.drop_index(batch_op.f("ix_agent_pauses_agent_id"))

    op.drop_table("agent_pauses")
