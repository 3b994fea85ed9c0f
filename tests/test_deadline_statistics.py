"""On-time statistics as a district reports them: cases closed on time, closed
late, open within the deadline and open past it, per topic and in total, with
the on-time rate; on the page, in its JSON API and in its CSV/XLSX export. The
case's free-text unit is not the report's: per unit it counts the forwards
(tests/test_report_units.py), and these cases were never forwarded.

The clock is fixed: the report is judged as of the period's last day (a date
long past), so the figures never depend on when the test runs."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import update

from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig
from ivr.web.statistics_store import statistics
from tests.rig.console import Account, console_sessions
from tests.test_web import PASSWORD, Console, FakeManager, _config, _read_xlsx

pytestmark = pytest.mark.db

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
RECEIVED = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # Monday 2 March 2026, 10:00 in Hà Nội
AS_OF = date(2026, 3, 20)  # the period's last day: the report's "today"


def at(day: date) -> datetime:
    """Noon in Hà Nội on ``day``."""
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC)


# (unit, due date, closed on or None): what each case looks like as of AS_OF.
CASES = [
    ("van-phong", date(2026, 3, 10), date(2026, 3, 9)),  # closed on time
    ("van-phong", date(2026, 3, 10), date(2026, 3, 10)),  # closed on its due day: on time
    ("van-phong", date(2026, 3, 10), date(2026, 3, 12)),  # closed late
    ("van-phong", date(2026, 3, 25), None),  # open, within the deadline
    ("van-phong", date(2026, 3, 20), None),  # open, due today: still within
    ("van-phong", date(2026, 3, 16), None),  # open, past the deadline
    ("noi-vu", date(2026, 3, 16), date(2026, 3, 27)),  # closed after AS_OF: open then, overdue
    ("noi-vu", date(2026, 3, 23), None),  # open, within
    (None, date(2026, 3, 11), date(2026, 3, 11)),  # no unit yet: closed on time
]


def seed(sessions: Any, config: HotlineConfig) -> list[str]:
    service = CaseService(sessions, config, clock=lambda: RECEIVED)
    codes = []
    for number, (unit, due, closed) in enumerate(CASES):
        case = service.open_case(
            channel="phone",
            hotline_id=config.hotlines[0].id,
            caller_number=f"+849120000{number:02d}",
        )
        codes.append(case.code)
        with sessions.begin() as session:
            session.execute(
                update(Case)
                .where(Case.code == case.code)
                .values(
                    responsible_unit=unit,
                    due_date=due,
                    closed_at=at(closed) if closed else None,
                    status="closed" if closed else "in_progress",
                )
            )
    return codes


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return _config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("giamsat", "supervisor"),
        password=PASSWORD,
    ) as factory:
        seed(factory, config)
        yield factory


def row(unit: str, on_time: int, late: int, in_deadline: int, overdue: int) -> dict[str, Any]:
    decided = on_time + late + overdue
    return {
        "unit": unit,
        "on_time": on_time,
        "late": late,
        "in_deadline": in_deadline,
        "overdue": overdue,
        "total": on_time + late + in_deadline + overdue,
        "on_time_rate": round(100 * on_time / decided, 1) if decided else None,
    }


EXPECTED_TOTAL = row("", 3, 1, 3, 2)
# None of the cases has a topic: one row, the same as the total.
EXPECTED_TOPICS = [{"topic": "-", **{k: v for k, v in EXPECTED_TOTAL.items() if k != "unit"}}]


def test_each_case_is_on_time_late_within_or_past_its_deadline(sessions: Any) -> None:
    figures = statistics(
        sessions, date(2026, 3, 1), AS_OF, ZONE, today=date(2026, 12, 31)
    )  # today later than the period: judged as of the period's end
    deadlines = figures["deadlines"]
    assert deadlines["as_of"] == "2026-03-20"
    assert deadlines["topics"] == EXPECTED_TOPICS
    assert deadlines["total"] == EXPECTED_TOTAL
    assert deadlines["total"]["on_time_rate"] == 50.0  # 3 of 6 decided
    # Nothing forwarded: no unit row, whatever the cases' free-text unit says.
    assert deadlines["units"] == [] and figures["cases_by_unit"] == []


def test_a_period_not_yet_over_is_judged_as_of_today(sessions: Any) -> None:
    # Today is 12 March: the case closed on the 12th is late, the one due on the
    # 16th is still within its deadline, the one due on the 10th is not.
    figures = statistics(
        sessions, date(2026, 3, 1), date(2026, 3, 31), ZONE, today=date(2026, 3, 12)
    )
    deadlines = figures["deadlines"]
    assert deadlines["as_of"] == "2026-03-12"
    assert deadlines["total"] == row("", 3, 1, 5, 0)


def test_no_case_decided_yet_has_no_rate(sessions: Any) -> None:
    figures = statistics(sessions, date(2026, 3, 1), AS_OF, ZONE, today=date(2026, 3, 2))
    assert figures["deadlines"]["total"]["on_time"] == 0
    assert figures["deadlines"]["total"]["on_time_rate"] is None


@pytest_asyncio.fixture(loop_scope="session")
async def console(config: HotlineConfig, sessions: Any) -> AsyncIterator[Console]:
    running = Console(config, sessions, FakeManager(config))
    await running.start()
    try:
        yield running
    finally:
        for client in running.clients:
            await client.close()
        assert running.server is not None
        await running.server.close()


PERIOD = {"from": "2026-03-01", "to": AS_OF.isoformat()}
HEADERS_VI = [
    "Lĩnh vực",
    "Đã giải quyết đúng hạn",
    "Đã giải quyết trễ hạn",
    "Đang giải quyết, trong hạn",
    "Đang giải quyết, quá hạn",
    "Tổng cộng",
    "Tỷ lệ đúng hạn (%)",
]


async def test_the_json_api_carries_the_deadline_report(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    figures = await (await supervisor.get("/api/v1/stats", params=PERIOD)).json()
    # (per ward and per topic: tests/test_report_on_time.py)
    assert {k: figures["deadlines"][k] for k in ("as_of", "topics", "total")} == {
        "as_of": "2026-03-20",
        "topics": EXPECTED_TOPICS,
        "total": EXPECTED_TOTAL,
    }


async def test_the_page_shows_the_report_in_vietnamese(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    html = await (await supervisor.get("/stats", params=PERIOD)).text()
    assert "tính đến ngày 2026-03-20" in html.split('id="deadlines"', 1)[1]
    table = html.split('id="deadlines-topics"', 1)[1].split("</section>", 1)[0]
    for header in HEADERS_VI:
        assert f"<th>{header}</th>" in table
    # The row of cases without a topic, then the total row with the rate.
    assert (
        "<tr><td>Chưa phân lĩnh vực</td><td>3</td><td>1</td><td>3</td><td>2</td><td>9</td>" in table
    )
    assert (
        "<th>Tổng cộng</th><td>3</td><td>1</td><td>3</td><td>2</td><td>9</td><td>50.0</td>" in table
    )
    assert '<div class="tile" id="on-time-rate"><b>50.0 %</b>Tỷ lệ đúng hạn</div>' in html


async def test_the_csv_and_xlsx_exports_carry_the_report(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    topics = {**PERIOD, "table": "deadlines", "by": "topic"}
    answer = await supervisor.get("/stats.csv", params=topics)
    assert answer.status == 200
    assert 'filename="deadlines-topic.csv"' in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert rows[0] == HEADERS_VI
    assert rows[1:] == [
        ["Chưa phân lĩnh vực", "3", "1", "3", "2", "9", "50.0"],
        ["Tổng cộng", "3", "1", "3", "2", "9", "50.0"],
    ]
    workbook = await supervisor.get("/stats.xlsx", params=topics)
    sheet = _read_xlsx(await workbook.read())
    assert list(sheet[0]) == HEADERS_VI
    assert list(sheet[-1]) == ["Tổng cộng", 3, 1, 3, 2, 9, 50]
    # The calls-per-day export is unchanged.
    plain = await supervisor.get("/stats.csv", params=PERIOD)
    assert (await plain.read()).decode("utf-8-sig").splitlines()[0] == "day,calls"
