"""The on-time report per responsible unit (issue 13), counted on the forwards
and checked against a recount from the forwards' histories.

Forty cases of two hotlines (the combined example, plus one unit of the 1022
line) are forwarded through :class:`ForwardingService` on a fixed clock to one,
two or three units each, sent from late February to early April 2026 (some at
00:30 and 23:30 in Hà Nội, a UTC day away). Each forward lives one fate: answered
well before its due date, on the due date itself, at 00:30 the day after it,
weeks later, after an extension granted (within or after the new date), after
an extension refused, returned as not the unit's (and sometimes forwarded to it
again), answered only in April, or left open.

The recount forgets the rows' columns and reads each forward's history
(``forward_events``): the last ``sent`` event gives the day it was received
and, with the ``extension_granted`` events after it, its due date (their notes
carry the dates); the status events after it give the day it was answered or
returned. The rules, as a district reads them: received in the period by the
day sent; answered on time when on or before the due date after any granted
extension, late otherwise; returned ones in their own column and out of the
rate; the others open within or past the deadline as of the report's day (the
period's last day, or today when earlier). The statistics page, its CSV/XLSX
export (``by=unit``), its JSON API, the monthly report and its JSON must all
equal the recount, for everyone and for one hotline's supervisor."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from ivr.cases.forwarding import ForwardingService, ForwardRequest
from ivr.cases.models import Case, CaseForward, ForwardEvent
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
THANH_XUAN = ("ubnd-phuong-thanh-xuan", "phong-kinh-te-ha-tang", "cong-an-thanh-xuan")
LINE_1022 = "so-tai-nguyen-moi-truong"  # added here: the combined example has none for 1022
LINE_1022_NAME = "Sở Tài nguyên và Môi trường"
GONE = "cong-an-thanh-xuan"  # left out of the console's config: shown by its code
FATES = ("early", "due_day", "day_after", "weeks_late", "extended", "extended_late",
         "refused", "returned", "returned_again", "april", "open")  # fmt: skip
KINDS = ("on_time", "late", "in_deadline", "overdue", "returned")
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def _config(
    tmp_path: Path, drop: str | None = None, name: str = "hotline.yaml", url: str | None = None
) -> HotlineConfig:
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    data["database"]["url"] = url or fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    for folder in ("prompts", "recordings", "routing_table"):
        data["paths"][folder] = str(tmp_path / folder)
    data["web"] = {"cookie_secure": False, "login_attempts": 3}
    data["units"].append(
        {"code": LINE_1022, "name": LINE_1022_NAME, "kind": "department",
         "email": "vanthu@stnmt.example", "hotline": "tong-dai-1022"}
    )  # fmt: skip
    data["units"] = [u for u in data["units"] if u["code"] != drop]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


def live(sessions: Any, config: HotlineConfig, count: int = 40, seed: int = 13) -> None:
    """``count`` cases forwarded with seeded fates. Every action is queued with
    its time and the queue is played in time order, so the clock only moves on."""
    rng = random.Random(seed)
    clock = Clock()
    cases = CaseService(sessions, config, clock=clock)
    forwarding = ForwardingService(sessions, config, cases, clock=clock)
    queue: list[tuple[datetime, int, Callable[[], None]]] = []

    def at(when: datetime, action: Callable[[], None]) -> None:
        queue.append((when, len(queue), action))

    def forward_of(code: str, unit: str) -> CaseForward:
        with sessions() as session:
            return session.scalars(
                select(CaseForward).join(Case).where(Case.code == code,
                                                     CaseForward.unit_code == unit)
            ).one()  # fmt: skip

    def fate_of(code: str, unit: str, sent: datetime, fate: str) -> None:
        forward = forward_of(code, unit)
        due = forward.due_date
        answer = lambda: forwarding.answer(forward.id, "Đã xử lý.", "vt", unit)  # noqa: E731
        if fate == "early":
            at(sent + timedelta(hours=rng.uniform(2, 60)), answer)
        elif fate == "due_day":
            at(local(due, 16), answer)
        elif fate == "day_after":
            at(local(due + timedelta(days=1), 0, 30), answer)  # still the due date in UTC
        elif fate == "weeks_late":
            at(local(due + timedelta(days=rng.randrange(3, 20)), 9), answer)
        elif fate in ("extended", "extended_late", "refused"):
            days = rng.randrange(3, 8)
            at(sent + timedelta(hours=20), lambda: forwarding.request_extension(
                forward.id, days, "Cần xác minh hiện trường", "vt", unit))  # fmt: skip
            at(sent + timedelta(hours=30), lambda: forwarding.decide_extension(
                forward.id, grant=fate != "refused", actor="gs"))  # fmt: skip
            # After the first due date: within a granted extension, past a refused one.
            answered = due + timedelta(days=1 if fate != "extended_late" else days + 12)
            at(local(answered, 10), answer)
        elif fate in ("returned", "returned_again"):
            returned = sent + timedelta(hours=rng.uniform(3, 70))
            at(returned, lambda: forwarding.return_not_ours(
                forward.id, "Không thuộc thẩm quyền", "vt", unit))  # fmt: skip
            if fate == "returned_again":
                again = returned + timedelta(days=rng.uniform(1, 6))

                def forward_again() -> None:
                    forwarding.forward(code, [ForwardRequest(unit, rng.choice((3, 5)))], "gs")
                    fate_of(code, unit, again, rng.choice(("early", "weeks_late", "open")))

                at(again, forward_again)
        elif fate == "returned_later":  # two days on: after the report's day in the tests
            at(sent + timedelta(days=2, hours=1), lambda: forwarding.return_not_ours(
                forward.id, "Không thuộc thẩm quyền", "vt", unit))  # fmt: skip
        elif fate == "april":
            at(local(date(2026, 4, 20), 9), answer)
        # "open": never answered.

    # Returned after the report's day (18 and 31 March): still open on it.
    fixed = [(local(date(2026, 3, 17), 9), ["returned_later", "early"]),
             (local(date(2026, 3, 30), 23, 30), ["returned_later", "open"])]  # fmt: skip
    for number in range(count + len(fixed)):
        hotline = "tong-dai-1022" if number % 4 == 0 else "thanh-xuan"
        day = date(2026, 2, 20) + timedelta(days=rng.randrange(45))
        sent = local(day, *rng.choice(((0, 30), (9, 0), (14, 0), (23, 30))))
        units = [LINE_1022] if hotline == "tong-dai-1022" else rng.sample(
            THANH_XUAN, rng.randint(1, 3))  # fmt: skip
        fates = [FATES[(number + n) % len(FATES)] if n == 0 else rng.choice(FATES)
                 for n in range(len(units))]  # fmt: skip
        if number >= count:
            hotline, (sent, fates) = "thanh-xuan", fixed[number - count]
            units = list(THANH_XUAN[: len(fates)])

        def open_and_forward(
            hotline: str = hotline, sent: datetime = sent, units: list[str] = units,
            fates: list[str] = fates, number: int = number,
        ) -> None:  # fmt: skip
            code = cases.open_case(
                channel="phone", hotline_id=hotline, caller_number=f"+8491300{number:04d}",
                actor="dtv",
            ).code  # fmt: skip
            requests = [ForwardRequest(u, rng.choice((3, 5, 10))) for u in units]
            forwarding.forward(code, requests, "gs")
            for unit, fate in zip(units, fates, strict=True):
                fate_of(code, unit, sent, fate)

        at(sent, open_and_forward)
    while queue:
        queue.sort(key=lambda item: (item[0], item[1]))
        when, _, action = queue.pop(0)
        clock.now = when
        action()


# --- the recount, from the histories only ------------------------------------------

DUE = re.compile(r"due (?:\d{4}-\d\d-\d\d → )?(\d{4}-\d\d-\d\d)")


def recount(
    sessions: Any, day_from: date, day_to: date, as_of: date, hotline: str | None = None
) -> dict[str, Counter[str]]:
    """Per unit: ``received`` and the five kinds, from ``forward_events``."""
    with sessions() as session:
        owners = {k: v for k, v in session.execute(select(Case.id, Case.hotline_id))}
        forwards = {k: v for k, v in session.execute(select(CaseForward.id, CaseForward.case_id))}
        units = {k: v for k, v in session.execute(select(CaseForward.id, CaseForward.unit_code))}
        events = list(session.scalars(select(ForwardEvent).order_by(ForwardEvent.id)))
    history: dict[int, list[ForwardEvent]] = {}
    for event in events:
        history.setdefault(event.forward_id, []).append(event)
    counts: dict[str, Counter[str]] = {}
    for forward_id, steps in history.items():
        if hotline is not None and owners[forwards[forward_id]] != hotline:
            continue
        last_sent = max(i for i, e in enumerate(steps) if e.action == "sent")
        steps = steps[last_sent:]  # a return and a new sending start afresh
        sent_day = steps[0].at.astimezone(ZONE).date()
        if not day_from <= sent_day <= day_to:
            continue
        due = None
        answered = returned = None
        for event in steps:
            if event.action in ("sent", "extension_granted"):
                found = DUE.search(event.note)
                assert found, event.note
                due = date.fromisoformat(found.group(1))
            if event.status_to == "answered":
                answered = event.at.astimezone(ZONE).date()
            if event.status_to == "returned":
                returned = event.at.astimezone(ZONE).date()
        assert due is not None
        if answered is not None and answered <= as_of:
            kind = "on_time" if answered <= due else "late"
        elif returned is not None and returned <= as_of:
            kind = "returned"
        else:
            kind = "in_deadline" if as_of <= due else "overdue"
        unit = counts.setdefault(units[forward_id], Counter())
        unit[kind] += 1
        unit["received"] += 1
    return counts


def rate(counts: Counter[str]) -> float | None:
    decided = counts["on_time"] + counts["late"] + counts["overdue"]
    return round(100 * counts["on_time"] / decided, 1) if decided else None


def as_counts(rows: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    return {
        row["unit"]: Counter({k: row[k] for k in ("received", *KINDS) if row[k]}) for row in rows
    }


def check_report(deadlines: dict[str, Any], expected: dict[str, Counter[str]]) -> None:
    assert as_counts(deadlines["units"]) == expected
    for row in deadlines["units"]:
        assert row["on_time_rate"] == rate(expected[row["unit"]]), row
    total = sum(expected.values(), Counter())
    assert {k: deadlines["unit_total"][k] for k in ("received", *KINDS)} == {
        k: total[k] for k in ("received", *KINDS)
    }
    assert deadlines["unit_total"]["on_time_rate"] == rate(total)


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


def test_the_forwards_cover_every_kind_and_edge(sessions: Any) -> None:
    # The recount proves something only if March holds each kind for several
    # units, a forward sent twice, extensions and answers across UTC midnight.
    expected = recount(sessions, *MARCH, MARCH[1])
    total = sum(expected.values(), Counter())
    assert all(total[k] >= 2 for k in KINDS), total
    assert len(expected) >= 4, expected  # three Thanh Xuân units and the 1022 one
    assert sum(1 for c in expected.values() if c["on_time"] and c["late"]) >= 2
    with sessions() as session:
        actions = Counter(session.scalars(select(ForwardEvent.action)))
        resent = session.scalars(
            select(ForwardEvent.id).where(ForwardEvent.status_from == "returned")
        ).all()
        answers = session.scalars(
            select(CaseForward.answered_at).where(CaseForward.answered_at.is_not(None))
        ).all()
    assert actions["extension_granted"] >= 2 and actions["extension_refused"] >= 1, actions
    assert resent
    # Some forwards were returned after the day a report is judged on.
    for as_of in (date(2026, 3, 18), MARCH[1]):
        later = recount(sessions, *MARCH, as_of)
        assert sum(c["returned"] for c in later.values()) < sum(
            c["returned"] for c in recount(sessions, *MARCH, as_of + timedelta(days=5)).values()
        )
    # 00:30 in Hà Nội is still the day before in UTC: the report must use the local day.
    assert any(a.astimezone(ZONE).date() != a.astimezone(UTC).date() for a in answers)


@pytest.mark.parametrize("today", [date(2026, 12, 31), date(2026, 3, 18)])
def test_the_monthly_report_per_unit_equals_the_recount(sessions: Any, today: date) -> None:
    report = monthly_report(sessions, 2026, 3, ZONE, today=today)
    as_of = min(today, MARCH[1])
    assert report["deadlines"]["as_of"] == as_of.isoformat()
    expected = recount(sessions, *MARCH, as_of)
    check_report(report["deadlines"], expected)
    assert report["forwards"] == sum(c["received"] for c in expected.values())


def test_the_statistics_over_any_period_equal_the_recount(sessions: Any) -> None:
    day_from, day_to = date(2026, 2, 25), date(2026, 3, 20)
    figures = statistics(sessions, day_from, day_to, ZONE, today=date(2026, 3, 25))
    expected = recount(sessions, day_from, day_to, day_to)
    check_report(figures["deadlines"], expected)
    # The chart's split: on time, and late with the overdue ones.
    assert figures["cases_by_unit"] == [
        (unit, c["on_time"], c["late"] + c["overdue"])
        for unit, c in sorted(expected.items())
        if c["on_time"] or c["late"] or c["overdue"]
    ]


def test_a_hotlines_report_counts_only_its_forwards(sessions: Any) -> None:
    report = monthly_report(
        sessions, 2026, 3, ZONE, hotline_id="thanh-xuan", today=date(2026, 4, 2)
    )
    expected = recount(sessions, *MARCH, MARCH[1], "thanh-xuan")
    check_report(report["deadlines"], expected)
    assert LINE_1022 not in expected
    figures = statistics(sessions, *MARCH, ZONE, ("tong-dai-1022", []), today=date(2026, 4, 2))
    check_report(figures["deadlines"], recount(sessions, *MARCH, MARCH[1], "tong-dai-1022"))
    assert [row["unit"] for row in figures["deadlines"]["units"]] == [LINE_1022]


# --- the console: page, exports, JSON, printable month -----------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def console(tmp_path: Path, config: HotlineConfig, sessions: Any) -> AsyncIterator[Console]:
    # A unit since removed from the config keeps its rows, shown by its code.
    shown = _config(tmp_path, drop=GONE, name="console.yaml", url=config.database_url)
    running = Console(shown, sessions, FakeManager(shown))
    await running.start()
    try:
        yield running
    finally:
        for client in running.clients:
            await client.close()
        assert running.server is not None
        await running.server.close()


PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}
HEADERS_VI = [
    "Đơn vị",
    "Tiếp nhận",
    "Trả lời đúng hạn",
    "Trả lời trễ hạn",
    "Đang giải quyết, trong hạn",
    "Đang giải quyết, quá hạn",
    "Trả lại (không thuộc thẩm quyền)",
    "Tỷ lệ đúng hạn (%)",
]
NAMES = {
    "ubnd-phuong-thanh-xuan": "Ủy ban nhân dân phường Thanh Xuân",
    "phong-kinh-te-ha-tang": "Phòng Kinh tế, Hạ tầng và Đô thị",
    GONE: GONE,
    LINE_1022: LINE_1022_NAME,
}


def table_rows(expected: dict[str, Counter[str]]) -> list[list[str]]:
    """The per-unit table as exported, ordered by unit code, then the total."""
    rows = []
    total = sum(expected.values(), Counter())
    for name, counts in [*((NAMES[u], expected[u]) for u in sorted(expected)),
                         ("Tổng cộng", total)]:  # fmt: skip
        share = rate(counts)
        rows.append([name, *(str(counts[k]) for k in ("received", *KINDS[:4], "returned")),
                     "" if share is None else str(share)])  # fmt: skip
    return rows


def html_rows(html: str) -> list[list[str]]:
    table = html.split('id="unit-table"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    found = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[cell.strip() for cell in re.findall(r"<t[dh]>(.*?)</t[dh]>", row)] for row in found]


async def test_the_page_json_and_exports_give_the_recount(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    expected = recount(console.sessions, *MARCH, MARCH[1])
    wanted = table_rows(expected)

    figures = await (await supervisor.get("/api/v1/stats", params=PERIOD)).json()
    check_report(figures["deadlines"], expected)

    html = await (await supervisor.get("/stats", params=PERIOD)).text()
    section = html.split('id="deadlines"', 1)[1].split("</section>", 1)[0]
    assert "tính đến ngày 2026-03-31" in section
    assert "".join(f"<th>{h}</th>" for h in HEADERS_VI) in section
    assert html_rows(section) == [[c or "–" for c in row] for row in wanted]
    # Wards and topics stay per case.
    assert 'id="deadlines-areas"' in html and 'id="deadlines-topics"' in html

    answer = await supervisor.get("/stats.csv", params={**PERIOD, "table": "deadlines",
                                                        "by": "unit"})  # fmt: skip
    assert 'filename="deadlines.csv"' in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert rows == [HEADERS_VI, *wanted]

    workbook = await supervisor.get("/stats.xlsx", params={**PERIOD, "table": "deadlines"})
    sheet = _read_xlsx(await workbook.read())
    assert list(sheet[0]) == HEADERS_VI
    assert [[str(c) if c is not None else "" for c in row] for row in sheet[1:]] == [
        [c.removesuffix(".0") for c in row] for row in wanted
    ]


async def test_the_monthly_report_and_its_json_give_the_recount(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    expected = recount(console.sessions, *MARCH, MARCH[1])
    report = await (
        await supervisor.get("/api/v1/stats/monthly", params={"month": "2026-03"})
    ).json()
    check_report(report["deadlines"], expected)
    html = await (await supervisor.get("/stats/monthly", params={"month": "2026-03"})).text()
    units = html.split('id="monthly-units"', 1)[1].split("</section>", 1)[0]
    assert html_rows(units) == [[c or "–" for c in row] for row in table_rows(expected)]
    forwards = sum(c["received"] for c in expected.values())
    assert f"đến 2026-03-31: {forwards} lượt chuyển" in units


async def test_a_hotlines_supervisor_sees_only_their_forwards(console: Console) -> None:
    supervisor, _ = await console.signed_in("gs-tx")
    expected = recount(console.sessions, *MARCH, MARCH[1], "thanh-xuan")
    figures = await (await supervisor.get("/api/v1/stats", params=PERIOD)).json()
    check_report(figures["deadlines"], expected)
    for params in ({"month": "2026-03"}, {"month": "2026-03", "hotline": "tong-dai-1022"}):
        report = await (await supervisor.get("/api/v1/stats/monthly", params=params)).json()
        check_report(report["deadlines"], expected)
    answer = await supervisor.get("/stats.csv", params={**PERIOD, "table": "deadlines"})
    rows = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert rows[1:] == table_rows(expected)
    assert LINE_1022_NAME not in await (await supervisor.get("/stats", params=PERIOD)).text()
