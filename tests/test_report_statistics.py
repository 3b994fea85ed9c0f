"""The statistics page's call figures, now counted by the database (GROUP BY,
quarter-hour bins on PostgreSQL) instead of in Python: the same days and hours
in the hotline's zone (a call at 23:30 UTC is the next morning in Hà Nội),
distinct callers without withheld numbers, areas and outcomes, queue answered
and abandoned with the average wait, one hotline's figures only its own.
A guard for the rewrite: the figures are those the Python grouping gave."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from ivr.db.registry import Base
from ivr.queue_records.models import QueueCall
from ivr.web.statistics_store import statistics
from tests.rig.postgres import fresh_database_url

pytestmark = pytest.mark.db

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

# (UTC start, hotline, number, area, outcome, queue outcome, wait)
CALLS = [
    (datetime(2026, 3, 1, 16, 59, tzinfo=UTC), "a", "+84912000001", "x", "answered", None, None),
    (datetime(2026, 3, 1, 17, 0, tzinfo=UTC), "a", "+84912000001", "x", "answered",
     "answered", 10.0),  # 00:00 on 2 March in Hà Nội
    (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "a", "+84912000002", None, "abandoned_in_queue",
     "abandoned", 40.0),  # 06:30
    (datetime(2026, 3, 2, 2, 14, tzinfo=UTC), "a", None, "y", "answered", "answered", 20.0),
    (datetime(2026, 3, 2, 2, 15, tzinfo=UTC), "b", "+84912000003", "y", "answered",
     "answered", 0.0),  # 09:15, another hotline; a zero wait is not averaged
    (datetime(2026, 3, 3, 16, 45, tzinfo=UTC), "a", "+84912000002", "x", "voicemail", None, None),
    (datetime(2026, 3, 3, 17, 0, tzinfo=UTC), "a", "+84912000004", "x", "answered", None, None),
]  # fmt: skip


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Any]:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for n, (started, hotline, number, area, outcome, queued, wait) in enumerate(CALLS):
            session.add(
                Call(uniqueid=f"u{n}", linkedid=f"u{n}", hotline_id=hotline, caller_number=number,
                     area_code=area, started_at=started, outcome=outcome)
            )  # fmt: skip
            if queued:
                session.add(
                    QueueCall(node="n", uniqueid=f"u{n}", first_queue=f"q{hotline}",
                              queue=f"q{hotline}", joined_at=started, outcome=queued,
                              wait_seconds=wait)
                )  # fmt: skip
    yield factory
    engine.dispose()


def test_days_hours_callers_areas_outcomes_and_queue(sessions: Any) -> None:
    figures = statistics(sessions, date(2026, 3, 2), date(2026, 3, 3), ZONE)
    assert figures["calls"] == 5  # 16:59 UTC on 1 March is still 1 March in Hà Nội
    assert figures["per_day"] == [("2026-03-02", 4), ("2026-03-03", 1)]
    hours = dict(figures["per_hour"])
    assert (hours[0], hours[6], hours[9], hours[23]) == (1, 1, 2, 1)
    assert sum(hours.values()) == 5
    assert figures["distinct_callers"] == 3  # 001, 002, 003; the withheld one is not counted
    assert dict(figures["by_area"]) == {"x": 2, "-": 1, "y": 2}
    assert dict(figures["by_outcome"]) == {"answered": 3, "abandoned_in_queue": 1, "voicemail": 1}
    assert (figures["queue_answered"], figures["queue_abandoned"]) == (3, 1)
    assert figures["average_wait_seconds"] == 15.0  # (10 + 20) / 2


def test_one_hotline_counts_only_its_own(sessions: Any) -> None:
    figures = statistics(sessions, date(2026, 3, 2), date(2026, 3, 3), ZONE, ("b", ["qb"]))
    assert figures["calls"] == 1
    assert dict(figures["per_hour"])[9] == 1
    assert figures["distinct_callers"] == 1
    assert (figures["queue_answered"], figures["queue_abandoned"]) == (1, 0)
    assert figures["average_wait_seconds"] == 0.0


SCALE_INDEXES = ("ix_calls_caller_number_started_at", "ix_calls_hotline_id_started_at",
                 "ix_queue_calls_uniqueid_agent_id", "ix_cases_summary_trgm",
                 "ix_cases_transcript_trgm")  # fmt: skip


def test_migration_0012_creates_the_indexes_the_models_declare(sessions: Any) -> None:
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)
        present = {
            index["name"]
            for table in ("calls", "queue_calls", "cases")
            for index in inspect(connection).get_indexes(table)
        }
    ours = [d for d in differences if any(name in repr(d) for name in SCALE_INDEXES)]
    # Trigram indexes exist on PostgreSQL only; SQLite keeps its plain LIKE.
    trigram = {"ix_cases_summary_trgm", "ix_cases_transcript_trgm"}
    if engine.dialect.name == "postgresql":
        assert ours == []
        assert set(SCALE_INDEXES) <= present
    else:
        # Alembic's comparison does not read the models' ddl_if(dialect=
        # "postgresql"): on SQLite it names exactly the two trigram indexes.
        assert sorted(d[1].name for d in ours) == sorted(trigram)
        assert all(d[0] == "add_index" for d in ours)
        assert set(SCALE_INDEXES) - trigram <= present and not trigram & present
