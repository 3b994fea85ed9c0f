"""The SMS channel end to end (issue 14's proof): a real ``hotline serve``
(tests/rig/serve.py) takes the bridge's signed webhook, opens a case and texts
its code through the configured SMS gateway (a file of JSON lines here); a
text with that code from the same number gets the status back, from another
number or to another hotline "not found"; a forged, stale or replayed webhook
changes nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import func, select

from ivr.cases.models import Case, SmsMessage
from ivr.db.engine import make_engine, make_session_factory
from ivr.intake.models import CaseMessage
from ivr.web.sms_inbound import SIGNATURE_HEADER, TIMESTAMP_HEADER, sms_signature
from tests.rig.serve import running_serve, write_serve_config

pytestmark = pytest.mark.db

SECRET = "bridge-secret-0123456789"
HOTLINE_SMS = "+84901234567"
OTHER_HOTLINE_SMS = "+84907654321"
CITIZEN = "0912345678"
CITIZEN_E164 = "+84912345678"
NEIGHBOUR_E164 = "+84987654321"


def _tweak(data: dict[str, Any]) -> None:
    # A second hotline on the same deployment, with its own SMS number (its
    # calls go to voicemail or an empty queue: only its SMS number matters here).
    data["hotlines"].append(
        {
            "id": "tay-ho",
            "name": "Đường dây nóng quận Tây Hồ",
            "unit_name": "quận Tây Hồ",
            "numbers": ["02437999999"],
            "failure_destination": "queue:tay-ho-operator",
            "menus": {
                "main": {"prompt": "main_menu", "options": {"1": "voicemail"},
                         "on_invalid": "voicemail", "on_no_input": "voicemail"},
            },
        }
    )  # fmt: skip
    for owned in (*data["queues"], *data["agents"]):
        owned["hotline"] = "bac-tu-liem"
    data["queues"].append({"id": "tay-ho-operator", "title": "Điện thoại viên Tây Hồ",
                           "hotline": "tay-ho"})  # fmt: skip
    data.setdefault("channels", {})["sms"] = {
        "enabled": True,
        "secret": SECRET,
        "numbers": {HOTLINE_SMS: "bac-tu-liem", OTHER_HOTLINE_SMS: "tay-ho"},
    }


class Bridge:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.url = base_url + "/channels/sms/inbound"

    async def post(
        self, payload: dict[str, Any], *, secret: str = SECRET, stamp: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        stamp_text = str(int(time.time()) if stamp is None else stamp)
        headers = {
            TIMESTAMP_HEADER: stamp_text,
            SIGNATURE_HEADER: sms_signature(secret, stamp_text, body),
            "Content-Type": "application/json",
        }
        async with self.http.post(self.url, data=body, headers=headers) as answer:
            return answer.status, await answer.json()


def _text(id_: str, sender: str, text: str, to: str = HOTLINE_SMS) -> dict[str, Any]:
    return {"id": id_, "from": sender, "to": to, "text": text,
            "received_at": "2026-11-30T16:05:00+07:00"}  # fmt: skip


def _outbox(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_an_sms_opens_a_case_and_its_code_gets_the_status_back_to_its_citizen_only(
    tmp_path: Path,
) -> None:
    path = write_serve_config(tmp_path, tweak=_tweak)
    url = yaml.safe_load(path.read_text(encoding="utf-8"))["database"]["url"]
    outbox = tmp_path / "var" / "sms-outbox.jsonl"
    async with running_serve(path) as served, aiohttp.ClientSession() as http:
        bridge = Bridge(http, served.base_url)

        # 1. A report by SMS: a case of the hotline of "to", its code texted back.
        report = _text("gw-1", CITIZEN, "Cống ở ngõ 5 Đông Ngạc bị tắc, nước tràn ra đường")
        status, answer = await bridge.post(report)
        assert status == 200 and answer["action"] == "case_opened", f"{answer}\n{served.log}"
        code = answer["case_code"]
        [opened] = _outbox(outbox)
        assert opened["to"] == CITIZEN_E164 and code in opened["text"], opened
        assert opened["purpose"] == "case_opened"

        # 2. The same webhook again inside the window: nothing new.
        status, again = await bridge.post(report)
        assert status == 200 and again == {**answer, "duplicate": True}
        assert len(_outbox(outbox)) == 1

        # 3. The citizen asks for the status with the code: it comes back by SMS.
        status, answer = await bridge.post(_text("gw-2", CITIZEN, f"TRA CUU {code}"))
        assert (status, answer) == (200, {"ok": True, "action": "status"})
        reply = _outbox(outbox)[-1]
        assert reply["to"] == CITIZEN_E164 and reply["purpose"] == "status_reply"
        assert code in reply["text"] and "chờ tiếp nhận" in reply["text"], reply

        # 4. Someone else with that code, or an unknown code: the same "not found".
        await bridge.post(_text("gw-3", "0987 654 321", code))
        await bridge.post(_text("gw-4", CITIZEN, "26000000"))
        stranger, unknown = _outbox(outbox)[-2:]
        assert stranger["to"] == NEIGHBOUR_E164 and "không tìm thấy" in stranger["text"]
        assert "không tìm thấy" in unknown["text"]
        assert stranger["text"].replace(code, "X") == unknown["text"].replace("26000000", "X")

        # 5. Its own citizen asking another hotline: that hotline has no such case.
        status, answer = await bridge.post(_text("gw-5", CITIZEN, code, to=OTHER_HOTLINE_SMS))
        assert (status, answer) == (200, {"ok": True, "action": "not_found"})
        assert "không tìm thấy" in _outbox(outbox)[-1]["text"]

        # 6. A longer text quoting the code continues the case: it joins its thread.
        follow_up = f"Bổ sung cho phản ánh {code}: nước đã tràn vào nhà dân"
        status, answer = await bridge.post(_text("gw-8", CITIZEN, follow_up))
        assert status == 200 and (answer["action"], answer["case_code"]) == ("joined", code)
        # The same words from someone else never join that case: a case of their own.
        status, answer = await bridge.post(_text("gw-9", "0987654321", follow_up))
        assert status == 200 and answer["action"] == "case_opened" and answer["case_code"] != code
        neighbours_code = answer["case_code"]

        # 7. Forged and stale webhooks are refused and change nothing.
        texts_before = len(_outbox(outbox))
        status, answer = await bridge.post(_text("gw-6", CITIZEN, "Giả"), secret="x" * 24)
        assert (status, answer) == (401, {"error": "invalid signature"})
        status, answer = await bridge.post(
            _text("gw-7", CITIZEN, "Cũ"), stamp=int(time.time()) - 3600
        )
        assert status == 401 and "window" in answer["error"]
        assert len(_outbox(outbox)) == texts_before

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        case, neighbours = session.scalars(select(Case).order_by(Case.id)).all()
        assert (case.code, case.channel, case.hotline_id, case.caller_number) == (
            code, "sms", "bac-tu-liem", CITIZEN_E164
        )  # fmt: skip
        assert (neighbours.code, neighbours.caller_number) == (neighbours_code, NEIGHBOUR_E164)
        inbound = session.scalars(
            select(CaseMessage.external_id)
            .where(CaseMessage.case_id == case.id)
            .order_by(CaseMessage.id)
        ).all()
        assert inbound == ["gw-1", "gw-8"]
        purposes = session.scalars(select(SmsMessage.purpose).order_by(SmsMessage.id)).all()
        assert purposes == ["case_opened", "status_reply", "status_not_found",
                            "status_not_found", "status_not_found", "case_opened"]  # fmt: skip
        assert session.scalar(select(func.count()).select_from(Case)) == 2
    engine.dispose()
