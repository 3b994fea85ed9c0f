"""The province-scale bench's synthetic history (bench/province_scale.py) is
shaped as intended, checked on a small scale without a database: the counts
asked for, repeat callers (a few heavy ones, many regulars, mostly one-time
callers, some withheld), office hours and weekdays busier than nights and
Sundays, the example's hotlines and Hà Nội's wards, and cases whose texts are
Vietnamese, whose caller is their call's, and whose dates and histories agree."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.config import load_config
from ivr.config.schema import iter_areas

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SCALE = 0.002  # 18,000 calls, 200 cases


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "province_scale", ROOT / "bench" / "province_scale.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["province_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> tuple[ModuleType, list[tuple[Any, ...]], list[Any], Any]:
    bench = _bench()
    config = load_config(bench.EXAMPLE)
    history = bench.generate(bench.Population.of(config), SCALE)
    pairs = list(history.calls)  # the cases are made once the calls are drawn
    calls = [call for call, _queue in pairs]
    queue_rows = [queue for _call, queue in pairs if queue is not None]
    return bench, calls, queue_rows, history


def column(bench: ModuleType, name: str) -> int:
    return list(bench.CALL_COLUMNS).index(name)


def test_the_counts_are_those_of_the_scale(generated: Any) -> None:
    bench, calls, queue_rows, history = generated
    assert len(calls) == int(bench.FULL_CALLS * SCALE)
    assert len(history.cases) == int(bench.FULL_CASES * SCALE)
    assert len({c[column(bench, "uniqueid")] for c in calls}) == len(calls)
    # Answered and queue-abandoned calls have their queue record, the others none.
    outcome = column(bench, "outcome")
    in_queue = sum(1 for c in calls if c[outcome] in ("answered", "abandoned_in_queue"))
    assert len(queue_rows) == in_queue


def test_callers_repeat_as_on_a_real_line(generated: Any) -> None:
    bench, calls, _queue_rows, _history = generated
    numbers = [c[column(bench, "caller_number")] for c in calls]
    withheld = numbers.count(None)
    assert 0.015 < withheld / len(numbers) < 0.05
    per_number = Counter(n for n in numbers if n is not None)
    heaviest = per_number.most_common(bench.HEAVY_CALLERS)
    # A dozen heavy callers, each far above everyone else …
    assert all(count >= 40 for _number, count in heaviest), heaviest
    # … many regulars who called several times, and mostly one-time callers.
    repeat = [n for n, count in per_number.items() if count >= 3]
    once = [n for n, count in per_number.items() if count == 1]
    assert len(repeat) >= 20
    assert len(once) > len(per_number) / 2
    assert all(n.startswith("+84") and len(n) == 12 for n in per_number)


def test_hours_days_hotlines_and_wards_follow_the_intended_shares(generated: Any) -> None:
    bench, calls, _queue_rows, _history = generated
    started = [c[column(bench, "started_at")].astimezone(ZONE) for c in calls]
    hours = Counter(s.hour for s in started)
    assert sum(hours[h] for h in (8, 9, 10)) > 5 * sum(hours[h] for h in (0, 1, 2, 3))
    weekdays = Counter(s.weekday() for s in started)
    assert weekdays[0] > 2 * weekdays[6]  # Monday against Sunday
    assert max(started).date() == bench.END
    assert (bench.END - min(started).date()).days > 5 * 365 - 3
    hotlines = Counter(c[column(bench, "hotline_id")] for c in calls)
    assert [h for h, _ in hotlines.most_common()] == [
        "tong-dai-1022", "ha-noi-hcc", "bac-tu-liem-2026", "thanh-xuan"
    ]  # fmt: skip
    config = load_config(bench.EXAMPLE)
    leaves = {a.code for a in iter_areas(config.areas) if not a.children}
    areas = Counter(c[column(bench, "area_code")] for c in calls)
    assert set(areas) - {None} <= leaves
    assert len(set(areas) - {None}) > 100  # most of Hà Nội's 126 units appear
    assert areas.most_common(1)[0][1] > 5 * sorted(areas.values())[len(areas) // 4]
    outcomes = Counter(c[column(bench, "outcome")] for c in calls)
    assert outcomes.most_common(1)[0][0] == "answered"
    assert outcomes["abandoned_in_queue"] and outcomes["abandoned_in_ivr"]


def test_cases_are_vietnamese_texts_of_their_calls_with_consistent_dates(
    generated: Any,
) -> None:
    bench, calls, _queue_rows, history = generated
    by_uniqueid = {c[column(bench, "uniqueid")]: c for c in calls}
    columns = list(bench.CASE_COLUMNS)
    index = {name: columns.index(name) for name in columns}
    statuses: Counter[str] = Counter()
    for case in history.cases:
        call = by_uniqueid[case[index["call_uniqueid"]]]
        assert case[index["caller_number"]] == call[column(bench, "caller_number")]
        assert case[index["hotline_id"]] == call[column(bench, "hotline_id")]
        received = case[index["received_at"]]
        assert received >= call[column(bench, "started_at")]
        assert case[index["due_date"]] >= received.astimezone(ZONE).date()
        closed = case[index["closed_at"]]
        assert (closed is None) == (case[index["status"]] not in ("closed", "rejected"))
        assert closed is None or closed > received
        statuses[case[index["status"]]] += 1
    assert statuses["closed"] > statuses["rejected"] > 0
    summaries = [case[index["summary"]] for case in history.cases]
    assert all(any(ch in s for ch in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệịỉĩọỏốồổỗộớờởỡợụủứừửữựỳỷỹý")
               for s in summaries)  # fmt: skip
    assert 0 < sum("Rác" in s or "rác" in s for s in summaries) < len(summaries) / 2
    # Each case's history opens it, and a closed one ends with its closing.
    events: dict[int, list[tuple[Any, ...]]] = {}
    for event in history.case_history:
        events.setdefault(event[0], []).append(event)
    for case in history.cases:
        own = events[case[index["id"]]]
        assert own[0][3] == "opened" and own[0][1] == case[index["received_at"]]
        if case[index["closed_at"]] is not None:
            assert own[-1][5] == case[index["status"]] and own[-1][1] == case[index["closed_at"]]
