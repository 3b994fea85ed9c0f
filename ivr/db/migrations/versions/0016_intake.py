"""citizens, their contacts, case messages and attachments, intake keys (issue 14)

Revision ID: 0016_intake
Revises: 0015_statistics_rollup
Create Date: 2026-11-30

Every written channel (web form, email, SMS, Zalo, Open311) lands in the case
store through one intake: a citizen per hotline with linked contacts, a thread
of messages both ways, attachments, and idempotency keys. ``cases.citizen_id``
links a case to its citizen.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import ivr.db.models

revision = "0016_intake"
down_revision = "0015_statistics_rollup"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, ivr.db.models.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizens")),
    )
    op.create_index(op.f("ix_citizens_hotline_id"), "citizens", ["hotline_id"], unique=False)
    op.create_table(
        "citizen_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        _time("created_at"),
        _time("last_seen_at"),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"],
            name=op.f("fk_citizen_contacts_citizen_id_citizens"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_contacts")),
        sa.UniqueConstraint(
            "hotline_id", "kind", "value", name=op.f("uq_citizen_contacts_hotline_id")
        ),
    )  # fmt: skip
    op.create_index(
        op.f("ix_citizen_contacts_citizen_id"), "citizen_contacts", ["citizen_id"], unique=False
    )
    op.create_table(
        "case_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        _time("at"),
        sa.Column("sender", sa.String(length=255), nullable=True),
        sa.Column("to", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        _time("next_attempt_at", nullable=True),
        _time("sent_at", nullable=True),
        _time("erased_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"],
            name=op.f("fk_case_messages_case_id_cases"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_messages")),
    )  # fmt: skip
    op.create_index(op.f("ix_case_messages_case_id"), "case_messages", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_case_messages_external_id"), "case_messages", ["external_id"], unique=False
    )
    op.create_index(op.f("ix_case_messages_at"), "case_messages", ["at"], unique=False)
    op.create_index(
        "ix_case_messages_status_next_attempt_at",
        "case_messages",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "case_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=True),
        sa.Column("thumbnail_path", sa.String(length=512), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        _time("created_at"),
        _time("erased_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"],
            name=op.f("fk_case_attachments_case_id_cases"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["case_messages.id"],
            name=op.f("fk_case_attachments_message_id_case_messages"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachments")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_case_attachments_case_id"), "case_attachments", ["case_id"], unique=False
    )
    op.create_index(
        op.f("ix_case_attachments_message_id"), "case_attachments", ["message_id"], unique=False
    )
    op.create_index(
        op.f("ix_case_attachments_created_at"), "case_attachments", ["created_at"], unique=False
    )
    op.create_table(
        "intake_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hotline_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"],
            name=op.f("fk_intake_keys_case_id_cases"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["case_messages.id"],
            name=op.f("fk_intake_keys_message_id_case_messages"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_keys")),
        sa.UniqueConstraint(
            "hotline_id", "channel", "key", name=op.f("uq_intake_keys_hotline_id")
        ),
    )  # fmt: skip
    op.create_index(op.f("ix_intake_keys_case_id"), "intake_keys", ["case_id"], unique=False)
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("citizen_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("address", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch.create_index(batch.f("ix_cases_citizen_id"), ["citizen_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_cases_citizen_id_citizens"), "citizens", ["citizen_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint(batch.f("fk_cases_citizen_id_citizens"), type_="foreignkey")
        batch.drop_index(batch.f("ix_cases_citizen_id"))
        for column in ("longitude", "latitude", "address", "citizen_id"):
            batch.drop_column(column)
    op.drop_table("intake_keys")
    op.drop_table("case_attachments")
    op.drop_table("case_messages")
    op.drop_table("citizen_contacts")
    op.drop_table("citizens")
