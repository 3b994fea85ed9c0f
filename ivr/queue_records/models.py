"""Tables of queue and agent records: who waited, who answered, pauses, the
queue log, roster overrides and call-back requests. Times are UTC.

They are domain data, not the AMI adapter's: the queue manager writes most of
them, the FastAGI server writes call-back requests, the console and the
statistics read them, retention anonymises them; all import them from here.

Rows are keyed by what Asterisk says (node, channel uniqueid, event time), so
two queue managers watching the same node write the same rows and the second
write is a no-op (see docs/queue_manager.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.models import Base, UtcDateTime, utc_now


class QueueCall(Base):
    """One caller's stay in the queues: counted once however many agents rang
    and however many queues it visited (``queues_visited``)."""

    __tablename__ = "queue_calls"
    __table_args__ = (
        UniqueConstraint("node", "uniqueid"),
        # Migration 0012: "did this agent answer that call" in one probe (access.py).
        Index("ix_queue_calls_uniqueid_agent_id", "uniqueid", "agent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), default="", index=True)
    caller_id: Mapped[str] = mapped_column(String(64), default="")
    first_queue: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64), index=True)  # where it was answered or left
    queues_visited: Mapped[int] = mapped_column(Integer, default=1)
    shift_id: Mapped[str | None] = mapped_column(String(64), index=True)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # waiting, answered, abandoned, left (timeout/exit), lost (ended while we were disconnected)
    outcome: Mapped[str] = mapped_column(String(16), default="waiting")
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    agent_interface: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    rings_unanswered: Mapped[int] = mapped_column(Integer, default=0)


class AgentSession(Base):
    """An agent's membership of a queue, from QueueAdd (or being found there) to removal."""

    __tablename__ = "agent_sessions"
    __table_args__ = (UniqueConstraint("node", "interface", "queue", "login_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    interface: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    login_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    logout_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AgentPause(Base):
    """A pause with its reason (``Auto-Pause`` when Asterisk paused a ring-no-answer)."""

    __tablename__ = "agent_pauses"
    __table_args__ = (UniqueConstraint("node", "interface", "queue", "paused_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    interface: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(128), default="")
    paused_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    unpaused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class QueueLogEntry(Base):
    """Asterisk's realtime ``queue_log`` layout and vocabulary (ENTERQUEUE, CONNECT,
    COMPLETECALLER, ABANDON, ADDMEMBER, PAUSE…), so QueueMetrics-style tools read it."""

    __tablename__ = "queue_log"
    __table_args__ = (
        UniqueConstraint("node", "time", "callid", "queuename", "agent", "event"),
        Index("ix_queue_log_queuename_time", "queuename", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    callid: Mapped[str] = mapped_column(String(64), default="NONE")
    queuename: Mapped[str] = mapped_column(String(64), default="NONE")
    agent: Mapped[str] = mapped_column(String(128), default="NONE")
    event: Mapped[str] = mapped_column(String(32))
    data1: Mapped[str] = mapped_column(String(128), default="")
    data2: Mapped[str] = mapped_column(String(128), default="")
    data3: Mapped[str] = mapped_column(String(128), default="")
    data4: Mapped[str] = mapped_column(String(128), default="")
    data5: Mapped[str] = mapped_column(String(128), default="")


class MemberOverride(Base):
    """A login or logout that departs from the roster until ``until`` (the next
    shift boundary). Every queue manager reads the same rows, so they agree on
    who should be in which queue."""

    __tablename__ = "queue_member_overrides"
    __table_args__ = (UniqueConstraint("agent_id", "queue"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    present: Mapped[bool] = mapped_column(Boolean)
    until: Mapped[datetime] = mapped_column(UtcDateTime())
    set_by: Mapped[str] = mapped_column(String(64), default="")
    set_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class CallbackRequest(Base):
    """A caller who left a queue to be called back, keeping their place.

    ``joined_at`` is when they joined the queue: the dispatcher never calls back
    ahead of a caller still waiting who joined earlier.
    """

    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    hotline_id: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str] = mapped_column(String(32))  # E.164
    call_uniqueid: Mapped[str] = mapped_column(String(64))
    case_code: Mapped[str | None] = mapped_column(String(16))
    joined_at: Mapped[float] = mapped_column(Float)  # epoch seconds, Asterisk's clock
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_result: Mapped[str] = mapped_column(String(64), default="")
