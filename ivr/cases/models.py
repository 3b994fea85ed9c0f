"""Tables of case records, recordings and transcription jobs (see issue 5).

Calls are linked by Asterisk's ``uniqueid`` (the caller's channel), not by a
foreign key to ``calls``: a case may come from another channel, and a recording
row may be written before the call record when the FastAGI server was down.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.contracts.statuses import OPEN_CASE_STATUSES, CaseStatus
from ivr.db.models import Base, UtcDateTime, utc_now

# Statuses are defined once, in ivr.contracts.statuses; these names stay for the
# modules that import them from here (the service, the console, retention).
RECEIVED = CaseStatus.RECEIVED
CLASSIFIED = CaseStatus.CLASSIFIED
ASSIGNED = CaseStatus.ASSIGNED
IN_PROGRESS = CaseStatus.IN_PROGRESS
ANSWERED = CaseStatus.ANSWERED
CLOSED = CaseStatus.CLOSED
REJECTED = CaseStatus.REJECTED
STATUSES = tuple(CaseStatus)  # in the order a case normally moves
OPEN_STATUSES = OPEN_CASE_STATUSES


class Case(Base):
    """A citizen's feedback or petition, from receipt to the answer given."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # digits only
    channel: Mapped[str] = mapped_column(String(32))  # phone, voicemail, sms, web, zalo, …
    hotline_id: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16), default="normal")
    # Decree 20: the official records the content in writing; a recording alone
    # is not a record. ``summary`` is that written content.
    summary: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED, index=True)
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    responsible_unit: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    due_date: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    call_uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    # Legal hold (set by a supervisor): retention touches nothing linked to the
    # case (its calls, recordings, transcripts, numbers, text) while it is on.
    legal_hold: Mapped[bool] = mapped_column(default=False)
    legal_hold_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    legal_hold_by: Mapped[str | None] = mapped_column(String(64))
    legal_hold_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When retention erased the case's text (summary, transcript copy, name, answer).
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # the caller's 1–3 rating

    history: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )


class CaseEvent(Base):
    """One change to a case: who, when, what (status moves carry both ends)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))  # opened, status, transcript, sms, …
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case] = relationship(back_populates="history")


class Recording(Base):
    """One audio file: a leg of a bridged call, its mix, or a voicemail."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # caller, agent, mix, voicemail
    path: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class TranscriptionJob(Base):
    """Transcribe the recordings of one call. Claimed with a lease: a worker
    that dies leaves the lease to expire and another worker retries."""

    __tablename__ = "transcription_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    worker: Mapped[str | None] = mapped_column(String(128))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Transcript(Base):
    """The dialogue of a call: one per call (unique), whatever the retries."""

    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("transcription_jobs.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")  # "Người gọi: …" lines
    # JSON: {"legs": {"caller": [{"word", "start", "end", "conf"}…], …},
    #        "turns": [{"speaker", "start", "end", "text"}…]}
    dialogue: Mapped[str] = mapped_column(Text, default="{}")
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    skipped_share: Mapped[float] = mapped_column(Float, default=0.0)
    model: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # When retention blanked ``text`` and ``dialogue`` (the row stays for statistics).
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SmsMessage(Base):
    """A text to a citizen, written in the same transaction as the change it
    reports; the gateway's outcome is recorded on the row."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    to_number: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))  # case_opened, case_answered
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    gateway: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
