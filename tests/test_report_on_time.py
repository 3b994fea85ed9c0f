"""The on-time report per ward and per topic (issue 13), checked against a
brute-force recomputation from the cases' histories.

Sixty cases of two hotlines (the combined example) live seeded random lives
through :class:`CaseService` on a fixed clock: received in late February,
March or early April 2026, classified (which may change the topic and the
deadline), assigned, answered and closed, rejected (and sometimes closed
after), or left open. The test then forgets how it made them and recounts
from the database: the day each case was received (its ``opened`` event),
the day it was first closed or rejected (its first status event into one of
those), its due date, ward and topic. The report must give the same counts
per ward and per topic, for the whole deployment and for one
hotline's supervisor (statistics page, its JSON API and exports, and the
printable monthly report)."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from ivr.cases.models import Case, CaseEvent
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.web.statistics_store import monthly_report, statistics
from tests.rig.console import Account, console_sessions
from tests.rig.postgres import fresh_database_url
from tests.test_web import PASSWORD, Console, FakeManager, _read_xlsx

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
COMBINED = ROOT / "examples" / "combined.yaml"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
HOTLINES = ("tong-dai-1022", "thanh-xuan")
WARDS = ("phuong-thanh-xuan", "phuong-cau-giay", "xa-soc-son", "phuong-tay-ho", None)
UNITS = ("phuong-thanh-xuan", "phuong-cau-giay", "so-xay-dung", "cong-an-thanh-pho")
DONE = ("closed", "rejected")
FIRST_DAY = date(2026, 2, 20)


def _config(tmp_path: Path) -> HotlineConfig:
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    for name in ("prompts", "recordings", "routing_table"):
        data["paths"][name] = str(tmp_path / name)
    data["web"] = {"cookie_secure": False, "login_attempts": 3}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def live(sessions: Any, config: HotlineConfig, count: int = 60, seed: int = 13) -> None:
    """``count`` cases with seeded random lives, in time order per case."""
    rng = random.Random(seed)
    clock = Clock()
    service = CaseService(sessions, config, clock=clock)
    topics = [t.code for t in config.cases.topics]
    for number in range(count):
        received = datetime.combine(
            FIRST_DAY + timedelta(days=rng.randrange(50)), datetime.min.time(), ZONE
        ) + timedelta(hours=rng.choice((1, 8, 10, 15, 23)))  # 01:00 and 23:00 cross UTC days
        clock.now = received.astimezone(UTC)
        case = service.open_case(
            channel="phone",
            hotline_id=rng.choice(HOTLINES),
            caller_number=f"+8491200{number:04d}",
            area_code=rng.choice(WARDS),
            topic=rng.choice([*topics, None]),
            actor="dtv",
        )
        code = case.code

        def later(low: float, high: float) -> None:
            clock.now += timedelta(days=rng.uniform(low, high))

        fate = rng.random()
        if rng.random() < 0.6:
            later(0, 1)
            service.classify(
                code, topic=rng.choice(topics), severity=rng.choice(("normal", "urgent")),
                actor="gs",
            )  # fmt: skip
        if fate < 0.15:
            later(0, 25)
            service.change_status(code, "rejected", "gs", note="Không thuộc thẩm quyền")
            if rng.random() < 0.6:
                later(0, 20)  # closed later: the case was done when it was rejected
                service.change_status(code, "closed", "gs")
            continue
        if rng.random() < 0.85:
            later(0, 2)
            service.assign(code, rng.choice(UNITS), "gs")
        if fate < 0.3:
            continue  # left open
        later(0, 3)
        service.change_status(code, "in_progress", "dtv")
        if fate < 0.45:
            continue
        later(0, 25)
        service.change_status(code, "answered", "dtv", note="Đã trả lời công dân.")
        if fate < 0.55:
            continue  # answered, not yet closed: still open for the report
        later(0, 5)
        service.change_status(code, "closed", "gs")


def recount(
    sessions: Any, day_from: date, day_to: date, as_of: date, hotline: str | None = None
) -> dict[str, dict[str, Counter[str]]]:
    """The four counts per ward, topic and unit, from each case's history."""
    with sessions() as session:
        cases = {c.id: c for c in session.scalars(select(Case))}
        events = list(session.scalars(select(CaseEvent).order_by(CaseEvent.at, CaseEvent.id)))
    opened: dict[int, date] = {}
    done: dict[int, date] = {}
    for event in events:
        local_day = event.at.astimezone(ZONE).date()
        if event.action == "opened":
            opened[event.case_id] = local_day
        if event.action == "status" and event.to_status in DONE:
            done.setdefault(event.case_id, local_day)  # the first: CLOSED/REJECTED stay done
    groups: dict[str, dict[str, Counter[str]]] = {"areas": {}, "topics": {}, "units": {}}
    for case_id, case in cases.items():
        if not day_from <= opened[case_id] <= day_to:
            continue
        if hotline is not None and case.hotline_id != hotline:
            continue
        finished = done.get(case_id)
        if finished is not None and finished <= as_of:
            kind = "on_time" if finished <= case.due_date else "late"
        else:
            kind = "in_deadline" if as_of <= case.due_date else "overdue"
        for name, key in (("areas", case.area_code), ("topics", case.topic),
                          ("units", case.responsible_unit)):  # fmt: skip
            groups[name].setdefault(key or "-", Counter())[kind] += 1
    return groups


def as_counts(rows: list[dict[str, Any]], key: str) -> dict[str, Counter[str]]:
    return {
        row[key]: Counter(
            {k: row[k] for k in ("on_time", "late", "in_deadline", "overdue") if row[k]}
        )
        for row in rows
    }


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return _config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("giamsat", "supervisor"),
        Account("gs-tx", "supervisor", hotline_id="thanh-xuan"),
        password=PASSWORD,
    ) as factory:
        live(factory, config)
        yield factory


def test_the_lives_cover_every_kind_of_case(sessions: Any) -> None:
    # The recount is only a proof if each of the four kinds, a rejected case
    # closed later, and cases without ward or topic occur in March.
    groups = recount(sessions, date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31))
    kinds = sum(groups["topics"].values(), Counter())
    assert all(kinds[k] >= 3 for k in ("on_time", "late", "in_deadline", "overdue")), kinds
    assert "-" in groups["areas"] and "-" in groups["units"]
    with sessions() as session:
        rejected_then_closed = session.scalars(
            select(CaseEvent.case_id).where(CaseEvent.from_status == "rejected")
        ).all()
    assert rejected_then_closed


@pytest.mark.parametrize("today", [date(2026, 12, 31), date(2026, 3, 18)])
def test_monthly_report_per_ward_and_topic_equals_the_recount(sessions: Any, today: date) -> None:
    report = monthly_report(sessions, 2026, 3, ZONE, today=today)
    as_of = min(today, date(2026, 3, 31))
    assert report["month"] == "2026-03"
    assert report["deadlines"]["as_of"] == as_of.isoformat()
    expected = recount(sessions, date(2026, 3, 1), date(2026, 3, 31), as_of)
    assert as_counts(report["deadlines"]["areas"], "area") == expected["areas"]
    assert as_counts(report["deadlines"]["topics"], "topic") == expected["topics"]
    # (per unit the report counts forwards: tests/test_report_units.py)
    assert report["cases"] == sum(sum(c.values()) for c in expected["areas"].values())


def test_one_hotlines_report_counts_only_its_cases(sessions: Any) -> None:
    report = monthly_report(
        sessions, 2026, 3, ZONE, hotline_id="thanh-xuan", today=date(2026, 4, 2)
    )
    expected = recount(
        sessions, date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31), "thanh-xuan"
    )
    assert as_counts(report["deadlines"]["areas"], "area") == expected["areas"]
    assert as_counts(report["deadlines"]["topics"], "topic") == expected["topics"]
    everyone = monthly_report(sessions, 2026, 3, ZONE, today=date(2026, 4, 2))
    assert 0 < report["cases"] < everyone["cases"]


def test_statistics_over_any_period_equal_the_recount(sessions: Any) -> None:
    day_from, day_to = date(2026, 2, 25), date(2026, 3, 20)
    figures = statistics(sessions, day_from, day_to, ZONE, today=date(2026, 3, 25))
    expected = recount(sessions, day_from, day_to, day_to)
    deadlines = figures["deadlines"]
    assert as_counts(deadlines["areas"], "area") == expected["areas"]
    assert as_counts(deadlines["topics"], "topic") == expected["topics"]
    total = sum(expected["topics"].values(), Counter())
    decided = total["on_time"] + total["late"] + total["overdue"]
    assert deadlines["total"]["on_time_rate"] == round(100 * total["on_time"] / decided, 1)
    for row in deadlines["areas"]:
        kinds = expected["areas"][row["area"]]
        settled = kinds["on_time"] + kinds["late"] + kinds["overdue"]
        rate = round(100 * kinds["on_time"] / settled, 1) if settled else None
        assert row["on_time_rate"] == rate
        assert row["total"] == sum(kinds.values())


# --- the console: page, JSON, exports, printable month ------------------------------


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


PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


async def test_the_json_api_and_exports_carry_wards_and_topics(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    figures = await (await supervisor.get("/api/v1/stats", params=PERIOD)).json()
    expected = recount(console.sessions, date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31))
    assert as_counts(figures["deadlines"]["areas"], "area") == expected["areas"]
    assert as_counts(figures["deadlines"]["topics"], "topic") == expected["topics"]

    answer = await supervisor.get(
        "/stats.csv", params={**PERIOD, "table": "deadlines", "by": "area"}
    )
    assert answer.status == 200
    assert 'filename="deadlines-area.csv"' in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "Phường, xã"
    by_name = {row[0]: row for row in rows[1:]}
    cau_giay = expected["areas"]["phuong-cau-giay"]
    assert by_name["Phường Cầu Giấy"][1:5] == [
        str(cau_giay[k]) for k in ("on_time", "late", "in_deadline", "overdue")
    ]
    assert "Chưa có phường, xã" in by_name  # cases without a ward
    assert rows[-1][0] == "Tổng cộng"

    workbook = await supervisor.get(
        "/stats.xlsx", params={**PERIOD, "table": "deadlines", "by": "topic"}
    )
    sheet = _read_xlsx(await workbook.read())
    assert sheet[0][0] == "Lĩnh vực"
    topics = {row[0]: row for row in sheet[1:]}
    on_site = expected["topics"]["hien-truong"]
    assert list(topics["Sự việc tại hiện trường"][1:5]) == [
        on_site[k] for k in ("on_time", "late", "in_deadline", "overdue")
    ]


async def test_the_statistics_page_shows_ward_and_topic_tables(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    html = await (await supervisor.get("/stats", params=PERIOD)).text()
    wards = html.split('id="deadlines-areas"', 1)[1].split("</section>", 1)[0]
    topics = html.split('id="deadlines-topics"', 1)[1].split("</section>", 1)[0]
    assert "<th>Phường, xã</th>" in wards and "Phường Cầu Giấy" in wards
    assert "<th>Lĩnh vực</th>" in topics and "Sự việc tại hiện trường" in topics
    assert 'href="/stats/monthly?month=2026-03"' in html


async def test_the_printable_monthly_report_renders_the_month_asked(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    answer = await supervisor.get("/stats/monthly", params={"month": "2026-03"})
    assert answer.status == 200
    html = await answer.text()
    report = html.split('id="monthly-report"', 1)[1]
    assert 'data-month="2026-03"' in html.split("<article", 1)[1]
    assert "Báo cáo giải quyết đúng hạn tháng 03/2026" in report
    assert "Phản ánh tiếp nhận từ 2026-03-01 đến 2026-03-31" in report
    assert "Tất cả đường dây" in report  # an unlimited supervisor, no hotline chosen
    assert 'id="generated-at"' in report and "Lập lúc" in report
    for section in ("monthly-units", "monthly-areas", "monthly-topics"):
        assert f'id="{section}"' in report
    expected = recount(console.sessions, date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31))
    total = sum(expected["topics"].values(), Counter())
    cells = "".join(f"<td>{total[k]}</td>" for k in ("on_time", "late", "in_deadline", "overdue"))
    assert f"<th>Tổng cộng</th>{cells}" in report.split('id="monthly-areas"', 1)[1]
    # The month picker and the print button are screen-only.
    assert 'class="inline noprint" id="month-picker"' in html
    assert 'type="month" name="month" value="2026-03"' in html

    april = await (await supervisor.get("/stats/monthly", params={"month": "2026-04"})).text()
    assert "tháng 04/2026" in april and "2026-04-01 đến 2026-04-30" in april

    one = await (
        await supervisor.get("/stats/monthly", params={"month": "2026-03", "hotline": "thanh-xuan"})
    ).text()
    assert "Đường dây nóng" in one.split('class="hotline-name"', 1)[1].split("</p>", 1)[0]


async def test_a_hotlines_supervisor_reports_only_their_hotline(console: Console) -> None:
    supervisor, _ = await console.signed_in("gs-tx")
    # Asking for all hotlines, or another one, still gives Thanh Xuân's.
    for params in ({"month": "2026-03"}, {"month": "2026-03", "hotline": "tong-dai-1022"}):
        report = await (await supervisor.get("/api/v1/stats/monthly", params=params)).json()
        assert report["hotline"] == "thanh-xuan"
        expected = recount(
            console.sessions, date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31), "thanh-xuan"
        )
        assert as_counts(report["deadlines"]["areas"], "area") == expected["areas"]
    html = await (await supervisor.get("/stats/monthly", params={"month": "2026-03"})).text()
    name = next(h.name for h in console.config.hotlines if h.id == "thanh-xuan")
    assert name in html.split('class="hotline-name"', 1)[1].split("</p>", 1)[0]
    assert 'name="hotline"' not in html  # no hotline picker for them
