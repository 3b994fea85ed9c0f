"""The statistics page over the daily roll-up gives exactly the figures of the
records (issue 13, a year's page at a province's scale).

Random calls over ten days, three hotlines, every hour, numbers that repeat
across days and hotlines, withheld and empty numbers, two calls of one number
in the same instant, written out of time order, with queue records: for many
periods, four time zones (Kathmandu's quarter-hour offset, St John's negative
half hour) and both scopes, the page summed from the roll-up equals the page
read from the records, and both equal a count done here in Python from the
rows (distinct callers as a set of numbers). A call recorded late for a
rolled day (the fallback spool) counts at once and after the next run; a
late queue record or a call written by hand counts after the next run; a day
with a call still in progress is not rolled; after retention's real run
(pseudonyms or erased numbers) the distinct callers are those of the
numbers the rows hold."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select, update

from ivr.config import load_config
from ivr.db.call_chain import relink_numbers
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from ivr.fallback_calls import SpooledStart, insert_spooled_start
from ivr.privacy.schedule import run_and_audit
from ivr.queue_records.models import QueueCall
from ivr.reports.call_rollup import roll_up, split_period
from ivr.reports.models import RolledDay
from ivr.web.statistics_store import statistics
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

pytestmark = pytest.mark.db

FIRST = date(2026, 3, 1)
DAYS = 10
HOTLINES = {"a": ["qa", "qa2"], "b": ["qb"], "c": ["qc"]}
OUTCOMES = ("answered", "abandoned_in_queue", "abandoned_in_ivr", "voicemail", "busy")
QUEUE_OUTCOMES = ("answered", "abandoned", "left", "lost", "waiting")
AREAS = ("x", "y", "z", None, "")
ZONES = [ZoneInfo(z) for z in ("Asia/Ho_Chi_Minh", "UTC", "Asia/Kathmandu", "America/St_Johns")]
# The job runs after the tenth day (and its grace): days 1–9 are rolled, the
# tenth was not over when it ran.
NOW = datetime.combine(FIRST + timedelta(days=DAYS - 1), time(1, 30), UTC)


def random_calls(rng: random.Random) -> list[dict[str, Any]]:
    numbers = [f"+8491200{n:04d}" for n in range(40)]
    start = datetime.combine(FIRST, time(), UTC) - timedelta(hours=12)
    rows: list[dict[str, Any]] = []
    for n in range(600):
        at = start + timedelta(seconds=rng.randrange((DAYS + 1) * 86400))
        number = rng.choice([*numbers, None, ""]) if rng.random() > 0.05 else None
        hotline = rng.choice(list(HOTLINES))
        row = {
            "uniqueid": f"u{n}", "linkedid": f"u{n}", "hotline_id": hotline,
            "caller_number": number, "area_code": rng.choice(AREAS),
            "started_at": at, "outcome": rng.choice(OUTCOMES),
        }  # fmt: skip
        rows.append(row)
        if rng.random() < 0.05:  # the same number again in the same instant
            rows.append({**row, "uniqueid": f"t{n}", "linkedid": f"t{n}",
                         "hotline_id": rng.choice(list(HOTLINES))})  # fmt: skip
    rng.shuffle(rows)  # recorded out of time order
    return rows


def random_queue(rng: random.Random, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for call in calls:
        if rng.random() < 0.6:
            queue = rng.choice(HOTLINES[call["hotline_id"]])
            rows.append(
                {"node": "n", "uniqueid": call["uniqueid"], "first_queue": queue, "queue": queue,
                 "joined_at": call["started_at"] + timedelta(seconds=rng.randrange(30)),
                 "outcome": rng.choice(QUEUE_OUTCOMES),
                 "wait_seconds": rng.choice((0.0, None, round(rng.uniform(0, 300), 1)))}
            )  # fmt: skip
    return rows


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]]:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rng = random.Random(13)
    calls = random_calls(rng)
    queue = random_queue(rng, calls)
    for at in range(0, len(calls), 50):  # several flushes: later ones land before earlier
        with sessions.begin() as session:
            session.add_all(Call(**row) for row in calls[at : at + 50])
    with sessions.begin() as session:
        session.add_all(QueueCall(**row) for row in queue)
    yield sessions, calls, queue
    engine.dispose()


def python_figures(
    calls: list[dict[str, Any]],
    queue: list[dict[str, Any]],
    day_from: date,
    day_to: date,
    zone: ZoneInfo,
    hotline: str | None,
) -> dict[str, Any]:
    """The figures counted here from the rows, without the database."""
    start = datetime.combine(day_from, time(), zone)
    end = datetime.combine(day_to + timedelta(days=1), time(), zone)
    mine = [
        c for c in calls
        if start <= c["started_at"] < end and hotline in (None, c["hotline_id"])
    ]  # fmt: skip
    queues = None if hotline is None else HOTLINES[hotline]
    waited = [
        q for q in queue
        if start <= q["joined_at"] < end and (queues is None or q["queue"] in queues)
    ]  # fmt: skip
    answered = [q for q in waited if q["outcome"] == "answered"]
    waits = [round(q["wait_seconds"] * 10) for q in answered if (q["wait_seconds"] or 0) > 0]
    per_day = Counter(c["started_at"].astimezone(zone).date() for c in mine)
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    return {
        "calls": len(mine),
        "distinct_callers": len({c["caller_number"] for c in mine if c["caller_number"]}),
        "per_day": [(d.isoformat(), per_day.get(d, 0)) for d in days],
        "per_hour": sorted(Counter(c["started_at"].astimezone(zone).hour for c in mine).items()),
        "by_area": sorted(Counter(c["area_code"] or "-" for c in mine).items()),
        "by_outcome": sorted(Counter(c["outcome"] for c in mine).items()),
        "queue_answered": len(answered),
        "queue_abandoned": sum(q["outcome"] in ("abandoned", "left", "lost") for q in waited),
        "average_wait_seconds": round(sum(waits) / 10 / len(waits), 1) if waits else 0.0,
    }


def comparable(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        **{key: figures[key] for key in ("calls", "distinct_callers", "per_day", "queue_answered",
                                         "queue_abandoned", "average_wait_seconds")},
        "per_hour": [(h, n) for h, n in figures["per_hour"] if n],
        "by_area": sorted(figures["by_area"]),
        "by_outcome": sorted(figures["by_outcome"]),
    }  # fmt: skip


def periods(rng: random.Random) -> Iterator[tuple[date, date, ZoneInfo, str | None]]:
    for zone in ZONES:
        for hotline in (None, "a", "b"):
            yield FIRST - timedelta(days=1), FIRST + timedelta(days=DAYS), zone, hotline
            for _ in range(4):
                day_from = FIRST + timedelta(days=rng.randrange(-1, DAYS))
                day_to = day_from + timedelta(days=rng.randrange(0, 6))
                yield day_from, day_to, zone, hotline


def check_all(sessions: Any, calls: list[dict[str, Any]], queue: list[dict[str, Any]]) -> None:
    rng = random.Random(5)
    for day_from, day_to, zone, hotline in periods(rng):
        scope = None if hotline is None else (hotline, HOTLINES[hotline])
        rolled = statistics(sessions, day_from, day_to, zone, scope)
        raw = statistics(sessions, day_from, day_to, zone, scope, use_rollup=False)
        expected = python_figures(calls, queue, day_from, day_to, zone, hotline)
        where = f"{day_from}..{day_to} {zone} {hotline}"
        assert {k: v for k, v in rolled.items() if k != "deadlines"} == {
            k: v for k, v in raw.items() if k != "deadlines"
        }, where
        assert comparable(rolled) == expected, where


def test_rolled_up_figures_are_those_of_the_records(world: Any) -> None:
    sessions, calls, queue = world
    # One call of the fourth day still in progress: that day waits.
    busy = next(c for c in calls if c["started_at"].date() == FIRST + timedelta(days=3))
    with sessions.begin() as session:
        session.execute(
            update(Call).where(Call.uniqueid == busy["uniqueid"]).values(outcome="in_progress")
        )
    busy["outcome"] = "in_progress"
    assert roll_up(sessions, NOW) == DAYS - 1  # the day before the first, and eight of ten
    with sessions() as session:
        rolled = set(session.scalars(select(RolledDay.day)))
        whole = split_period(
            session,
            datetime.combine(FIRST, time(), UTC),
            datetime.combine(FIRST + timedelta(days=DAYS), time(), UTC),
        )
    assert FIRST + timedelta(days=3) not in rolled
    assert FIRST + timedelta(days=DAYS - 1) not in rolled  # not over when the job ran
    assert len(whole[0]) == DAYS - 2 and len(whole[1]) == 2  # the roll-up is really read
    check_all(sessions, calls, queue)


def test_late_records_for_a_rolled_day_count(world: Any) -> None:
    sessions, calls, queue = world
    roll_up(sessions, NOW)
    day = FIRST + timedelta(days=2)
    at = datetime.combine(day, time(10, 7), UTC)
    # The fallback spool writes a call of a rolled day: counted at once.
    spooled = SpooledStart("late1", "a", "1022", "0912009999", "PJSIP/t-1", at, "queue", "x", "")
    with sessions.begin() as session:
        assert insert_spooled_start(session.connection(), spooled)
    calls.append({"uniqueid": "late1", "hotline_id": "a", "caller_number": "+84912009999",
                  "area_code": "x", "started_at": at, "outcome": "in_progress"})  # fmt: skip
    check_all(sessions, calls, queue)
    with sessions.begin() as session:
        session.execute(update(Call).where(Call.uniqueid == "late1").values(outcome="answered"))
    calls[-1]["outcome"] = "answered"
    # A call and a queue record written by hand into a rolled day, no hook:
    # the next run sees the day's counts changed and rolls it again.
    other = FIRST + timedelta(days=5)
    by_hand = {"uniqueid": "late2", "linkedid": "late2", "hotline_id": "b",
               "caller_number": "+84912000001", "area_code": "y",
               "started_at": datetime.combine(other, time(3), UTC), "outcome": "busy"}  # fmt: skip
    record = {"node": "n", "uniqueid": "late3", "first_queue": "qa", "queue": "qa",
              "joined_at": datetime.combine(FIRST + timedelta(days=6), time(4), UTC),
              "outcome": "answered", "wait_seconds": 12.3}  # fmt: skip
    with sessions.begin() as session:
        session.add(Call(**by_hand))
        session.add(QueueCall(**record))
    calls.append(by_hand)
    queue.append(record)
    later = NOW + timedelta(hours=1)
    assert roll_up(sessions, later) >= 3  # the two changed days, the spooled one
    with sessions() as session:
        rolled = set(session.scalars(select(RolledDay.day)))
    assert {day, other, FIRST + timedelta(days=6)} <= rolled
    check_all(sessions, calls, queue)


def test_replaced_numbers_keep_distinct_callers_exact(world: Any) -> None:
    """Retention gives old calls a pseudonym (another number) or erases the
    number; relinking keeps the count the numbers' set."""
    sessions, calls, queue = world
    roll_up(sessions, NOW)
    cutoff = datetime.combine(FIRST + timedelta(days=4), time(), UTC)
    replaced: set[str] = set()
    with sessions.begin() as session:
        for call in calls:
            number = call["caller_number"]
            if call["started_at"] < cutoff and number:
                new = None if number.endswith("7") else "pseudo:" + number[-4:]
                call["caller_number"] = new
                replaced.update(n for n in (number, new) if n)
                session.execute(
                    update(Call).where(Call.uniqueid == call["uniqueid"]).values(
                        caller_number=new, previous_call_at=None if new is None else
                        Call.previous_call_at)
                )  # fmt: skip
        relink_numbers(session.connection(), replaced, chunk=7)
        linked = session.scalar(select(func.count()).where(Call.previous_call_at.is_not(None)))
    assert linked
    check_all(sessions, calls, queue)


@pytest.mark.parametrize("mode", ["pseudonym", "erase"])
def test_retention_keeps_distinct_callers_those_of_the_numbers_left(
    tmp_path: Path, mode: str
) -> None:
    """Retention's real run: a number's old calls get a pseudonym (another
    number) or lose it; the page's distinct callers stay the count of the
    distinct numbers the rows now hold, for a period across the cutoff."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["web"] = {"enabled": False}
    data["transcription"] = {"model_path": None, "model_package": None}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["recording"].pop("retention_days", None)
    data["retention"] = {"caller_number_days": 90, "caller_numbers": mode,
                         "pseudonym_key_file": str(tmp_path / "keys" / "pseudonym")}  # fmt: skip
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    hotline = config.hotlines[0].id
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=200), now - timedelta(days=2)
    calls = [(old, "+84912000001"), (old + timedelta(days=1), "+84912000001"),
             (recent, "+84912000001"), (old, "+84912000002"), (recent, "+84912000003")]  # fmt: skip
    with sessions.begin() as session:
        for n, (at, number) in enumerate(calls):
            session.add(Call(uniqueid=f"r{n}", linkedid=f"r{n}", hotline_id=hotline,
                             caller_number=number, caller_raw=number, started_at=at,
                             outcome="answered"))  # fmt: skip
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    period = ((old - timedelta(days=1)).date(), now.date())
    assert statistics(sessions, *period, zone)["distinct_callers"] == 3
    report = run_and_audit(sessions, config, "test")
    assert report.counts["numbers.calls"] == 3
    with sessions() as session:
        numbers = set(session.scalars(select(Call.caller_number)))
    left = {n for n in numbers if n}
    assert len(left) == (4 if mode == "pseudonym" else 2)  # two pseudonyms, or none
    for scope in (None, (hotline, [])):
        assert statistics(sessions, *period, zone, scope)["distinct_callers"] == len(left)
    engine.dispose()
