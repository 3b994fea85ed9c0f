"""The figures of the statistics page, its API and its exports."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case
from ivr.db.models import Call
from ivr.queue_records.models import QueueCall

logger = logging.getLogger(__name__)


def statistics(
    sessions: sessionmaker[Session], day_from: date, day_to: date, zone: ZoneInfo
) -> dict[str, Any]:
    """Counts for the statistics page, in the hotline's time zone.

    Rows are grouped in Python: a few thousand calls a day is nothing, and it
    keeps the queries the same on SQLite and PostgreSQL (no date functions)."""
    start = datetime.combine(day_from, time(), zone).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(), zone).astimezone(UTC)
    with sessions() as session:
        calls = session.execute(
            select(Call.started_at, Call.caller_number, Call.area_code, Call.outcome).where(
                Call.started_at >= start, Call.started_at < end
            )
        ).all()
        queue_calls = session.execute(
            select(QueueCall.outcome, QueueCall.wait_seconds, QueueCall.queue).where(
                QueueCall.joined_at >= start, QueueCall.joined_at < end
            )
        ).all()
        cases = session.execute(
            select(
                Case.topic, Case.area_code, Case.responsible_unit, Case.status,
                Case.due_date, Case.closed_at, Case.received_at,
            ).where(Case.received_at >= start, Case.received_at < end)
        ).all()  # fmt: skip
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    per_day = Counter(c.started_at.astimezone(zone).date() for c in calls)
    per_hour = Counter(c.started_at.astimezone(zone).hour for c in calls)
    answered = sum(1 for q in queue_calls if q.outcome == "answered")
    abandoned = sum(1 for q in queue_calls if q.outcome in ("abandoned", "left", "lost"))
    waits = [q.wait_seconds for q in queue_calls if q.outcome == "answered" and q.wait_seconds]
    today = datetime.now(zone).date()
    on_time: Counter[str] = Counter()
    late: Counter[str] = Counter()
    for case in cases:
        unit = case.responsible_unit or "-"
        done = case.closed_at.astimezone(zone).date() if case.closed_at else None
        if (done or today) > case.due_date:
            late[unit] += 1
        elif done is not None:
            on_time[unit] += 1
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
        "cases_by_unit": sorted(
            ((unit, on_time.get(unit, 0), late.get(unit, 0)) for unit in set(on_time) | set(late)),
        ),
    }
