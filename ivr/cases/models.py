"""Tables of case records, recordings and transcription jobs (see issue 5).

Calls are linked by Asterisk's ``uniqueid`` (the caller's channel), not by a
foreign key to ``calls``: a case may come from another channel, and a recording
row may be written before the call record when the FastAGI server was down.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
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
    # Migration 0012: trigram indexes answer search by words (ILIKE '%…%') on
    # PostgreSQL; SQLite has no such index and scans.
    __table_args__ = tuple(
        Index(
            f"ix_cases_{column}_trgm",
            column,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql")
        for column in ("summary", "transcript")
    )

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
    # The citizen (issue 14, ivr.intake.models) whose contacts reach this case;
    # None for cases opened before, or from a call with a withheld number. Its
    # foreign key to ``citizens`` is declared by ivr.intake.models (migration
    # 0016 creates it): a process that never loads the intake (a FastAGI-only
    # server, a CLI command) must still be able to write cases.
    citizen_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Where the problem is, as a written channel gave it (free address, WGS 84
    # coordinates); empty/None for calls.
    address: Mapped[str] = mapped_column(Text, default="", server_default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # Legal hold (set by a supervisor): retention touches nothing linked to the
    # case (its calls, recordings, transcripts, numbers, text) while it is on.
    legal_hold: Mapped[bool] = mapped_column(default=False)
    legal_hold_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    legal_hold_by: Mapped[str | None] = mapped_column(String(64))
    legal_hold_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When retention erased the case's text (summary, transcript copy, name, answer).
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # the caller's 1–3 rating
    # The final answer composed from the units' answers: who approved it, when.
    answer_approved_by: Mapped[str | None] = mapped_column(String(128))
    answer_approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Publication on the hotline's public page (issue 13, migration 0013): only
    # with the citizen's consent (silence is not consent), recorded with who
    # recorded it, when and its evidence; a supervisor then publishes texts
    # without personal data under a random ``public_id`` (never the case code,
    # which is sequential). See :mod:`ivr.cases.publication`.
    publish_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    publish_consent_by: Mapped[str | None] = mapped_column(String(128))
    publish_consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    publish_consent_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    public_id: Mapped[str | None] = mapped_column(String(24), unique=True, index=True)
    public_title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    public_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    public_answer: Mapped[str] = mapped_column(Text, default="", server_default="")
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    published_by: Mapped[str | None] = mapped_column(String(128))

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


class CaseForward(Base):
    """A case forwarded to one responsible unit (``units:`` in the config):
    its own deadline, status and answer. One row per (case, unit); a unit that
    returned a case and gets it again reopens its row."""

    __tablename__ = "case_forwards"
    __table_args__ = (
        UniqueConstraint("case_id", "unit_code"),
        # The on-time report reads a period's forwards per hotline (migration 0014).
        Index("ix_case_forwards_hotline_sent", "hotline_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    unit_code: Mapped[str] = mapped_column(String(64), index=True)
    hotline_id: Mapped[str] = mapped_column(String(64), index=True)  # the case's
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    sent_by: Mapped[str] = mapped_column(String(128), default="")
    due_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)  # ForwardStatus
    # What the unit may read besides the summary.
    share_transcript: Mapped[bool] = mapped_column(default=False)
    share_recording: Mapped[bool] = mapped_column(default=False)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_by: Mapped[str | None] = mapped_column(String(128))
    extension_days_requested: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")  # the hotline's note to the unit
    # The due date a reminder / an escalation was sent for: each goes once per
    # deadline (an extension's new date earns a new reminder).
    reminded_for: Mapped[date | None] = mapped_column(Date)
    escalated_for: Mapped[date | None] = mapped_column(Date)

    events: Mapped[list[ForwardEvent]] = relationship(
        back_populates="forward", order_by="ForwardEvent.id", cascade="all, delete-orphan"
    )


class ForwardEvent(Base):
    """One change to a forward: who, when, what (status moves carry both ends)."""

    __tablename__ = "forward_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forward_id: Mapped[int] = mapped_column(
        ForeignKey("case_forwards.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))  # sent, status, reminded, escalated, …
    status_from: Mapped[str | None] = mapped_column(String(24))
    status_to: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")

    forward: Mapped[CaseForward] = relationship(back_populates="events")


class ForwardAttachment(Base):
    """A file a unit sent with its answer. Kept under ``paths.recordings``
    (``attachments/<case code>/``) like the recordings, and served by the
    console with the same checks (who may read the forward); ``deleted_at``
    when retention removed the file."""

    __tablename__ = "forward_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    forward_id: Mapped[int] = mapped_column(
        ForeignKey("case_forwards.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))  # as the unit named it (display only)
    content_type: Mapped[str] = mapped_column(String(127), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[str] = mapped_column(String(512), unique=True)  # relative to paths.recordings
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    uploaded_by: Mapped[str] = mapped_column(String(128), default="")
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
