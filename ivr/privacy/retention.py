"""The retention job: personal data older than its limit is deleted or
anonymised, per kind (``retention:`` in the config, :mod:`ivr.config.retention`).

- audio: the file is deleted, the ``recordings`` row stays with ``deleted_at``;
- transcripts: ``text`` and ``dialogue`` are blanked, the row (durations, model)
  stays for statistics;
- caller numbers in ``calls``, ``queue_calls``, ``queue_log`` (ENTERQUEUE),
  finished ``callback_requests``, sent ``sms_outbox`` rows and closed cases are
  replaced by a keyed pseudonym (or erased): rows stay, so counts, waits,
  outcomes and distinct callers are unchanged;
- case text of closed cases (summary, transcript copy, caller's name, answer,
  rejection reason, notes in the history and in its SMS rows) is blanked, and
  with it what the forwarding and the public page hold of the case: the
  units' answers, the hotline's notes and extension reasons
  (``case_forwards``), the notes of the forwards' history
  (``forward_events``), the consent's note and the public texts (a published
  case leaves the public page);
- files the units sent with their answers (``forward_attachments``, kept
  beside the recordings) are deleted after ``audio_days``, counted from the
  upload and from the case's closing (a case still being answered keeps
  them); the row stays with ``deleted_at``.

Nothing linked to a case under legal hold is touched: the case, its call and
every call sharing that call's ``linkedid``, their recordings, transcripts,
queue rows, call backs and SMS.

No vosk model, no transcription worker, no web request needed: ``hotline
serve`` runs it on a schedule (:mod:`ivr.privacy.schedule`) and ``hotline
retention run`` by hand or from cron. Work is done in batches of short
transactions, so the call log writer is never held up for long (SQLite has one
writer); the legal holds are re-read in every batch, so a hold set while the
job runs protects the rest of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, true, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from ivr.cases.models import (
    CLOSED,
    REJECTED,
    Case,
    CaseEvent,
    CaseForward,
    ForwardAttachment,
    ForwardEvent,
    Recording,
    SmsMessage,
    Transcript,
    TranscriptionJob,
)
from ivr.config.retention import effective_audio_days
from ivr.config.schema import HotlineConfig
from ivr.db.call_chain import relink_numbers
from ivr.db.models import Call, utc_now
from ivr.intake.attachments import ATTACHMENTS_FOLDER
from ivr.intake.models import CaseAttachment, CaseMessage, Citizen, CitizenContact
from ivr.phone import normalise_caller
from ivr.privacy.pseudonym import PREFIX, load_key, pseudonym
from ivr.queue_records.models import CallbackRequest, QueueCall, QueueLogEntry

logger = logging.getLogger(__name__)

BATCH = 500
ACTOR = "retention"
# Count keys, in the order a report prints them.
KINDS = (
    "audio",
    "attachments",
    "transcripts",
    "numbers.calls",
    "numbers.queue_calls",
    "numbers.queue_log",
    "numbers.callbacks",
    "numbers.sms",
    "numbers.cases",
    "case_text",
)
_FINISHED_CASE = (CLOSED, REJECTED)
_PENDING_JOB = ("queued", "running")
_FINISHED_CALLBACK = ("done", "failed")
# Where an erased attachment's row points (unique, like every path; no file).
ATTACHMENTS_ERASED = "attachments/erased"


@dataclass
class RetentionReport:
    """What one run did (or, dry, would do): rows per kind."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    # Old audio kept because its call's transcript is still to come.
    audio_awaiting_transcript: int = 0
    held_cases: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = [f"{kind}={count}" for kind, count in self.counts.items()]
        parts.append(f"audio_awaiting_transcript={self.audio_awaiting_transcript}")
        parts.append(f"held_cases={self.held_cases}")
        if self.errors:
            parts.append(f"errors={len(self.errors)}")
        return " ".join(parts)


@dataclass(frozen=True)
class HeldLinks:
    """Everything a legal hold protects, as keys of the tables it spans."""

    case_ids: frozenset[int]
    codes: frozenset[str]
    uniqueids: frozenset[str]
    linkedids: frozenset[str]


def held_links(session: Session) -> HeldLinks:
    """The held cases, their calls (by uniqueid, then every channel sharing a
    linkedid with one of them) and what hangs off those calls."""
    cases = session.execute(
        select(Case.id, Case.code, Case.call_uniqueid).where(Case.legal_hold)
    ).all()
    if not cases:
        return HeldLinks(frozenset(), frozenset(), frozenset(), frozenset())
    ids = {c.id for c in cases}
    codes = {c.code for c in cases}
    uniqueids = {c.call_uniqueid for c in cases if c.call_uniqueid}
    uniqueids |= set(
        session.scalars(select(Recording.call_uniqueid).where(Recording.case_id.in_(ids)))
    )
    uniqueids |= set(
        session.scalars(select(Transcript.call_uniqueid).where(Transcript.case_id.in_(ids)))
    )
    uniqueids |= set(
        session.scalars(
            select(CallbackRequest.call_uniqueid).where(CallbackRequest.case_code.in_(codes))
        )
    )
    # A transfer or a call back keeps Asterisk's linkedid: those legs are the
    # same conversation and are held with it.
    linkedids = set(uniqueids)
    linkedids |= set(session.scalars(select(Call.linkedid).where(Call.uniqueid.in_(uniqueids))))
    linkedids |= set(
        session.scalars(select(QueueCall.linkedid).where(QueueCall.uniqueid.in_(uniqueids)))
    )
    linkedids.discard("")
    uniqueids |= set(session.scalars(select(Call.uniqueid).where(Call.linkedid.in_(linkedids))))
    uniqueids |= set(
        session.scalars(select(QueueCall.uniqueid).where(QueueCall.linkedid.in_(linkedids)))
    )
    return HeldLinks(frozenset(ids), frozenset(codes), frozenset(uniqueids), frozenset(linkedids))


def _not_in(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column NOT IN values`` that lets NULL through (a row linked to nothing)."""
    values = list(values)
    if not values:
        return true()
    return or_(column.is_(None), column.not_in(values))


def _needs_anonymising(column: Any) -> ColumnElement[bool]:
    return (column.is_not(None)) & (column != "") & ~column.startswith(PREFIX)


class RetentionJob:
    """One run over every kind; :meth:`run` returns the counts (the caller audits)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self._key: bytes | None = None

    # --- the run ------------------------------------------------------------------

    def run(self, dry_run: bool = False) -> RetentionReport:
        report = RetentionReport(dry_run=dry_run)
        now = self.clock()
        r = self.config.retention
        with self.sessions() as session:
            report.held_cases = len(held_links(session).case_ids)
        audio = self._cutoff(now, effective_audio_days(self.config))
        if audio is not None:
            self._audio(report, audio, now, dry_run)
            self._attachments(report, audio, now, dry_run)
        transcripts = self._cutoff(now, r.transcript_days)
        if transcripts is not None:
            self._transcripts(report, transcripts, now, dry_run)
        numbers = self._cutoff(now, r.caller_number_days)
        if numbers is not None:
            self._numbers(report, numbers, dry_run)
        case_text = self._cutoff(now, r.case_text_days)
        if case_text is not None:
            self._case_text(report, case_text, now, dry_run)
        log = logger.warning if report.errors else logger.info
        log("retention%s: %s", " (dry run)" if dry_run else "", report.summary())
        for error in report.errors:
            logger.warning("retention: %s", error)
        return report

    @staticmethod
    def _cutoff(now: datetime, days: int | None) -> datetime | None:
        return now - timedelta(days=days) if days else None

    def _batches(
        self,
        model: Any,
        where: Callable[[HeldLinks], Iterable[ColumnElement[bool]]],
        apply: Callable[[Session, Any], bool],
        dry_run: bool,
    ) -> int:
        """Rows of ``model`` matching ``where`` in id order, BATCH per
        transaction; ``apply`` changes one row and says whether it did. A row
        that could not be changed is passed over (the id cursor moves on), so
        one bad file never stops the run."""
        done, last_id = 0, 0
        while True:
            with self.sessions.begin() as session:
                held = held_links(session)
                conditions = list(where(held))
                if dry_run:
                    return int(
                        session.scalar(select(func.count()).select_from(model).where(*conditions))
                        or 0
                    )
                rows = session.scalars(
                    select(model).where(model.id > last_id, *conditions).order_by(model.id)
                    .limit(BATCH)
                ).all()  # fmt: skip
                for row in rows:
                    done += bool(apply(session, row))
                if rows:
                    last_id = rows[-1].id
            if len(rows) < BATCH:
                return done

    # --- audio --------------------------------------------------------------------

    def _audio(self, report: RetentionReport, cutoff: datetime, now: datetime, dry: bool) -> None:
        root = self.config.resolve_path(self.config.paths.recordings).resolve()
        transcribed = exists().where(Transcript.call_uniqueid == Recording.call_uniqueid)
        pending = exists().where(
            TranscriptionJob.call_uniqueid == Recording.call_uniqueid,
            TranscriptionJob.status.in_(_PENDING_JOB),
        )
        # Audio waits for its transcript only while a worker can make one: with
        # transcription off or no model configured it would wait forever.
        t = self.config.transcription
        waits = t.enabled and (t.model_path is not None or bool(t.model_package))

        def old(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                Recording.created_at < cutoff,
                Recording.deleted_at.is_(None),
                Recording.call_uniqueid.not_in(held.uniqueids),
                _not_in(Recording.case_id, held.case_ids),
            ]

        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [*old(held), or_(transcribed, ~pending)] if waits else old(held)

        def delete(session: Session, recording: Recording) -> bool:
            path = Path(recording.path).resolve()
            if not path.is_relative_to(root):
                report.errors.append(
                    f"recording {recording.id}: {recording.path} is outside {root}; not deleted"
                )
                return False
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                report.errors.append(f"recording {recording.id}: {exc}")
                return False
            recording.deleted_at = now
            return True

        report.counts["audio"] = self._batches(Recording, due, delete, dry)
        if waits:
            with self.sessions() as session:
                held = held_links(session)
                report.audio_awaiting_transcript = int(
                    session.scalar(
                        select(func.count())
                        .select_from(Recording)
                        .where(*old(held), ~transcribed, pending)
                    )
                    or 0
                )
            if report.audio_awaiting_transcript:
                logger.warning(
                    "retention: %d recordings past their limit wait for transcription "
                    "(is a transcription worker running?)",
                    report.audio_awaiting_transcript,
                )

    # --- the units' attachments ----------------------------------------------------

    def _attachments(
        self, report: RetentionReport, cutoff: datetime, now: datetime, dry: bool
    ) -> None:
        root = self.config.resolve_path(self.config.paths.recordings).resolve()
        # The hotline composes its answer from them: a case still open keeps them.
        finished = (
            select(CaseForward.id)
            .join(Case, Case.id == CaseForward.case_id)
            .where(Case.status.in_(_FINISHED_CASE), Case.closed_at < cutoff, ~Case.legal_hold)
        )

        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            held_forwards = select(CaseForward.id).where(CaseForward.case_id.in_(held.case_ids))
            return [
                ForwardAttachment.uploaded_at < cutoff,
                ForwardAttachment.deleted_at.is_(None),
                ForwardAttachment.forward_id.in_(finished),
                ForwardAttachment.forward_id.not_in(held_forwards),
            ]

        def delete(session: Session, attachment: ForwardAttachment) -> bool:
            path = (root / attachment.path).resolve()
            if not path.is_relative_to(root):
                outside = f"{attachment.path} is outside {root}"
                report.errors.append(f"attachment {attachment.id}: {outside}; not deleted")
                return False
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                report.errors.append(f"attachment {attachment.id}: {exc}")
                return False
            attachment.deleted_at = now
            # The name a unit gave may name the citizen ("don-nguyen-van-a.pdf");
            # the path carries it too. Size, type and hash stay for the record.
            attachment.filename = ""
            attachment.path = f"{ATTACHMENTS_ERASED}/{attachment.id}"
            return True

        report.counts["attachments"] = self._batches(ForwardAttachment, due, delete, dry)

    # --- transcripts --------------------------------------------------------------

    def _transcripts(
        self, report: RetentionReport, cutoff: datetime, now: datetime, dry: bool
    ) -> None:
        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                Transcript.created_at < cutoff,
                Transcript.erased_at.is_(None),
                Transcript.call_uniqueid.not_in(held.uniqueids),
                _not_in(Transcript.case_id, held.case_ids),
            ]

        def blank(session: Session, transcript: Transcript) -> bool:
            transcript.text = ""
            transcript.dialogue = "{}"
            transcript.erased_at = now
            return True

        report.counts["transcripts"] = self._batches(Transcript, due, blank, dry)

    # --- numbers ------------------------------------------------------------------

    def _anonymous(self, value: str | None, nullable: bool) -> str | None:
        """The value that replaces a number: its pseudonym, or nothing."""
        empty = None if nullable else ""
        if not value or value.startswith(PREFIX):
            return value
        if normalise_caller(value).withheld or self.config.retention.caller_numbers == "erase":
            return empty
        if self._key is None:
            r = self.config.retention
            self._key = load_key(
                r.pseudonym_key_env, self.config.resolve_path(r.pseudonym_key_file)
            )
        return pseudonym(self._key, value)

    def _replace(
        self, *columns: tuple[InstrumentedAttribute[Any], bool]
    ) -> Callable[[Session, Any], bool]:
        def apply(session: Session, row: Any) -> bool:
            for column, nullable in columns:
                name = column.key
                setattr(row, name, self._anonymous(getattr(row, name), nullable))
            return True

        return apply

    def _numbers(self, report: RetentionReport, cutoff: datetime, dry: bool) -> None:
        counts = report.counts

        def calls(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                Call.started_at < cutoff,
                Call.uniqueid.not_in(held.uniqueids),
                Call.linkedid.not_in(held.linkedids),
                or_(_needs_anonymising(Call.caller_number), Call.caller_raw != ""),
            ]

        # Numbers replaced: their calls' previous-call chains are recomputed
        # after (distinct callers are counted from them, ivr/reports/call_rollup.py).
        replaced: set[str] = set()

        def blank_raw(session: Session, call: Call) -> bool:
            number = call.caller_number
            call.caller_number = self._anonymous(number, nullable=True)
            call.caller_raw = ""  # the network's raw caller ID: no statistic needs it
            if call.caller_number != number:
                replaced.update(n for n in (number, call.caller_number) if n)
                if call.caller_number is None:  # erased: nothing links it to other calls
                    call.previous_call_at = call.previous_call_anywhere_at = None
            return True

        counts["numbers.calls"] = self._batches(Call, calls, blank_raw, dry)
        if replaced:
            with self.sessions.begin() as session:
                relink_numbers(session.connection(), replaced)

        def queue_calls(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                QueueCall.joined_at < cutoff,
                QueueCall.uniqueid.not_in(held.uniqueids),
                QueueCall.linkedid.not_in(held.linkedids),
                _needs_anonymising(QueueCall.caller_id),
            ]

        counts["numbers.queue_calls"] = self._batches(
            QueueCall, queue_calls, self._replace((QueueCall.caller_id, False)), dry
        )

        def queue_log(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                QueueLogEntry.time < cutoff,
                QueueLogEntry.event == "ENTERQUEUE",  # data2 is the caller ID
                QueueLogEntry.callid.not_in(held.uniqueids),
                _needs_anonymising(QueueLogEntry.data2),
            ]

        counts["numbers.queue_log"] = self._batches(
            QueueLogEntry, queue_log, self._replace((QueueLogEntry.data2, False)), dry
        )

        def callbacks(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                CallbackRequest.requested_at < cutoff,
                CallbackRequest.status.in_(_FINISHED_CALLBACK),  # a pending one still dials
                CallbackRequest.call_uniqueid.not_in(held.uniqueids),
                _not_in(CallbackRequest.case_code, held.codes),
                _needs_anonymising(CallbackRequest.caller_number),
            ]

        counts["numbers.callbacks"] = self._batches(
            CallbackRequest, callbacks, self._replace((CallbackRequest.caller_number, False)), dry
        )

        # An open case still needs the number to answer the citizen; a closed
        # one counts from its closing. A case's texts follow their case.
        finished_cases = select(Case.id).where(
            Case.status.in_(_FINISHED_CASE), Case.closed_at < cutoff, ~Case.legal_hold
        )

        def sms(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                SmsMessage.created_at < cutoff,
                SmsMessage.status != "pending",
                or_(SmsMessage.case_id.is_(None), SmsMessage.case_id.in_(finished_cases)),
                _needs_anonymising(SmsMessage.to_number),
            ]

        counts["numbers.sms"] = self._batches(
            SmsMessage, sms, self._replace((SmsMessage.to_number, False)), dry
        )

        def cases(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                Case.status.in_(_FINISHED_CASE),
                Case.closed_at < cutoff,
                ~Case.legal_hold,
                _needs_anonymising(Case.caller_number),
            ]

        counts["numbers.cases"] = self._batches(
            Case, cases, self._replace((Case.caller_number, True)), dry
        )
        self._citizen_contacts(report, cutoff, dry)

    def _citizen_contacts(self, report: RetentionReport, cutoff: datetime, dry: bool) -> None:
        """The written channels' citizens (issue 14): once every case of a
        citizen is finished before the cutoff and none is held, their numbers,
        addresses and Zalo ids are deleted and the name blanked (counted with
        the cases' numbers). Writing again makes a new citizen."""
        keeps = exists().where(
            Case.citizen_id == Citizen.id,
            or_(
                Case.status.not_in(_FINISHED_CASE),
                Case.closed_at.is_(None),
                Case.closed_at >= cutoff,
                Case.legal_hold,
            ),
        )
        contacts = exists().where(CitizenContact.citizen_id == Citizen.id)

        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [~keeps, or_(contacts, Citizen.name != "")]

        def forget(session: Session, citizen: Citizen) -> bool:
            session.execute(delete(CitizenContact).where(CitizenContact.citizen_id == citizen.id))
            citizen.name = ""
            return True

        report.counts["numbers.cases"] += self._batches(Citizen, due, forget, dry)

    # --- case text ----------------------------------------------------------------

    def _case_text(
        self, report: RetentionReport, cutoff: datetime, now: datetime, dry: bool
    ) -> None:
        days = self.config.retention.case_text_days

        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                Case.status.in_(_FINISHED_CASE),
                Case.closed_at < cutoff,
                ~Case.legal_hold,
                Case.erased_at.is_(None),
            ]

        def erase(session: Session, case: Case) -> bool:
            case.summary = case.transcript = case.caller_name = ""
            case.answer = case.rejection_reason = ""
            case.erased_at = now
            # Who did what and when stays (the case's audit trail); the words go.
            session.execute(update(CaseEvent).where(CaseEvent.case_id == case.id).values(note=""))
            session.execute(update(SmsMessage).where(SmsMessage.case_id == case.id).values(text=""))
            # The forwarding's words about the case go with it (statuses, dates
            # and who answered stay for the on-time figures).
            forwards = select(CaseForward.id).where(CaseForward.case_id == case.id)
            session.execute(
                update(CaseForward)
                .where(CaseForward.case_id == case.id)
                .values(answer="", note="", extension_reason="")
            )
            session.execute(
                update(ForwardEvent).where(ForwardEvent.forward_id.in_(forwards)).values(note="")
            )
            # The written channels' thread (issue 14): what the citizen wrote and
            # what we answered, and where they wrote from; directions, channels,
            # dates and delivery states stay for the statistics.
            session.execute(
                update(CaseMessage)
                .where(CaseMessage.case_id == case.id)
                .values(text="", subject="", sender=None, to=None, external_id=None, error="",
                        erased_at=now)
            )  # fmt: skip
            case.address, case.latitude, case.longitude = "", None, None
            # The public texts too: a published case leaves the public page.
            case.public_title = case.public_text = case.public_answer = ""
            case.publish_consent_note = ""
            case.published_at = None
            session.add(
                CaseEvent(
                    case_id=case.id, at=now, actor=ACTOR, action="erased",
                    note=f"case text erased {days} days after closing (retention.case_text_days)",
                )
            )  # fmt: skip
            return True

        report.counts["case_text"] = self._batches(Case, due, erase, dry)
        self._case_attachments(report, cutoff, now, dry)

    def _case_attachments(
        self, report: RetentionReport, cutoff: datetime, now: datetime, dry: bool
    ) -> None:
        """The citizens' photos, videos and PDFs (issue 14) go with the case's
        text: files removed, names blanked; kind, size and hash stay. Its own
        pass, so a file that could not be removed is tried again next run."""
        recordings = self.config.resolve_path(self.config.paths.recordings)
        root = (recordings / ATTACHMENTS_FOLDER).resolve()
        finished = select(Case.id).where(
            Case.status.in_(_FINISHED_CASE), Case.closed_at < cutoff, ~Case.legal_hold
        )

        def due(held: HeldLinks) -> list[ColumnElement[bool]]:
            return [
                CaseAttachment.erased_at.is_(None),
                CaseAttachment.case_id.in_(finished),
                _not_in(CaseAttachment.case_id, held.case_ids),
            ]

        def erase(session: Session, attachment: CaseAttachment) -> bool:
            for relative in (attachment.path, attachment.thumbnail_path):
                if not relative:
                    continue
                path = (root / relative).resolve()
                if not path.is_relative_to(root):
                    outside = f"{relative} is outside {root}"
                    report.errors.append(f"case attachment {attachment.id}: {outside}")
                    return False
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    report.errors.append(f"case attachment {attachment.id}: {exc}")
                    return False
            attachment.erased_at = now
            attachment.filename = ""
            attachment.path = attachment.thumbnail_path = None
            return True

        # Counted with the forwards' attachments: the same kind of data.
        report.counts["attachments"] += self._batches(CaseAttachment, due, erase, dry)


def run_retention(
    sessions: sessionmaker[Session],
    config: HotlineConfig,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> RetentionReport:
    """Apply every retention limit once; returns the counts per kind."""
    return RetentionJob(sessions, config, clock).run(dry_run=dry_run)
