"""The province-scale bench's history carries what the statistics page and the
on-time report read at scale (bench/province_scale.py, issue 13): each call's
previous call by the same number, to the same hotline and to any, as the call
log records it (checked against a chain computed here from the rows), and
forwards of cases to the example's units (or, for a hotline with none,
the wards' committees and departments cases name), about one and a half per forwarded
case, each due after it was sent, with answered (mostly on time, some late),
returned and still open ones, and a history that agrees with each status."""

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
SCALE = 0.005  # 45,000 calls, 500 cases


@pytest.fixture(scope="module")
def generated() -> tuple[ModuleType, Any, list[tuple[Any, ...]], Any]:
    spec = importlib.util.spec_from_file_location(
        "province_scale_forwards", ROOT / "bench" / "province_scale.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["province_scale_forwards"] = bench
    spec.loader.exec_module(bench)
    config = load_config(bench.EXAMPLE)
    history = bench.generate(bench.Population.of(config), SCALE)
    calls = [call for call, _queue in history.calls]
    return bench, config, calls, history


def test_each_call_carries_its_numbers_previous_call(generated: Any) -> None:
    bench, _config, calls, _history = generated
    at = {name: n for n, name in enumerate(bench.CALL_COLUMNS)}
    last: dict[tuple[str, str], Any] = {}
    last_anywhere: dict[str, Any] = {}
    repeats = 0
    ordered = sorted(enumerate(calls), key=lambda item: (item[1][at["started_at"]], item[0]))
    for _n, call in ordered:
        number, hotline = call[at["caller_number"]], call[at["hotline_id"]]
        if number is None:
            assert call[at["previous_call_at"]] is None
            assert call[at["previous_call_anywhere_at"]] is None
            continue
        assert call[at["previous_call_at"]] == last.get((hotline, number))
        assert call[at["previous_call_anywhere_at"]] == last_anywhere.get(number)
        repeats += call[at["previous_call_at"]] is not None
        last[hotline, number] = last_anywhere[number] = call[at["started_at"]]
    assert repeats > len(calls) / 4  # regulars and heavy callers do come back


def test_forwards_to_units_with_their_fates(generated: Any) -> None:
    bench, config, _calls, history = generated
    columns = {name: n for n, name in enumerate(bench.FORWARD_COLUMNS)}
    forwards = history.forwards
    cases = {case[0]: case for case in history.cases}
    per_case = Counter(f[columns["case_id"]] for f in forwards)
    assert 1.3 < len(forwards) / len(per_case) < 1.7
    assert 0.55 < len(per_case) / len(cases) < 0.8
    assert max(per_case.values()) <= 3
    statuses = Counter(f[columns["status"]] for f in forwards)
    assert statuses["answered"] > 0.7 * len(forwards)
    assert statuses["returned"] > 0
    assert sum(statuses[s] for s in ("sent", "received", "in_progress")) > 0
    late = 0
    wards = {area.code for area in iter_areas(config.areas) if not area.children}
    events = Counter((e[0], e[5]) for e in history.forward_events)
    for forward in forwards:
        case = cases[forward[columns["case_id"]]]
        hotline = forward[columns["hotline_id"]]
        assert hotline == case[bench.CASE_COLUMNS.index("hotline_id")]
        units = {u.code for u in config.units_for(hotline)} or wards | set(bench.DEPARTMENTS)
        assert forward[columns["unit_code"]] in units
        sent = forward[columns["sent_at"]]
        assert sent >= case[bench.CASE_COLUMNS.index("received_at")]
        assert forward[columns["due_date"]] > sent.astimezone(ZONE).date()
        forward_id, status = forward[columns["id"]], forward[columns["status"]]
        assert events[forward_id, "sent"] == 1
        answered = forward[columns["answered_at"]]
        assert (answered is not None) == (status == "answered")
        if status in ("answered", "returned"):
            assert events[forward_id, status] == 1
        if answered is not None:
            assert answered > sent
            late += answered.astimezone(ZONE).date() > forward[columns["due_date"]]
    assert 0.05 < late / statuses["answered"] < 0.3
    # One unit per case at most once (the table's unique constraint).
    pairs = [(f[columns["case_id"]], f[columns["unit_code"]]) for f in forwards]
    assert len(set(pairs)) == len(pairs)
