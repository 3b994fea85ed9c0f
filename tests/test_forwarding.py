"""Forwarding a case to the responsible units (issue 13): the config of units
and deadlines, the forward with its working-day deadlines, the moves a unit
and a supervisor may make, reminders and escalation once each, and the final
answer that reaches the citizen.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from ivr.cases.calendar import WorkingCalendar
from ivr.cases.forwarding import (
    TRANSITIONS,
    ForwardError,
    ForwardingSchedule,
    ForwardingService,
    ForwardNotFound,
    ForwardRequest,
    UnitEmail,
    due_checks,
    send_emails,
)
from ivr.cases.models import Case, CaseForward, ForwardEvent, SmsMessage
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.contracts.statuses import ForwardStatus
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.registry import Base
from ivr.service import start_services
from ivr.web.state import STATE
from tests.config_checks import config_problems as _problems
from tests.config_checks import line_of as _line_of
from tests.rig.postgres import fresh_database_url

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "thanh-xuan.yaml"
HOTLINE = "thanh-xuan"
WARD = "ubnd-phuong-thanh-xuan"  # ward committee: 3 working days below
DEPARTMENT = "phong-kinh-te-ha-tang"  # department: 5 working days below
WARD_SMS = "+84900000367"
# Tuesday 28 April 2026, 10:00 in Hà Nội; 30/4 and 1/5 are holidays in the example.
SENT = datetime(2026, 4, 28, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class FakeNotifier:
    """Stands in for the SMTP sender: records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def email(self, to: str, subject: str, text: str) -> None:
        self.sent.append((to, subject, text))


def _write(tmp_path: Path, edit: Any = None) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data["forwarding"] = {
        "by_kind": [
            {"kind": "ward_committee", "working_days": 3},
            {"kind": "department", "working_days": 5},
        ],
        "supervisor_emails": {HOTLINE: ["giamsat@thanh-xuan.example"]},
        "portal_base_url": "https://hotline.thanh-xuan.example",
    }
    if edit is not None:
        edit(data)
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(_write(tmp_path))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@dataclass
class Desk:
    clock: Clock
    cases: CaseService
    forwarding: ForwardingService
    sessions: Any
    config: HotlineConfig

    def open_case(self) -> str:
        case = self.cases.open_case(
            channel="phone", hotline_id=HOTLINE, caller_number="+84912000111",
            summary="Vỉa hè bị lấn chiếm trước số 10 phố Khương Trung", actor="tx01",
        )  # fmt: skip
        return case.code

    def forward_both(self, code: str) -> dict[str, CaseForward]:
        outcome = self.forwarding.forward(
            code, [ForwardRequest(WARD), ForwardRequest(DEPARTMENT)], "tx01"
        )
        return {f.unit_code: f for f in outcome.forwards}

    def case(self, code: str) -> Case:
        found = self.cases.find_by_code(code)
        assert found is not None
        return found

    def events(self, forward_id: int, action: str) -> list[ForwardEvent]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ForwardEvent).where(
                        ForwardEvent.forward_id == forward_id, ForwardEvent.action == action
                    )
                )
            )

    def sms(self, purpose: str) -> list[SmsMessage]:
        with self.sessions() as session:
            return list(session.scalars(select(SmsMessage).where(SmsMessage.purpose == purpose)))


@pytest.fixture
def desk(config: HotlineConfig, sessions: Any) -> Desk:
    clock = Clock(SENT)
    cases = CaseService(sessions, config, clock=clock)
    return Desk(clock, cases, ForwardingService(sessions, config, cases, clock=clock),
                sessions, config)  # fmt: skip


# --- config ---------------------------------------------------------------------------


def test_the_examples_units_belong_to_their_wards(config: HotlineConfig) -> None:
    ward = config.unit(WARD)
    assert ward is not None and ward.kind == "ward_committee"
    assert ward.area == "phuong-thanh-xuan" and config.area("phuong-thanh-xuan") is not None
    assert config.unit_owner(WARD) == HOTLINE
    assert [u.code for u in config.units_for(HOTLINE)][:2] == [WARD, "ubnd-phuong-khuong-dinh"]


def test_unit_problems_name_file_line_and_field(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["units"] += [
            {"code": "ubnd-phuong-xyz", "name": "UBND phường XYZ", "kind": "ward_committee",
             "area": "phuong-khong-co", "email": "a@xyz.example"},
            {"code": "ubnd-khong-phuong", "name": "UBND không phường", "kind": "ward_committee",
             "sms": "0900000001"},
            {"code": "so-khong-lien-lac", "name": "Sở không liên lạc", "kind": "agency",
             "hotline": "khong-co"},
            {"code": WARD, "name": "Trùng mã", "kind": "agency", "email": "b@x.example"},
        ]  # fmt: skip
        data["forwarding"]["by_topic"] = [{"topic": "khong-co-chu-de", "working_days": 2}]

    path = _write(tmp_path, edit)
    text = _problems(path)
    first = len(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["units"])
    assert (
        f"{path}:{_line_of(path, 'area: phuong-khong-co')}: units[{first}].area: "
        "unknown area 'phuong-khong-co'"
    ) in text
    assert f"units[{first + 1}].area: a ward committee needs the area (ward) it serves" in text
    assert f"{path}:{_line_of(path, 'hotline: khong-co')}: units[{first + 2}].hotline: " in text
    assert f"units[{first + 2}]: unit 'so-khong-lien-lac' needs an email or an sms number" in text
    assert f"units[{first + 3}].code: duplicate unit code {WARD!r}" in text
    assert (
        f"{path}:{_line_of(path, 'topic: khong-co-chu-de')}: forwarding.by_topic[0].topic: "
        "unknown topic 'khong-co-chu-de'"
    ) in text


def test_a_unit_email_with_a_line_break_is_refused(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["units"][0]["email"] = "a@x.example\nBcc: b@y.example"

    text = _problems(_write(tmp_path, edit))
    assert "units[0].email" in text


# --- the schema -----------------------------------------------------------------------


def test_the_migration_creates_the_forwarding_tables_as_the_models_declare(
    config: HotlineConfig, sessions: Any
) -> None:
    ours = {"case_forwards", "forward_events", "forward_attachments"}
    ours_columns = {("web_users", "unit_code"), ("cases", "answer_approved_by"),
                    ("cases", "answer_approved_at")}  # fmt: skip
    engine = make_engine(config.database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    def about_us(diff: Any) -> bool:
        # Alembic's diff tuples name tables and columns in their repr.
        text = repr(diff)
        return any(name in text for name in ours) or any(
            f"'{table}'" in text and f"'{column}'" in text for table, column in ours_columns
        )

    assert [d for d in differences if about_us(d)] == []
    # The filter sees our tables when they are missing (an empty database).
    empty = make_engine("sqlite://")
    with empty.connect() as connection:
        context = MigrationContext.configure(connection)
        missing = [d for d in compare_metadata(context, Base.metadata) if about_us(d)]
    empty.dispose()
    assert len(missing) >= len(ours)


# --- forwarding and deadlines ---------------------------------------------------------


def test_forwarding_to_two_units_gives_each_its_deadline_on_the_holiday_calendar(
    desk: Desk,
) -> None:
    code = desk.open_case()
    forwards = desk.forward_both(code)
    # Tuesday 28/4 + 3 working days: 29/4, (30/4 and 1/5 holidays, weekend) 4/5, 5/5.
    assert forwards[WARD].due_date == date(2026, 5, 5)
    assert forwards[DEPARTMENT].due_date == date(2026, 5, 7)
    assert {f.status for f in forwards.values()} == {ForwardStatus.SENT}
    case = desk.case(code)
    assert case.status == "assigned"
    assert [e.action for e in desk.events(forwards[WARD].id, "sent")] == ["sent"]


def test_a_forward_may_set_its_own_deadline(desk: Desk) -> None:
    code = desk.open_case()
    outcome = desk.forwarding.forward(code, [ForwardRequest(WARD, working_days=1)], "tx01")
    assert outcome.forwards[0].due_date == date(2026, 4, 29)


def test_each_unit_is_told_by_sms_and_email_with_code_deadline_and_link(
    desk: Desk, tmp_path: Path
) -> None:
    code = desk.open_case()
    outcome = desk.forwarding.forward(code, [ForwardRequest(WARD)], "tx01")
    forward = outcome.forwards[0]
    link = f"https://hotline.thanh-xuan.example/portal/forwards/{forward.id}"
    [sms] = desk.sms("forward_sent")
    assert sms.to_number == WARD_SMS and sms.status == "sent"
    assert code in sms.text and "05/05/2026" in sms.text and link in sms.text
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert sent[-1]["to"] == WARD_SMS and sent[-1]["from"] == "UBND-TX"
    [email] = outcome.emails
    assert email.to == "vanthu@phuong-thanh-xuan.example" and code in email.subject
    assert link in email.text
    notifier = FakeNotifier()
    assert asyncio.run(send_emails(notifier, outcome.emails)) == 1
    assert notifier.sent[0][0] == "vanthu@phuong-thanh-xuan.example"


def test_forwarding_refuses_unknown_units_twice_the_same_and_a_closed_case(desk: Desk) -> None:
    code = desk.open_case()
    with pytest.raises(ForwardError, match="unknown unit 'khong-co'"):
        desk.forwarding.forward(code, [ForwardRequest("khong-co")], "tx01")
    desk.forwarding.forward(code, [ForwardRequest(WARD)], "tx01")
    with pytest.raises(ForwardError, match="already forwarded"):
        desk.forwarding.forward(code, [ForwardRequest(WARD)], "tx01")
    desk.cases.change_status(code, "rejected", "tx01", "khiếu nại: ngoài phạm vi")
    with pytest.raises(ForwardError, match="cannot be forwarded"):
        desk.forwarding.forward(code, [ForwardRequest(DEPARTMENT)], "tx01")


# --- moves ----------------------------------------------------------------------------


def test_the_unit_moves_its_forward_and_the_case_follows(desk: Desk) -> None:
    code = desk.open_case()
    ward = desk.forward_both(code)[WARD]
    desk.forwarding.mark_received(ward.id, "vanthu", WARD)
    assert desk.case(code).status == "assigned"
    desk.forwarding.mark_in_progress(ward.id, "vanthu", WARD)
    assert desk.case(code).status == "in_progress"
    outcome = desk.forwarding.answer(ward.id, "Đã xử lý lấn chiếm vỉa hè.", "vanthu", WARD, [7])
    answered = outcome.forwards[0]
    assert answered.status == ForwardStatus.ANSWERED and answered.answered_by == "vanthu"
    moves = [(e.status_from, e.status_to) for e in desk.events(ward.id, "status")]
    assert moves == [("sent", "received"), ("received", "in_progress"),
                     ("in_progress", "answered")]  # fmt: skip


def test_moves_the_table_does_not_allow_are_refused_with_the_reason(desk: Desk) -> None:
    code = desk.open_case()
    forwards = desk.forward_both(code)
    ward, department = forwards[WARD].id, forwards[DEPARTMENT].id
    desk.forwarding.answer(ward, "Đã xử lý.", "vanthu", WARD)
    with pytest.raises(ForwardError, match="is answered: cannot become in_progress"):
        desk.forwarding.mark_in_progress(ward, "vanthu", WARD)
    with pytest.raises(ForwardError, match="needs a reason"):
        desk.forwarding.return_not_ours(department, "  ", "kinhte", DEPARTMENT)
    with pytest.raises(ForwardError, match="no extension was asked for"):
        desk.forwarding.decide_extension(department, grant=True, actor="gs")
    with pytest.raises(ForwardError, match="1 to 60 working days"):
        desk.forwarding.request_extension(department, 0, "cần khảo sát", "kinhte", DEPARTMENT)
    # Another unit's forward is not found for this unit.
    with pytest.raises(ForwardNotFound):
        desk.forwarding.mark_received(department, "vanthu", WARD)
    desk.forwarding.return_not_ours(department, "Không thuộc thẩm quyền", "kinhte", DEPARTMENT)
    with pytest.raises(ForwardError, match="is returned: cannot become received"):
        desk.forwarding.mark_received(department, "kinhte", DEPARTMENT)
    assert TRANSITIONS[ForwardStatus.ANSWERED] == frozenset()
    # Forwarding to the unit again reopens its row with a new deadline.
    again = desk.forwarding.forward(code, [ForwardRequest(DEPARTMENT)], "tx01").forwards[0]
    assert again.id == department and again.status == ForwardStatus.SENT


def test_an_extension_granted_moves_the_due_date_and_a_refused_one_does_not(
    desk: Desk,
) -> None:
    code = desk.open_case()
    forwards = desk.forward_both(code)
    ward, department = forwards[WARD].id, forwards[DEPARTMENT].id
    desk.forwarding.request_extension(ward, 2, "Cần khảo sát hiện trường", "vanthu", WARD)
    granted = desk.forwarding.decide_extension(ward, grant=True, actor="gs").forwards[0]
    # 5/5 + 2 working days.
    assert granted.status == ForwardStatus.EXTENSION_GRANTED
    assert granted.due_date == date(2026, 5, 7)
    desk.forwarding.request_extension(department, 3, "Chờ ý kiến", "kinhte", DEPARTMENT)
    refused = desk.forwarding.decide_extension(department, grant=False, actor="gs").forwards[0]
    assert refused.status == ForwardStatus.IN_PROGRESS and refused.due_date == date(2026, 5, 7)


# --- reminders and escalation ---------------------------------------------------------


@dataclass
class Row:
    id: int
    status: str
    due_date: date
    reminded_for: date | None = None
    escalated_for: date | None = None


def test_due_checks_remind_the_working_day_before_and_escalate_after() -> None:
    calendar = WorkingCalendar([date(2026, 4, 30), date(2026, 5, 1)])
    rows = [
        Row(1, "sent", date(2026, 5, 4)),  # Monday after the holidays
        Row(2, "in_progress", date(2026, 4, 28)),
        Row(3, "answered", date(2026, 4, 28)),
        Row(4, "sent", date(2026, 4, 28), escalated_for=date(2026, 4, 28)),
        Row(5, "received", date(2026, 5, 10)),
    ]
    # Wednesday 29/4: the next working day is Monday 4/5.
    checks = due_checks(date(2026, 4, 29), rows, calendar, 1)
    assert checks.reminders == (1,)
    assert checks.escalations == (2,)
    rows[0].reminded_for = date(2026, 5, 4)
    assert due_checks(date(2026, 4, 29), rows, calendar, 1).reminders == ()
    # An extension's new date earns a new reminder.
    rows[0].due_date = date(2026, 5, 5)
    assert due_checks(date(2026, 5, 4), rows, calendar, 1).reminders == (1,)


def test_reminder_and_escalation_go_once_each_with_a_fixed_clock(desk: Desk) -> None:
    code = desk.open_case()
    forwards = desk.forward_both(code)
    ward, department = forwards[WARD].id, forwards[DEPARTMENT].id
    assert desk.forwarding.run_due_checks().reminded == []  # Tuesday 28/4: nothing due
    desk.clock.at = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # Monday 4/5, ward due 5/5
    run = desk.forwarding.run_due_checks()
    assert (run.reminded, run.escalated) == ([ward], [])
    assert [e.to for e in run.emails] == ["vanthu@phuong-thanh-xuan.example"]
    again = desk.forwarding.run_due_checks()
    assert (again.reminded, again.escalated, again.emails) == ([], [], [])
    desk.clock.at = datetime(2026, 5, 6, 2, 0, tzinfo=UTC)  # Wednesday 6/5: ward overdue
    run = desk.forwarding.run_due_checks()
    assert run.escalated == [ward] and run.reminded == [department]
    assert run.overdue_by_hotline == {HOTLINE: 1}
    assert run.escalations == [(HOTLINE, code, WARD)]
    assert UnitEmail in {type(e) for e in run.emails}
    assert "giamsat@thanh-xuan.example" in [e.to for e in run.emails]
    again = desk.forwarding.run_due_checks()
    assert (again.reminded, again.escalated) == ([], [])
    assert again.overdue_by_hotline == {HOTLINE: 1}
    assert len(desk.events(ward, "reminded")) == 1
    assert len(desk.events(ward, "escalated")) == 1
    assert [s.to_number for s in desk.sms("forward_reminder")] == [WARD_SMS]
    # An answered forward is no longer overdue.
    desk.forwarding.answer(ward, "Đã xử lý.", "vanthu", WARD)
    assert desk.forwarding.run_due_checks().overdue_by_hotline == {}


# --- the final answer -----------------------------------------------------------------


def test_the_approved_final_answer_closes_the_case_and_texts_the_citizen(
    desk: Desk, tmp_path: Path
) -> None:
    code = desk.open_case()
    forwards = desk.forward_both(code)
    desk.forwarding.answer(forwards[WARD].id, "Đã yêu cầu dọn vỉa hè.", "vanthu", WARD)
    desk.forwarding.answer(forwards[DEPARTMENT].id, "Đã kiểm tra.", "kinhte", DEPARTMENT)
    draft = desk.forwarding.draft_final_answer(code)
    assert "Ủy ban nhân dân phường Thanh Xuân: Đã yêu cầu dọn vỉa hè." in draft
    assert "Phòng Kinh tế, Hạ tầng và Đô thị: Đã kiểm tra." in draft
    desk.clock.at = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    case = desk.forwarding.approve_final_answer(code, draft, "giamsat")
    assert case.status == "closed" and case.answer == draft
    assert case.answer_approved_by == "giamsat"
    assert case.answer_approved_at == datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    [sms] = desk.sms("case_answered")
    assert sms.to_number == "+84912000111" and code in sms.text
    assert "Đã yêu cầu dọn vỉa hè." in sms.text
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert sent[-1]["to"] == "+84912000111" and "Đã kiểm tra." in sent[-1]["text"]
    with pytest.raises(ForwardError, match="needs its text"):
        desk.forwarding.approve_final_answer(code, " ", "giamsat")


async def test_the_periodic_job_emails_through_the_notifier_and_reports_each_run(
    desk: Desk,
) -> None:
    code = desk.open_case()
    desk.forward_both(code)
    desk.clock.at = datetime(2026, 5, 6, 2, 0, tzinfo=UTC)  # the ward's forward is overdue
    notifier, runs = FakeNotifier(), []
    schedule = ForwardingSchedule(desk.forwarding, notifier, runs.append)
    try:
        first = await schedule.run_once()
        second = await schedule.run_once()
    finally:
        await schedule.close()
    assert [r.overdue_by_hotline for r in runs] == [{HOTLINE: 1}, {HOTLINE: 1}]
    assert first.escalations == [(HOTLINE, code, WARD)] and second.escalations == []
    recipients = sorted(to for to, _subject, _text in notifier.sent)
    assert recipients == ["giamsat@thanh-xuan.example", "kinhte@phuong-thanh-xuan.example"]
    assert any(code in subject and "Quá hạn" in subject for _to, subject, _ in notifier.sent)


async def test_hotline_serve_runs_the_job_beside_the_console_and_feeds_its_wallboard(
    tmp_path: Path,
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["web"] = {"port": 0, "cookie_secure": False}
        data["paths"]["recordings"] = str(tmp_path / "recordings")

    config = load_config(_write(tmp_path, edit))
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    clock = Clock(SENT)  # April 2026: due long before the real clock's today
    cases = CaseService(sessions, config, clock=clock)
    desk = Desk(clock, cases, ForwardingService(sessions, config, cases, clock=clock),
                sessions, config)  # fmt: skip
    code = desk.open_case()
    desk.forwarding.forward(code, [ForwardRequest(WARD)], "tx01")
    engine.dispose()
    services = await start_services(config, parts=frozenset({"web"}))
    try:
        assert services.forward_checks is not None and services.web_runner is not None
        run = await services.forward_checks.wait_for_run()
        assert run.overdue_by_hotline == {HOTLINE: 1}
        hub = services.web_runner.app[STATE].hub
        assert hub.board()["overdue_forwards"] == {HOTLINE: 1}
    finally:
        await services.close()
