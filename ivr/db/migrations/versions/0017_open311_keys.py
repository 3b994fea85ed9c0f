"""API keys of Open311 client apps, and what each Open311 request carried (issue 14)

Revision ID: 0017_open311_keys
Revises: 0016_intake
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.db.models import UtcDateTime

revision = "0017_open311_keys"
down_revision = "0016_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open311_api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("app_name", sa.String(length=128), nullable=False),
        sa.Column("contact", sa.String(length=255), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_api_keys_key_hash")),
    )
    op.create_index(
        op.f("ix_open311_api_keys_hotline_id"), "open311_api_keys", ["hotline_id"], unique=False
    )
    op.create_table(
        "open311_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.String(length=128), nullable=False),
        sa.Column("media_url", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["open311_api_keys.id"],
            name=op.f("fk_open311_requests_api_key_id_open311_api_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            ondelete="CASCADE",
            name=op.f("fk_open311_requests_case_id_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("case_id", name=op.f("uq_open311_requests_case_id")),
    )
    op.create_index(
        op.f("ix_open311_requests_api_key_id"), "open311_requests", ["api_key_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("open311_requests")
    op.drop_table("open311_api_keys")
