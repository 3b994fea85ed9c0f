"""The daily roll-up of call and queue figures (migration 0015).

Days are UTC days, so one roll-up serves every time zone: a period of local
days is the UTC days it covers whole, read from here, and the hours at its two
edges, read from the calls. Only a day listed in :class:`RolledDay` is read
from here; its rows are written, and rewritten, in the same transaction as
that listing (ivr/reports/call_rollup.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.models import Base, UtcDateTime


class RolledDay(Base):
    """A UTC day whose figures are in the roll-up tables."""

    __tablename__ = "rolled_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The day's calls and queue records when rolled (what the job compares).
    calls: Mapped[int] = mapped_column(Integer)
    queue_calls: Mapped[int] = mapped_column(Integer)


class CallDayCount(Base):
    """Calls of one hotline on one UTC day, per ``dimension``: ``quarter``
    (``value`` the quarter hour of the day, 0–95), ``area`` ("" for none) or
    ``outcome``."""

    __tablename__ = "call_day_counts"
    # The page reads one dimension over a period: an index-only scan of these
    # entries, not a scan of five years of every dimension.
    __table_args__ = (
        Index("ix_call_day_counts_dimension_day", "dimension", "day", "hotline_id", "value",
              "calls"),
    )  # fmt: skip

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hotline_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class QueueDayCount(Base):
    """Queue records of one queue on one UTC day (by when they joined):
    answered, abandoned (or left, or lost), and the answered ones' waits as a
    sum of tenths of a second and a count, so an average over days is exact."""

    __tablename__ = "queue_day_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    answered: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)
    wait_tenths: Mapped[int] = mapped_column(Integer)
    waits: Mapped[int] = mapped_column(Integer)
