"""The SMS bridge's webhook, unit tier: the handler over a fake intake and a
fake outbox (the end-to-end proof against ``hotline serve`` is in
tests/test_sms_inbound_e2e.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest_asyncio
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.config import HotlineConfig, load_config
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.service import CaseStatusView
from ivr.intake.types import IntakeRefused
from ivr.web import sms_inbound
from ivr.web.intake_state import INTAKE
from ivr.web.sms_inbound import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    not_found_text,
    sms_signature,
    status_request_code,
)
from ivr.web.state import STATE
from ivr.web.webhook_guard import REFUSALS, WEBHOOKS, WebhookGuard
from tests.config_checks import config_problems
from tests.rig.intake import InMemoryIntake
from tests.rig.stack import EXAMPLE

SECRET = "bridge-secret-0123456789"
HOTLINE_SMS = "+84901234567"
CITIZEN = "0912 345 678"
CITIZEN_E164 = "+84912345678"


def _data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["channels"] = {
        "sms": {"enabled": True, "secret": SECRET, "numbers": {HOTLINE_SMS: "bac-tu-liem"}}
    }
    return data


def _config(tmp_path: Path, data: dict[str, Any] | None = None) -> HotlineConfig:
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data or _data(), allow_unicode=True), encoding="utf-8")
    return load_config(path)


@dataclass
class FakeIntake(InMemoryIntake):
    views: dict[tuple[str, tuple[ContactKind, str]], Any] = field(default_factory=dict)
    status_asked: list[tuple[str, Any]] = field(default_factory=list)

    def status(self, case_code: str, contact: tuple[ContactKind, str] | None) -> Any:
        self.status_asked.append((case_code, contact))
        return self.views.get((case_code, contact)) if contact else None


@dataclass
class FakeCases:
    texts: list[tuple[str, str, str, int | None]] = field(default_factory=list)
    hotline_of_case: dict[str, str] = field(default_factory=dict)

    def find_by_code(self, code: str) -> Any:
        hotline_id = self.hotline_of_case.get(code)
        return SimpleNamespace(id=int(code[-3:]), hotline_id=hotline_id) if hotline_id else None

    def text_citizen(
        self, to_number: str, text: str, purpose: str, case_id: int | None = None
    ) -> None:
        self.texts.append((to_number, text, purpose, case_id))


@dataclass
class Bridge:
    client: TestClient
    intake: FakeIntake
    cases: FakeCases
    config: HotlineConfig

    async def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        stamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        stamp_text = str(int(time.time()) if stamp is None else stamp)
        sent = {
            TIMESTAMP_HEADER: stamp_text,
            SIGNATURE_HEADER: sms_signature(secret, stamp_text, body),
            "Content-Type": "application/json",
        }
        if headers is not None:
            sent = headers
        answer = await self.client.post("/channels/sms/inbound", data=body, headers=sent)
        return answer.status, await answer.json()


def _view(code: str, status: str, answer: str) -> CaseStatusView:
    return CaseStatusView(
        case_code=code, status=status, channel="sms", topic=None,
        received_at=datetime(2026, 11, 30, 2, tzinfo=UTC), due_date=date(2026, 12, 14),
        answered_at=None, answer=answer,
    )  # fmt: skip


def _text(id_: str, text: str, sender: str = CITIZEN, to: str = HOTLINE_SMS) -> dict[str, Any]:
    return {"id": id_, "from": sender, "to": to, "text": text,
            "received_at": "2026-11-30T09:00:00+07:00"}  # fmt: skip


def _app(config: HotlineConfig, intake: FakeIntake, cases: FakeCases) -> web.Application:
    """Only this feature's routes, its state reduced to what the handler reads
    (no database: this is the unit tier)."""
    app = web.Application()
    app[STATE] = SimpleNamespace(config=config, cases=cases)  # type: ignore[misc]
    app[INTAKE] = intake  # type: ignore[misc]
    app[WEBHOOKS] = WebhookGuard()
    for route in sms_inbound.ROUTES:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    return app


@pytest_asyncio.fixture(loop_scope="session")
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    config = _config(tmp_path)
    intake, cases = FakeIntake(), FakeCases()
    client = TestClient(TestServer(_app(config, intake, cases)))
    await client.start_server()
    try:
        yield Bridge(client, intake, cases, config)
    finally:
        await client.close()


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    expected = hmac.new(SECRET.encode(), b"1764493200." + body, hashlib.sha256).hexdigest()
    assert sms_signature(SECRET, "1764493200", body) == f"sha256={expected}"


def test_a_status_request_is_a_short_text_with_one_code() -> None:
    assert status_request_code("26110123", 8) == "26110123"
    assert status_request_code("TRA CUU 26110123", 8) == "26110123"
    assert status_request_code("Mã số: 26110123?", 8) == "26110123"
    assert status_request_code("2611012", 8) is None  # seven digits
    assert status_request_code("261101234", 8) is None  # nine
    assert status_request_code("26110123 26110124", 8) is None  # which one?
    report = "Đèn đường ngõ 12 Phạm Văn Đồng hỏng, đã báo từ tháng trước, mã 26110123"
    assert status_request_code(report, 8) is None  # a report quoting a number
    assert status_request_code("261101234567", 12) == "261101234567"


async def test_a_signed_text_opens_a_case_for_the_sender_of_the_hotline_of_to(
    bridge: Bridge,
) -> None:
    status, answer = await bridge.post(_text("gw-1", "Cống ở ngõ 5 bị tắc, nước tràn ra đường"))
    assert status == 200, answer
    assert answer == {"ok": True, "action": "case_opened", "case_code": "26110001",
                      "duplicate": False}  # fmt: skip
    [submission] = bridge.intake.submissions
    assert submission.hotline_id == "bac-tu-liem"
    assert submission.channel is Channel.SMS
    assert submission.contacts == ((ContactKind.PHONE, CITIZEN_E164),)
    assert submission.text == "Cống ở ngõ 5 bị tắc, nước tràn ra đường"
    assert submission.idempotency_key == "gw-1" and submission.external_id == "gw-1"
    assert submission.case_code is None
    assert bridge.cases.texts == []  # the acknowledgement is the intake's


async def test_a_report_quoting_a_case_code_asks_the_intake_to_join_that_case(
    bridge: Bridge,
) -> None:
    text = "Bổ sung cho phản ánh 26110042: nước đã tràn vào nhà dân ở ngõ 5"
    status, answer = await bridge.post(_text("gw-join", text))
    assert status == 200, answer
    [submission] = bridge.intake.submissions
    assert submission.case_code == "26110042"  # the intake checks whose it is
    assert bridge.intake.status_asked == [] and bridge.cases.texts == []


async def test_the_hotline_number_is_matched_in_any_usual_spelling(bridge: Bridge) -> None:
    for index, to in enumerate(("0901234567", "84901234567", "+84 901 234 567")):
        status, answer = await bridge.post(_text(f"gw-to-{index}", "Rác chưa thu gom", to=to))
        assert status == 200, (to, answer)
    assert {s.hotline_id for s in bridge.intake.submissions} == {"bac-tu-liem"}


async def test_a_forged_or_unsigned_request_is_401_and_nothing_is_done(bridge: Bridge) -> None:
    payload = _text("gw-2", "Xin chào")
    status, answer = await bridge.post(payload, secret="someone-elses-secret")
    assert (status, answer) == (401, {"error": "invalid signature"})
    status, answer = await bridge.post(payload, headers={"Content-Type": "application/json"})
    assert status == 401 and "required" in answer["error"]
    # A valid signature of another body does not sign this one.
    stamp = str(int(time.time()))
    other = sms_signature(SECRET, stamp, json.dumps(_text("gw-2", "khác")).encode())
    status, answer = await bridge.post(
        payload, headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: other}
    )
    assert status == 401
    assert bridge.intake.submissions == [] and bridge.cases.texts == []


async def test_an_address_sending_forgeries_is_held_off_for_a_while(bridge: Bridge) -> None:
    for index in range(REFUSALS):
        status, _ = await bridge.post(_text(f"gw-f{index}", "Giả"), secret="x" * 24)
        assert status == 401
    answer = await bridge.client.post("/channels/sms/inbound", data=b"{}")
    assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1
    # Even a correctly signed text waits: the address is held off, not the text judged.
    status, _ = await bridge.post(_text("gw-after", "Thật"))
    assert status == 429
    assert bridge.intake.submissions == []


async def test_a_request_signed_outside_the_window_is_refused(bridge: Bridge) -> None:
    window = bridge.config.channels.sms.window_seconds
    for stamp in (int(time.time()) - window - 60, int(time.time()) + window + 60):
        status, answer = await bridge.post(_text("gw-3", "Cũ"), stamp=stamp)
        assert status == 401 and "window" in answer["error"]
    assert bridge.intake.submissions == []


async def test_a_replay_inside_the_window_makes_nothing_new(bridge: Bridge) -> None:
    payload = _text("gw-4", "Cây đổ chắn ngang đường")
    first = await bridge.post(payload)
    again = await bridge.post(payload, stamp=int(time.time()) + 1)
    assert first[0] == again[0] == 200
    assert again[1] == {**first[1], "duplicate": True}
    assert len(bridge.intake.submissions) == 1
    # The same id for another text is a conflict, not a second case.
    status, answer = await bridge.post(_text("gw-4", "Một phản ánh khác"))
    assert status == 409 and "id" in answer["error"]
    assert len(bridge.intake.submissions) == 1


async def test_the_citizen_gets_the_status_of_their_own_case_by_sms(bridge: Bridge) -> None:
    view = _view("26110042", "in_progress", answer="")
    bridge.cases.hotline_of_case["26110042"] = "bac-tu-liem"
    bridge.intake.views[("26110042", (ContactKind.PHONE, CITIZEN_E164))] = view
    status, answer = await bridge.post(_text("gw-5", "tra cuu 26110042"))
    assert (status, answer) == (200, {"ok": True, "action": "status"})
    [(to, text, purpose, case_id)] = bridge.cases.texts
    assert (to, purpose, case_id) == (CITIZEN_E164, "status_reply", 42)
    assert "26110042" in text and "đang xử lý" in text and "14/12/2026" in text
    assert text.startswith("quận Bắc Từ Liêm:")
    assert bridge.intake.submissions == []  # asking is not a report
    # Sent again inside the window: no second text.
    status, answer = await bridge.post(_text("gw-5", "tra cuu 26110042"))
    assert status == 200 and answer["duplicate"] is True
    assert len(bridge.cases.texts) == 1


async def test_an_answered_case_reads_its_answer(bridge: Bridge) -> None:
    view = _view("26110043", "answered", answer="Đã sửa xong đèn.")
    bridge.cases.hotline_of_case["26110043"] = "bac-tu-liem"
    bridge.intake.views[("26110043", (ContactKind.PHONE, CITIZEN_E164))] = view
    await bridge.post(_text("gw-6", "26110043"))
    [(_, text, _, _)] = bridge.cases.texts
    assert "đã xử lý" in text and "Trả lời: Đã sửa xong đèn." in text and "Hạn" not in text


async def test_an_unknown_code_and_someone_elses_code_read_the_same_not_found(
    bridge: Bridge,
) -> None:
    # Another hotline's case of this very number: not found on this hotline.
    other_hotline = _view("26110077", "received", answer="")
    bridge.cases.hotline_of_case["26110077"] = "thanh-xuan"
    bridge.intake.views[("26110077", (ContactKind.PHONE, CITIZEN_E164))] = other_hotline
    await bridge.post(_text("gw-7", "26110099"))  # nobody's (or someone else's: no view)
    await bridge.post(_text("gw-8", "26110077"))
    assert [(c, contact) for c, contact in bridge.intake.status_asked] == [
        ("26110099", (ContactKind.PHONE, CITIZEN_E164)),
        ("26110077", (ContactKind.PHONE, CITIZEN_E164)),
    ]
    unit = "quận Bắc Từ Liêm"
    assert [(t[1], t[2], t[3]) for t in bridge.cases.texts] == [
        (not_found_text("26110099", unit), "status_not_found", None),
        (not_found_text("26110077", unit), "status_not_found", None),
    ]
    assert bridge.intake.submissions == []


async def test_bad_bodies_get_a_json_error_and_change_nothing(bridge: Bridge) -> None:
    cases: list[tuple[bytes | dict[str, Any], int, str]] = [
        (b"not json", 400, "JSON"),
        (b"[1, 2]", 400, "object"),
        ({**_text("gw-9", "x"), "from": ""}, 400, "from"),
        ({**_text("gw-9", "x"), "from": "not a number"}, 400, "from"),
        ({**_text("gw-9", "x"), "to": "0999999999"}, 400, "to"),
        ({**_text("gw-9", "x"), "id": "a\r\nX-Injected: 1"}, 400, "id"),
        ({**_text("gw-9", "x"), "text": "   "}, 400, "text"),
        ({**_text("gw-9", "x"), "text": "a\x00b"}, 400, "text"),
        ({**_text("gw-9", "x"), "text": "x" * 2001}, 400, "text"),
        ({**_text("gw-9", "x" * 20000)}, 413, "larger"),
    ]
    for payload, expected, word in cases:
        status, answer = await bridge.post(payload)
        assert status == expected and word in answer["error"], (payload, answer)
    assert bridge.intake.submissions == [] and bridge.cases.texts == []


async def test_a_body_arriving_in_pieces_is_read_whole_and_limited_without_a_length(
    bridge: Bridge,
) -> None:
    """A chunked body has no Content-Length: it is read to its end (a signature
    over a part would fail) and still cut at the limit."""

    async def post_in_pieces(body: bytes) -> tuple[int, dict[str, Any]]:
        stamp = str(int(time.time()))

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 200):
                yield body[start : start + 200]
                await asyncio.sleep(0.001)

        headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sms_signature(SECRET, stamp, body)}
        answer = await bridge.client.post("/channels/sms/inbound", data=pieces(), headers=headers)
        return answer.status, await answer.json()

    long_text = "Nước thải tràn ra đường ở ngõ 5 Đông Ngạc. " * 40  # ~2 KB of UTF-8
    status, answer = await post_in_pieces(json.dumps(_text("gw-pieces", long_text[:1990])).encode())
    assert status == 200 and answer["action"] == "case_opened", answer
    assert bridge.intake.submissions[0].text == long_text[:1990].strip()
    status, answer = await post_in_pieces(json.dumps(_text("gw-big", "x" * 30_000)).encode())
    assert status == 413
    assert len(bridge.intake.submissions) == 1


async def test_a_text_the_intake_refuses_is_400_and_may_be_sent_again(bridge: Bridge) -> None:
    bridge.intake.refuse = IntakeRefused("text: no HTML, please", field="text")
    status, answer = await bridge.post(_text("gw-10", "<script>alert(1)</script>"))
    assert (status, answer) == (400, {"error": "text: no HTML, please", "field": "text"})
    bridge.intake.refuse = None
    status, answer = await bridge.post(_text("gw-10", "<script>alert(1)</script>"))
    assert status == 200 and answer["action"] == "case_opened"


async def test_the_channel_answers_404_when_it_is_off(tmp_path: Path) -> None:
    data = _data()
    data["channels"]["sms"]["enabled"] = False
    app = _app(_config(tmp_path, data), FakeIntake(), FakeCases())
    async with TestClient(TestServer(app)) as client:
        answer = await client.post("/channels/sms/inbound", data=b"{}")
        assert answer.status == 404
        assert (await answer.json())["error"] == "the SMS channel is not enabled"


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    data = _data()
    data["channels"]["sms"]["numbers"] = {HOTLINE_SMS: "no-such-hotline"}
    del data["channels"]["sms"]["secret"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    problems = config_problems(path)
    assert "channels.sms.numbers" in problems and "no-such-hotline" in problems, problems
    assert "channels.sms.secret: the bridge's shared secret is needed" in problems, problems
    data = _data()
    data["channels"]["sms"]["secret"] = "short"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "channels.sms.secret" in config_problems(path)
