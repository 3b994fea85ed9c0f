"""web console users and audit log

Revision ID: 0005_web
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0005_web"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", ivr.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_users")),
        sa.UniqueConstraint("username", name=op.f("uq_web_users_username")),
    )
    op.create_table(
        "web_audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ivr.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_audit_log")),
    )
    op.create_index(op.f("ix_web_audit_log_at"), "web_audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_web_audit_log_actor"), "web_audit_log", ["actor"], unique=False)
    op.create_index(op.f("ix_web_audit_log_action"), "web_audit_log", ["action"], unique=False)


def downgrade() -> None:
    op.drop_table("web_audit_log")
    op.drop_table("web_users")
