"""Case records: codes, working-day deadlines, statuses with history, SMS.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.cases.calendar import WorkingCalendar
from ivr.cases.models import SmsMessage
from ivr.cases.service import CaseError, CaseService
from ivr.cases.sms import WebhookSmsGateway
from ivr.config import ConfigError, HotlineConfig, load_config
from tests.rig.console import console_sessions
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

pytestmark = pytest.mark.db


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _config(tmp_path: Path, **sections: Any) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data.update(sections)
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return _config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(config.database_url) as factory:
        yield factory


# Thursday 30 April 2026, 10:00 in Hà Nội: 30/4 and 1/5 are holidays in the example.
RECEIVED = datetime(2026, 4, 30, 3, 0, tzinfo=UTC)


def test_working_days_skip_weekends_and_holidays() -> None:
    calendar = WorkingCalendar([date(2026, 4, 30), date(2026, 5, 1)])
    assert calendar.add_working_days(date(2026, 4, 30), 0) == date(2026, 5, 4)
    assert calendar.add_working_days(date(2026, 4, 29), 1) == date(2026, 5, 4)
    assert calendar.add_working_days(date(2026, 4, 29), 3) == date(2026, 5, 6)
    assert calendar.add_working_days(date(2026, 5, 9), 1) == date(2026, 5, 12)  # Saturday


def test_open_case_gives_a_digit_code_a_deadline_history_and_an_sms(
    config: HotlineConfig, sessions: Any
) -> None:
    service = CaseService(sessions, config, clock=Clock(RECEIVED))
    case = service.open_case(
        channel="phone",
        hotline_id="bac-tu-liem",
        caller_number="+84912345678",
        caller_name="Nguyễn Văn A",
        area_code="dong-ngac",
        topic="thu-tuc",
        summary="Hồ sơ cấp giấy chứng nhận quyền sử dụng đất chậm",
        actor="agent:dtv-01",
    )
    assert case.code.isdigit() and len(case.code) == 8 and case.code.startswith("2604")
    assert case.status == "received"
    # Received on Thu 30/4 (holiday): counted from Mon 4/5; 15 working days → Mon 25/5.
    assert case.due_date == date(2026, 5, 25)
    assert [(e.action, e.actor, e.to_status) for e in case.history] == [
        ("opened", "agent:dtv-01", "received")
    ]
    assert case.history[0].at == RECEIVED
    lines = [json.loads(line) for line in (Path(config.sms.path)).read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["to"] == "+84912345678"
    assert case.code in lines[0]["text"] and "25/05/2026" in lines[0]["text"]
    with sessions() as session:
        assert [m.status for m in session.query(SmsMessage)] == ["sent"]
    assert service.find_by_code(f"{case.code[:4]} {case.code[4:]}").id == case.id  # type: ignore[union-attr]
    assert service.find_by_code("00000000") is None


def test_statuses_move_in_order_and_every_change_is_in_history(
    config: HotlineConfig, sessions: Any
) -> None:
    clock = Clock(RECEIVED)
    service = CaseService(sessions, config, clock=clock)
    case = service.open_case(channel="voicemail", hotline_id="bac-tu-liem",
                             caller_number="+84912345679")  # fmt: skip
    steps = [("classified", "sup:lan"), ("assigned", "sup:lan"), ("in_progress", "unit:tn-mt"),
             ("answered", "unit:tn-mt"), ("closed", "sup:lan")]  # fmt: skip
    for hour, (status, actor) in enumerate(steps, start=1):
        clock.at = RECEIVED.replace(hour=3 + hour)
        note = "Đã cấp giấy chứng nhận ngày 5/5." if status == "answered" else ""
        case = service.change_status(case.code, status, actor, note)
        assert case.status == status
    moves = [(e.from_status, e.to_status, e.actor, e.at.hour) for e in case.history[1:]]
    assert moves == [
        ("received", "classified", "sup:lan", 4),
        ("classified", "assigned", "sup:lan", 5),
        ("assigned", "in_progress", "unit:tn-mt", 6),
        ("in_progress", "answered", "unit:tn-mt", 7),
        ("answered", "closed", "sup:lan", 8),
    ]
    assert case.answer == "Đã cấp giấy chứng nhận ngày 5/5." and case.closed_at is not None
    texts = Path(config.sms.path).read_text().splitlines()
    assert len(texts) == 2 and "Đã cấp giấy chứng nhận" in json.loads(texts[1])["text"]


def test_rules_refuse_bad_moves_and_rejection_needs_a_reason(
    config: HotlineConfig, sessions: Any
) -> None:
    service = CaseService(sessions, config, clock=Clock(RECEIVED))
    case = service.open_case(channel="phone", hotline_id="bac-tu-liem", caller_number=None)
    with pytest.raises(CaseError, match="cannot become closed"):
        service.change_status(case.code, "closed", "sup")
    with pytest.raises(CaseError, match="reason"):
        service.change_status(case.code, "rejected", "sup")
    with pytest.raises(CaseError, match="unknown status"):
        service.change_status(case.code, "done", "sup")
    rejected = service.change_status(case.code, "rejected", "sup", "Khiếu nại: chuyển Ban Tiếp dân")
    assert rejected.status == "rejected" and rejected.rejection_reason.startswith("Khiếu nại")
    assert not Path(config.sms.path).exists()  # no number, no text


def test_open_cases_for_caller_and_one_case_per_call(config: HotlineConfig, sessions: Any) -> None:
    service = CaseService(sessions, config, clock=Clock(RECEIVED))
    first = service.open_case(channel="phone", hotline_id="bac-tu-liem",
                              caller_number="+84987654321", call_uniqueid="1700.1")  # fmt: skip
    again = service.open_case(channel="phone", hotline_id="bac-tu-liem",
                              caller_number="+84987654321", call_uniqueid="1700.1")  # fmt: skip
    assert again.code == first.code
    second = service.open_case(channel="web", hotline_id="bac-tu-liem",
                               caller_number="+84987654321")  # fmt: skip
    service.change_status(second.code, "rejected", "sup", "Ngoài phạm vi")
    service.open_case(channel="web", hotline_id="bac-tu-liem", caller_number="+84911111111")
    assert [c.code for c in service.open_cases_for_caller("+84987654321")] == [first.code]


def test_classify_recomputes_the_deadline_from_the_most_specific_rule(
    config: HotlineConfig, sessions: Any
) -> None:
    service = CaseService(sessions, config, clock=Clock(RECEIVED))
    case = service.open_case(channel="phone", hotline_id="bac-tu-liem", caller_number=None)
    case = service.classify(case.code, topic="can-bo", actor="sup")
    assert case.status == "classified" and case.due_date == date(2026, 5, 18)  # 10 days
    case = service.classify(case.code, topic="can-bo", severity="urgent", actor="sup")
    assert case.due_date == date(2026, 5, 5)  # 1 working day after Mon 4/5


def test_sms_gateway_failure_keeps_the_case(config: HotlineConfig, sessions: Any) -> None:
    class Broken:
        name = "broken"

        def send(self, message: object) -> None:
            raise OSError("provider down")

    service = CaseService(sessions, config, clock=Clock(RECEIVED), sms_gateway=Broken())
    case = service.open_case(channel="phone", hotline_id="bac-tu-liem",
                             caller_number="+84912000000")  # fmt: skip
    assert service.find_by_code(case.code) is not None
    with sessions() as session:
        message = session.query(SmsMessage).one()
        assert message.status == "failed" and "provider down" in message.error


def test_webhook_gateway_posts_json_with_the_token() -> None:
    received: list[tuple[dict[str, Any], str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers.get("Authorization", "")))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    from ivr.cases.sms import OutgoingSms

    gateway = WebhookSmsGateway(f"http://127.0.0.1:{server.server_port}/sms", "s3cret", "UBND", 5)
    gateway.send(OutgoingSms("+84912345678", "Mã số 26041234", "case_opened", "26041234",
                             RECEIVED))  # fmt: skip
    thread.join(5)
    server.server_close()
    expected = {"from": "UBND", "to": "+84912345678", "text": "Mã số 26041234",
                "reference": "26041234"}  # fmt: skip
    assert received == [(expected, "Bearer s3cret")]


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, sms={"kind": "webhook"})
    assert "needs a url" in str(error.value.problems)
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, cases={"deadlines": [{"topic": "dat-dai", "working_days": 5}]})
    assert "unknown topic 'dat-dai'" in str(error.value.problems)
