"""The figures of the statistics page, its API and its exports."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case
from ivr.db.models import Call
from ivr.queue_records.models import QueueCall

logger = logging.getLogger(__name__)


def statistics(
    sessions: sessionmaker[Session],
    day_from: date,
    day_to: date,
    zone: ZoneInfo,
    hotline: tuple[str, list[str]] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Counts for the statistics page, in the hotline's time zone; ``hotline``
    (its id and its queues' ids) limits them to one hotline. Deadlines are
    judged as of the period's last day, or ``today`` (default: the date now
    in ``zone``) when that is earlier: a past period's report stays the same
    whenever it is printed.

    Rows are grouped in Python: a few thousand calls a day is nothing, and it
    keeps the queries the same on SQLite and PostgreSQL (no date functions)."""
    start = datetime.combine(day_from, time(), zone).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(), zone).astimezone(UTC)
    call_scope, queue_scope, case_scope = true(), true(), true()
    if hotline is not None:
        # Queue records carry the queue, not the hotline: its owner decides.
        hotline_id, queues = hotline
        call_scope = Call.hotline_id == hotline_id
        queue_scope = QueueCall.queue.in_(queues)
        case_scope = Case.hotline_id == hotline_id
    with sessions() as session:
        calls = session.execute(
            select(Call.started_at, Call.caller_number, Call.area_code, Call.outcome).where(
                Call.started_at >= start, Call.started_at < end, call_scope
            )
        ).all()
        queue_calls = session.execute(
            select(QueueCall.outcome, QueueCall.wait_seconds, QueueCall.queue).where(
                QueueCall.joined_at >= start, QueueCall.joined_at < end, queue_scope
            )
        ).all()
        cases = session.execute(
            select(
                Case.topic, Case.area_code, Case.responsible_unit, Case.status,
                Case.due_date, Case.closed_at, Case.received_at,
            ).where(Case.received_at >= start, Case.received_at < end, case_scope)
        ).all()  # fmt: skip
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    per_day = Counter(c.started_at.astimezone(zone).date() for c in calls)
    per_hour = Counter(c.started_at.astimezone(zone).hour for c in calls)
    answered = sum(1 for q in queue_calls if q.outcome == "answered")
    abandoned = sum(1 for q in queue_calls if q.outcome in ("abandoned", "left", "lost"))
    waits = [q.wait_seconds for q in queue_calls if q.outcome == "answered" and q.wait_seconds]
    today = today or datetime.now(zone).date()
    deadlines = deadline_report(cases, min(day_to, today), zone)
    return {
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "calls": len(calls),
        "distinct_callers": len({c.caller_number for c in calls if c.caller_number}),
        "per_day": [(d.isoformat(), per_day.get(d, 0)) for d in days],
        "per_hour": [(h, per_hour.get(h, 0)) for h in range(24)],
        "by_area": Counter(c.area_code or "-" for c in calls).most_common(),
        "by_outcome": Counter(c.outcome for c in calls).most_common(),
        "by_topic": Counter(c.topic or "-" for c in cases).most_common(),
        "queue_answered": answered,
        "queue_abandoned": abandoned,
        "average_wait_seconds": round(sum(waits) / len(waits), 1) if waits else 0.0,
        "cases": len(cases),
        # (unit, on time, late) for the chart: "late" counts open cases past due too.
        "cases_by_unit": [
            (row["unit"], row["on_time"], row["late"] + row["overdue"])
            for row in deadlines["units"]
            if row["on_time"] or row["late"] or row["overdue"]
        ],
        # As a district reports it: on time, late, open within the deadline and
        # open past it, per unit and in total, with the on-time rate.
        "deadlines": deadlines,
    }


DEADLINE_COUNTS = ("on_time", "late", "in_deadline", "overdue")


def _deadline_row(unit: str, counts: Counter[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"unit": unit, **{name: counts[name] for name in DEADLINE_COUNTS}}
    row["total"] = sum(counts[name] for name in DEADLINE_COUNTS)
    # Of the cases whose deadline is decided (closed, or open past due), the
    # share closed on time, in percent; open cases still within the deadline
    # are left out, they may yet be on time. None when nothing is decided.
    decided = counts["on_time"] + counts["late"] + counts["overdue"]
    row["on_time_rate"] = round(100 * counts["on_time"] / decided, 1) if decided else None
    return row


def deadline_report(cases: Any, as_of: date, zone: ZoneInfo) -> dict[str, Any]:
    """Each case in one of four, as it stood at the end of ``as_of``: closed on
    or before its due date (on time), closed after it (late), open and not yet
    due (in deadline), open and past due (overdue). A case is closed when
    ``closed_at`` is set (closed or rejected); one closed after ``as_of`` was
    still open then. Rows need ``responsible_unit``, ``due_date``, ``closed_at``."""
    per_unit: dict[str, Counter[str]] = {}
    total: Counter[str] = Counter()
    for case in cases:
        done = case.closed_at.astimezone(zone).date() if case.closed_at else None
        if done is not None and done <= as_of:
            kind = "on_time" if done <= case.due_date else "late"
        else:
            kind = "in_deadline" if as_of <= case.due_date else "overdue"
        per_unit.setdefault(case.responsible_unit or "-", Counter())[kind] += 1
        total[kind] += 1
    return {
        "as_of": as_of.isoformat(),
        "units": [_deadline_row(unit, per_unit[unit]) for unit in sorted(per_unit)],
        "total": _deadline_row("", total),
    }
