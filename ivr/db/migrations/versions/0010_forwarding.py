"""responsible units: their users, cases forwarded to them, their answers

Revision ID: 0010_forwarding
Revises: 0009_web_user_hotline
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0010_forwarding"
down_revision = "0009_web_user_hotline"
branch_labels = None
# It alters `cases` and refers to it: after the cases branch (0003 → 0004 → 0007).
depends_on = "0007_retention"


def upgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.add_column(sa.Column("unit_code", sa.String(length=64), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("answer_approved_by", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("answer_approved_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "case_forwards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_by", sa.String(length=128), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("share_transcript", sa.Boolean(), nullable=False),
        sa.Column("share_recording", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=128), nullable=True),
        sa.Column("extension_days_requested", sa.Integer(), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("escalated_for", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_forwards_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_forwards")),
        sa.UniqueConstraint("case_id", "unit_code", name=op.f("uq_case_forwards_case_id")),
    )
    for column in ("case_id", "unit_code", "hotline_id", "due_date", "status"):
        op.create_index(op.f(f"ix_case_forwards_{column}"), "case_forwards", [column], unique=False)
    op.create_table(
        "forward_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forward_id", sa.Integer(), nullable=False),
        sa.Column("at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status_from", sa.String(length=24), nullable=True),
        sa.Column("status_to", sa.String(length=24), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["forward_id"],
            ["case_forwards.id"],
            name=op.f("fk_forward_events_forward_id_case_forwards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forward_events")),
    )
    op.create_index(
        op.f("ix_forward_events_forward_id"), "forward_events", ["forward_id"], unique=False
    )
    op.create_table(
        "forward_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forward_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("uploaded_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("deleted_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["forward_id"],
            ["case_forwards.id"],
            name=op.f("fk_forward_attachments_forward_id_case_forwards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forward_attachments")),
        sa.UniqueConstraint("path", name=op.f("uq_forward_attachments_path")),
    )
    op.create_index(
        op.f("ix_forward_attachments_forward_id"),
        "forward_attachments",
        ["forward_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("forward_attachments")
    op.drop_table("forward_events")
    op.drop_table("case_forwards")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("answer_approved_at")
        batch.drop_column("answer_approved_by")
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("unit_code")
