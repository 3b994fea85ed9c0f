"""Calls the FastAGI server never saw, read back into the call log.

When the server is down, Asterisk routes calls with the classic script
``agi_scripts/hotline_fallback.py``. That script has no database: it appends a
JSON line per call to the *call spool* (``fallback-calls.jsonl`` beside the
routing table, see :func:`ivr.routing_table.call_spool_path`), a "start" line
once the call is routed and an "end" line from the hangup handler. The hangup
handler also writes an "end" line for a call the server did see when the
server cannot take its hangup (it went down mid-call).

``hotline serve`` reads the spool when it starts and every few seconds after
(:class:`FallbackCallSpool`), through the call log's one writer:

- a "start" line inserts the call unless a record with that uniqueid exists
  (``ON CONFLICT DO NOTHING``): reading a line twice, or a call the server also
  recorded, never makes a second record. Its ``last_step`` is
  :data:`FALLBACK_STEP`, so statistics can tell the calls served by fallback;
- an "end" line closes the record only while it is still open (in progress,
  or closed as interrupted by the stale sweep, which only guessed the end): a
  record the server closed itself keeps what the server wrote.

Why a spool file and not Asterisk's CDR: the script already runs for exactly
these calls and knows the route it chose (the ward, the keys); appending a line
needs no Asterisk module, no second format to map onto our records, and works
whichever user Asterisk runs as. The file only grows during outages; it may be
emptied or rotated once read (a shorter file, or a new one, is read from its
start).

A line that is not valid is reported with ``file:line`` and skipped; the
others are still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update

from ivr.call_log import CallEnd, CallLog, closing_values, insert_from_end
from ivr.contracts.statuses import CallOutcome
from ivr.db.call_chain import link_previous_call
from ivr.db.engine import insert_ignoring_duplicates
from ivr.db.models import Call
from ivr.phone import normalise_caller
from ivr.reports.call_rollup import forget_day_of

logger = logging.getLogger(__name__)

SPOOL_VERSION = 1  # the "v" of every line; agi_scripts/hotline_fallback.py writes it
FALLBACK_STEP = "fallback-script"  # calls.last_step of a call served by the fallback script
INGEST_SECONDS = 10.0
# Records an "end" line may still close: the server never closed them.
_OPEN = (CallOutcome.IN_PROGRESS, CallOutcome.INTERRUPTED)
_CALLS = cast(Table, Call.__table__)  # a mapped class's table, typed as one


@dataclass(frozen=True)
class SpooledStart:
    """A call the fallback script routed (or that hung up in its menu)."""

    uniqueid: str
    hotline_id: str
    dialed_number: str
    caller_raw: str
    channel: str
    started_at: datetime
    route: str
    area_code: str
    keys: str


@dataclass
class SpoolRead:
    """What one pass over the spool found."""

    entries: list[SpooledStart | CallEnd] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong"


class SpoolLineError(ValueError):
    """A line that cannot be read; the message says which field."""


def _text(record: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = record.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SpoolLineError(f"{name}: expected text, got {type(value).__name__}")
    if required and not value:
        raise SpoolLineError(f"{name}: missing")
    return value


def _moment(record: dict[str, Any], name: str) -> datetime:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpoolLineError(f"{name}: expected epoch seconds, got {value!r}")
    return datetime.fromtimestamp(value, UTC)


def _optional_epoch(text: str) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def parse_line(line: str) -> SpooledStart | CallEnd:
    """One spool line; raises :class:`SpoolLineError` saying what is wrong."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SpoolLineError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise SpoolLineError("not a JSON object")
    if record.get("v") != SPOOL_VERSION:
        raise SpoolLineError(f"v: expected {SPOOL_VERSION}, got {record.get('v')!r}")
    event = record.get("event")
    uniqueid = _text(record, "uniqueid", required=True)
    if event == "start":
        return SpooledStart(
            uniqueid=uniqueid,
            hotline_id=_text(record, "hotline", required=True),
            dialed_number=_text(record, "dialed"),
            caller_raw=_text(record, "caller"),
            channel=_text(record, "channel"),
            started_at=_moment(record, "at"),
            route=_text(record, "route"),
            area_code=_text(record, "area"),
            keys=_text(record, "keys"),
        )
    if event == "end":
        dial_status = _text(record, "dial_status")
        # As the server does: the label of the target dialled last counts only
        # when that target answered.
        answered = _text(record, "answered") if dial_status == "ANSWER" else ""
        return CallEnd(
            uniqueid=uniqueid,
            route=_text(record, "route"),
            dial_status=dial_status,
            answered_epoch=_optional_epoch(_text(record, "answer_epoch")),
            answered_by=answered,
            queue_member=_text(record, "queue_member"),
            ended_at=_moment(record, "at"),
            # Lines written since the soak's lost voicemail: whose call it was
            # (a record is inserted if its start never reached us) and where
            # its recordings are (a voicemail becomes its case here).
            hotline_id=_text(record, "hotline"),
            caller_raw=_text(record, "caller"),
            channel=_text(record, "channel"),
            rec_base=_text(record, "rec_base"),
        )
    raise SpoolLineError(f"event: expected 'start' or 'end', got {event!r}")


def parse_spool(text: str, path: Path, first_line: int = 1) -> SpoolRead:
    """Every complete line of ``text`` (a chunk of the spool whose first line
    is line ``first_line`` of ``path``)."""
    read = SpoolRead()
    for number, line in enumerate(text.splitlines(), start=first_line):
        if not line.strip():
            continue
        try:
            read.entries.append(parse_line(line))
        except SpoolLineError as exc:
            read.problems.append(f"{path}:{number}: {exc}")
    return read


def insert_spooled_start(connection: Connection, start: SpooledStart) -> bool:
    """Insert the call unless a record with its uniqueid exists; True if inserted."""
    caller = normalise_caller(start.caller_raw)
    values = {
        "uniqueid": start.uniqueid,
        "linkedid": start.uniqueid,
        "hotline_id": start.hotline_id[:64],
        "channel": start.channel[:128],
        "caller_number": caller.e164,
        "caller_raw": caller.raw[:64],
        "caller_withheld": caller.withheld,
        "dialed_number": start.dialed_number[:32],
        "keys_pressed": start.keys[:128],
        "area_code": start.area_code[:64] or None,
        "route_kind": start.route[:32] or None,
        "route_target": start.area_code[:255] or None,
        "last_step": FALLBACK_STEP,
        "started_at": start.started_at,
        "outcome": CallOutcome.IN_PROGRESS,
        "notes": "",
    }
    # RETURNING tells an insert from a conflict on both databases: PostgreSQL's
    # driver reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING here.
    statement = insert_ignoring_duplicates(_CALLS, connection.dialect.name).returning(_CALLS.c.id)
    inserted = connection.execute(statement, values).scalar()
    if inserted is None:
        return False
    # A late record: the number's chain and its day's roll-up change.
    link_previous_call(connection, inserted, start.hotline_id[:64], caller.e164, start.started_at)
    forget_day_of(connection, start.started_at)
    return True


def close_spooled_end(connection: Connection, end: CallEnd) -> bool:
    """Close the call with what the dialplan saw, only if nothing closed it
    for real yet (the server's own close is never overwritten); True if closed."""
    values = closing_values(end)
    statement = (
        update(_CALLS)
        .where(_CALLS.c.uniqueid == end.uniqueid, _CALLS.c.outcome.in_(_OPEN))
        .values(**values)
        .returning(_CALLS.c.started_at)
    )
    started_at = connection.execute(statement).scalar()
    if started_at is None:
        # Never recorded at all (the server died before its start was written,
        # or the call was cut during Answer()): recorded from its end line.
        if insert_from_end(connection, end) is None:
            return False
        started_at = connection.scalar(
            select(_CALLS.c.started_at).where(_CALLS.c.uniqueid == end.uniqueid)
        )
    # Its outcome changed: the day is read from the calls until rolled again.
    if started_at is not None:
        forget_day_of(connection, started_at)
    return True


@dataclass
class IngestResult:
    inserted: int = 0  # calls recorded from a "start" line
    closed: int = 0  # records closed from an "end" line
    problems: list[str] = field(default_factory=list)


class FallbackCallSpool:
    """Reads the call spool into the call log: everything at :meth:`start`,
    then what was appended since, every ``interval`` seconds."""

    def __init__(
        self,
        path: Path,
        call_log: CallLog,
        interval: float = INGEST_SECONDS,
        recordings: Callable[[CallEnd], Awaitable[Any]] | None = None,
    ) -> None:
        """``recordings`` does for an end line with recordings (``rec_base``)
        what the server does at a hangup it takes: registers them, and opens
        the case of a voicemail (:meth:`ivr.agi.server.HotlineAgi.spooled_recordings`).
        It must be idempotent: a line may be read twice (a rotated spool)."""
        self.path = path
        self._recordings = recordings
        self._call_log = call_log
        self._interval = interval
        self._offset = 0  # bytes of the file already read (complete lines only)
        self._lines = 0  # lines already read, for file:line in reports
        self._inode: int | None = None
        self._task: asyncio.Task[None] | None = None

    def _read_new(self) -> tuple[str, int]:
        """The complete lines appended since the last pass, and the line number
        of the first. A file now shorter than what was read, or another file
        at the path, was emptied or rotated: read it from its start."""
        try:
            with self.path.open("rb") as handle:
                status = os.fstat(handle.fileno())
                if status.st_ino != self._inode or status.st_size < self._offset:
                    self._inode, self._offset, self._lines = status.st_ino, 0, 0
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return "", self._lines + 1
        # A line still being appended (no newline yet) waits for the next pass.
        complete = data[: data.rfind(b"\n") + 1]
        first = self._lines + 1
        self._offset += len(complete)
        self._lines += complete.count(b"\n")
        return complete.decode("utf-8", errors="replace"), first

    async def ingest_new(self) -> IngestResult:
        """One pass: queue every new line's write and wait for them."""
        text, first = await asyncio.to_thread(self._read_new)
        read = parse_spool(text, self.path, first)
        for problem in read.problems:
            logger.error("call spool: %s (line skipped)", problem)
        futures = [
            self._call_log.submit(
                close_spooled_end if isinstance(entry, CallEnd) else insert_spooled_start, entry
            )
            for entry in read.entries
        ]
        result = IngestResult(problems=read.problems)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for entry, outcome in zip(read.entries, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                continue  # logged by the call log's writer
            if isinstance(entry, CallEnd) and entry.rec_base and self._recordings is not None:
                # Whether or not this line closed the record: a message left
                # while the server was down becomes its case all the same.
                try:
                    await self._recordings(entry)
                except Exception:
                    logger.exception("call spool: recordings of %s not registered", entry.uniqueid)
            if outcome and isinstance(entry, CallEnd):
                result.closed += 1
            elif outcome:
                result.inserted += 1
        if result.inserted or result.closed:
            logger.info(
                "call spool %s: %d calls served by the fallback script recorded, %d closed",
                self.path,
                result.inserted,
                result.closed,
            )
        return result

    def start(self) -> asyncio.Task[None]:
        """Read the whole spool now, then what is appended every ``interval``
        seconds. Not awaited by the caller: while the database is away the
        writes wait in the call log's writer, and the server takes calls."""
        self._task = asyncio.create_task(self._loop(), name="call-spool")
        return self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.ingest_new()
            except Exception:
                logger.exception("reading the call spool %s failed", self.path)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
