"""Tables. Times are stored in UTC; schedules are evaluated in the hotline's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, MetaData, String, Text, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Call(Base):
    """One citizen's call into a hotline, from the first AGI request to hangup."""

    __tablename__ = "calls"
    # Migration 0012: a caller's latest calls (screen-pop) and a hotline's period
    # (statistics) without reading every row of the number or of the period.
    __table_args__ = (
        Index("ix_calls_caller_number_started_at", "caller_number", "started_at"),
        Index("ix_calls_hotline_id_started_at", "hotline_id", "started_at"),
        # Migration 0015: a number's previous call to a hotline (ivr/db/call_chain.py)
        # found by two equalities, whatever else the planner could walk.
        Index("ix_calls_caller_number_hotline_id", "caller_number", "hotline_id", "started_at"),
        # Migration 0015: distinct callers of a period counted from an index
        # (ivr/reports/call_rollup.py): a call is its caller's first of the
        # period when its caller's previous call is before the period.
        Index(
            "ix_calls_first_caller_hotline",
            "hotline_id",
            "started_at",
            "previous_call_at",
            postgresql_where=text("caller_number <> ''"),
            sqlite_where=text("caller_number <> ''"),
        ),
        Index(
            "ix_calls_first_caller_anywhere",
            "started_at",
            "previous_call_anywhere_at",
            postgresql_where=text("caller_number <> ''"),
            sqlite_where=text("caller_number <> ''"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    hotline_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128), default="")
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    caller_raw: Mapped[str] = mapped_column(String(64), default="")
    caller_withheld: Mapped[bool] = mapped_column(default=False)
    dialed_number: Mapped[str] = mapped_column(String(32), default="")
    keys_pressed: Mapped[str] = mapped_column(String(128), default="")
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    route_kind: Mapped[str | None] = mapped_column(String(32))
    route_target: Mapped[str | None] = mapped_column(String(255))
    last_step: Mapped[str] = mapped_column(String(64), default="entry")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_by: Mapped[str | None] = mapped_column(String(128))
    dial_status: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32), default="in_progress")
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1–3 from the survey
    notes: Mapped[str] = mapped_column(Text, default="")
    # The same number's previous call to this hotline / to any hotline (None:
    # none, or no number), kept by ivr/db/call_chain.py when a call is recorded
    # and when retention replaces numbers.
    previous_call_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    previous_call_anywhere_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


@event.listens_for(Call, "after_insert")
def _link_previous_call(mapper: Any, connection: Any, call: Call) -> None:
    """A call added through the ORM (tests, tools) joins its number's chain
    like one the call log writes (ivr/db/call_chain.py)."""
    from ivr.db.call_chain import link_previous_call

    link_previous_call(connection, call.id, call.hotline_id, call.caller_number, call.started_at)
