"""The case-status key reads an answered case's status and the day it was
answered, in Vietnamese (issue 13): "… đã được trả lời ngày 3 tháng 12"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ivr.agi.case_directory import CaseRecords
from ivr.cases.models import Case, CaseEvent
from ivr.config import load_config
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.db.executor import DbExecutor
from ivr.flow.call_flow import HotlineFlow, case_status_prompts
from ivr.flow.steps import CaseInfo, FindCases
from ivr.prompts import load_catalog
from tests.flow_driver import ScriptedCaller, keys

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


def test_status_key_reads_the_day_an_answered_case_was_answered(config: HotlineConfig) -> None:
    case = CaseInfo("25071234", "answered", date(2026, 12, 15), answered_on=date(2026, 12, 3))
    caller = ScriptedCaller(keys("4", "25071234#", "0"), cases={case.code: case})
    caller.run(HotlineFlow(config).run(config.hotlines[0], MONDAY_10H_HANOI, "+84912345678"))
    heard = caller.prompts_heard
    after_code = heard[heard.index("case_status_intro") + 1 + len(case.code) :]
    # "đã được xử lý …", "Phản ánh đã được trả lời ngày", "ba", "tháng", "mười hai"
    assert after_code[:6] == [
        "case_status_answered",
        "case_answered_on_intro",
        "digit_3",
        "date_month",
        "number_ten",
        "digit_2",
    ]
    assert "case_due_date_intro" not in heard  # the deadline no longer matters


def test_closed_case_also_says_when_it_was_answered() -> None:
    prompts = case_status_prompts(CaseInfo("7", "closed", None, answered_on=date(2026, 4, 30)))
    assert prompts == (
        "case_status_intro",
        "digit_7",
        "case_status_answered",
        "case_answered_on_intro",
        "digit_3",  # "ba mươi"
        "number_tens",
        "date_month",
        "number_tu",  # April is "tháng tư"
    )


def test_open_and_rejected_cases_say_no_answer_date() -> None:
    answered_on = date(2026, 12, 3)
    open_case = case_status_prompts(
        CaseInfo("1", "in_progress", date(2026, 12, 9), None, answered_on)
    )
    rejected = case_status_prompts(CaseInfo("1", "rejected", date(2026, 12, 9), None, answered_on))
    assert "case_answered_on_intro" not in open_case + rejected
    assert "case_due_date_intro" in open_case


def test_the_answer_date_prompt_is_in_the_catalog_in_both_languages() -> None:
    entry = load_catalog(REPO / "prompts" / "catalog.yaml").entries["case_answered_on_intro"]
    assert entry.texts["vi"] == "Phản ánh đã được trả lời ngày"
    assert entry.texts["en"]


# --- where the day comes from: the case's history, in the config's time zone -------


@dataclass
class _Cases:
    """The two look-ups :class:`CaseRecords` makes, over cases held in memory."""

    cases: dict[str, Case]
    config_source: ConfigSource

    def find_by_code(self, code: str) -> Case | None:
        return self.cases.get(code)

    def open_cases_for_caller(self, e164: str) -> list[Case]:
        return [c for c in self.cases.values() if c.caller_number == e164]


def _case(code: str, status: str, *moves: tuple[str, datetime], closed: datetime | None = None):
    history = [
        CaseEvent(action="status", to_status=to_status, at=at, actor="agent1")
        for to_status, at in moves
    ]
    history.insert(0, CaseEvent(action="opened", at=datetime(2026, 11, 2, tzinfo=UTC), actor="x"))
    return Case(
        code=code, status=status, due_date=date(2026, 12, 15), closed_at=closed,
        caller_number="+84912345678", history=history,
    )  # fmt: skip


@pytest.fixture
def executor() -> Iterator[DbExecutor]:
    pool = DbExecutor("case-lookup-test", 1)
    yield pool
    pool.close()


async def _answered_on(config: HotlineConfig, executor: DbExecutor, case: Case) -> date | None:
    records = CaseRecords(_Cases({case.code: case}, ConfigSource(config)), executor)  # type: ignore[arg-type]
    (found,) = await records.find(FindCases(code=case.code))
    return found.answered_on


async def test_answer_day_is_the_local_day_of_the_move_to_answered(
    config: HotlineConfig, executor: DbExecutor
) -> None:
    # 17:30 UTC on 2 December is 00:30 on 3 December in Hà Nội.
    case = _case(
        "25071234", "answered",
        ("in_progress", datetime(2026, 11, 20, 2, 0, tzinfo=UTC)),
        ("answered", datetime(2026, 12, 2, 17, 30, tzinfo=UTC)),
    )  # fmt: skip
    assert await _answered_on(config, executor, case) == date(2026, 12, 3)


async def test_a_case_answered_again_after_reopening_gives_the_last_answer(
    config: HotlineConfig, executor: DbExecutor
) -> None:
    case = _case(
        "25071235", "closed",
        ("answered", datetime(2026, 11, 25, 3, 0, tzinfo=UTC)),
        ("in_progress", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
        ("answered", datetime(2026, 12, 1, 3, 0, tzinfo=UTC)),
        ("closed", datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),
        closed=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
    )  # fmt: skip
    assert await _answered_on(config, executor, case) == date(2026, 12, 1)


async def test_a_closed_case_without_an_answer_move_gives_the_day_it_closed(
    config: HotlineConfig, executor: DbExecutor
) -> None:
    closed = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    case = _case("25071236", "closed", closed=closed)
    assert await _answered_on(config, executor, case) == date(2026, 12, 4)


async def test_an_open_case_has_no_answer_day(config: HotlineConfig, executor: DbExecutor) -> None:
    case = _case("25071237", "in_progress", ("answered", datetime(2026, 11, 25, tzinfo=UTC)))
    assert await _answered_on(config, executor, case) is None
