"""The Zalo channel end to end (issue 14's proof): a real ``hotline serve``
(tests/rig/serve.py) takes webhook events signed as Zalo signs them, opens a
case, and its acknowledgement reaches the local stand-in of Zalo's OA message
API (tests/rig/zalo_api.py) with the OA's access token; an image is fetched
from the allowed host and stored with the case; an invalid signature writes
nothing; a replayed event makes no second case; an agent's answer goes back
to the citizen on Zalo; Zalo's refusal of a message is recorded on its row.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from PIL import Image
from sqlalchemy import func, select

from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.config import load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.intake.models import CaseAttachment, CaseMessage, CitizenContact
from ivr.intake.service import IntakeService
from ivr.sim.polling import wait_for
from tests.rig.serve import running_serve, write_serve_config
from tests.rig.zalo_api import running_zalo_api, signed_event, user_message_event

pytestmark = pytest.mark.db

APP_ID = "1234567890123456789"
OA_ID = "579745863508352884"
OA_SECRET = "oa-secret-key-0123456789"
OA_TOKEN = "oa-access-token-abcdefghijklmnop"
USER = "2512523625412515"


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            cases = session.scalar(select(func.count()).select_from(Case))
            messages = session.scalar(select(func.count()).select_from(CaseMessage))
            return int(cases or 0), int(messages or 0)
    finally:
        engine.dispose()


def _ack_error(url: str, msg_id: str) -> str | None:
    """The error recorded on the acknowledgement of the case opened by ``msg_id``."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            case_id = session.scalar(
                select(CaseMessage.case_id).where(CaseMessage.external_id == msg_id)
            )
            return session.scalar(
                select(CaseMessage.error).where(
                    CaseMessage.case_id == case_id,
                    CaseMessage.direction == "out",
                    CaseMessage.error != "",
                )
            )
    finally:
        engine.dispose()


def _answer(config_path: Path, code: str, answer: str) -> None:
    """What the case page does when an agent answers (another process than
    the server's: the dispatcher of ``hotline serve`` finds the queued reply)."""
    config = load_config(config_path)
    engine = make_engine(config.database_url)
    try:
        sessions = make_session_factory(engine)
        cases = CaseService(sessions, config)
        # Registers the hook that queues an answer on the case's Zalo thread.
        IntakeService(sessions, config, cases, config_path.parent / "attachments")
        cases.change_status(code, "in_progress", "dtv01")
        cases.change_status(code, "answered", "dtv01", note=answer)
    finally:
        engine.dispose()


async def test_a_signed_zalo_message_opens_a_case_acknowledged_through_the_oa_api(
    tmp_path: Path,
) -> None:
    async with running_zalo_api({OA_TOKEN}) as zalo:

        def tweak(data: dict[str, Any]) -> None:
            data.setdefault("channels", {})["zalo"] = {
                "enabled": True,
                "app_id": APP_ID,
                "accounts": [
                    {
                        "oa_id": OA_ID,
                        "hotline": "bac-tu-liem",
                        "secret": OA_SECRET,
                        "token": OA_TOKEN,
                    }
                ],
                "api_base_url": zalo.base_url,
                "media_hosts": [zalo.host],
            }

        path = write_serve_config(tmp_path, tweak=tweak)
        url = yaml.safe_load(path.read_text(encoding="utf-8"))["database"]["url"]
        async with running_serve(path) as served, aiohttp.ClientSession() as http:
            webhook = served.base_url + "/channels/zalo/webhook"

            async def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
                async with http.post(webhook, data=body, headers=headers) as answer:
                    return answer.status, await answer.json()

            def event(msg_id: str, **kwargs: Any) -> dict[str, Any]:
                return user_message_event(
                    app_id=APP_ID, oa_id=OA_ID, user_id=USER, msg_id=msg_id,
                    timestamp_ms=int(time.time() * 1000), **kwargs,
                )  # fmt: skip

            # 1. An invalid signature: refused, nothing written.
            forged, headers = signed_event(event("m-0", text="Giả mạo"), APP_ID, "wrong-key-012345")
            status, answer = await post(forged, headers)
            assert (status, answer) == (401, {"error": "invalid signature"}), served.log
            assert _counts(url) == (0, 0)

            # 2. A signed text: a case, acknowledged through the OA message API.
            text = event("m-1", text="Đèn đường ngõ 12 Phạm Văn Đồng hỏng ba hôm nay")
            body, headers = signed_event(text, APP_ID, OA_SECRET)
            status, answer = await post(body, headers)
            assert status == 200 and answer["action"] == "case_opened", f"{answer}\n{served.log}"
            code = answer["case_code"]
            [ack] = await zalo.wait_for_sent(1)
            assert (ack["user_id"], ack["access_token"]) == (USER, OA_TOKEN)
            assert code in ack["text"] and "tiếp nhận" in ack["text"], ack

            # 3. The same event again (Zalo resends): no second case, no second message.
            status, again = await post(body, headers)
            assert status == 200 and again == {**answer, "duplicate": True}

            # 4. An image from the allowed host: a second case with the photo.
            photo_url = zalo.add_image("den-duong.jpg", _photo())
            body, headers = signed_event(event("m-2", image_urls=(photo_url,)), APP_ID, OA_SECRET)
            status, answer = await post(body, headers)
            assert status == 200 and answer["attachments"] == 1, f"{answer}\n{served.log}"
            await zalo.wait_for_sent(2)
            assert zalo.media_requests == ["den-duong.jpg"]

            # 5. An agent answers the first case: the answer goes back on Zalo.
            await asyncio.to_thread(_answer, path, code, "Đã thay bóng đèn ngõ 12.")
            answered = (await zalo.wait_for_sent(3))[2]
            assert answered["user_id"] == USER and "Đã thay bóng đèn ngõ 12." in answered["text"]

            # 6. Zalo refuses a message (an expired token): the failure is on its row.
            zalo.fail_with = (-216, "Access token is invalid")
            body, headers = signed_event(event("m-3", text="Lại hỏng đèn"), APP_ID, OA_SECRET)
            assert (await post(body, headers))[0] == 200
            error = await wait_for(lambda: _ack_error(url, "m-3"), 30, "the failure recorded")
            assert "-216" in error and "Access token is invalid" in error
            assert len(zalo.sent) == 3

        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            cases = session.scalars(select(Case).order_by(Case.id)).all()
            assert [(c.channel, c.hotline_id) for c in cases] == [("zalo", "bac-tu-liem")] * 3
            assert cases[0].code == code
            contacts = session.scalars(select(CitizenContact)).all()
            assert [(c.kind, c.value) for c in contacts] == [("zalo", USER)]
            rows = session.scalars(
                select(CaseMessage)
                .where(CaseMessage.case_id == cases[0].id)
                .order_by(CaseMessage.id)
            ).all()
            assert [(r.direction, r.external_id, r.status) for r in rows][:2] == [
                ("in", "m-1", None),
                ("out", ack["message_id"], "sent"),
            ]
            assert [(r.direction, r.purpose) for r in rows][2:] == [("out", "case_answered")]
            [photo] = session.scalars(select(CaseAttachment)).all()
            assert (photo.case_id, photo.kind) == (cases[1].id, "image")
        engine.dispose()
        assert json.dumps(zalo.sent).count(OA_SECRET) == 0  # the secret never leaves
