"""The Zalo OA channel, unit tier: the webhook over a fake intake, the reply
sender against the local stand-in of Zalo's API (tests/rig/zalo_api.py, an
in-process loopback server). The end-to-end proof against ``hotline serve`` is
in tests/test_zalo_e2e.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.config import HotlineConfig, load_config
from ivr.config.secret_mask import MASK, mask_secrets
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IntakeRefused, IntakeResult, OutgoingReply, Submission
from ivr.notify.zalo import ZaloReplySender
from ivr.notify.zalo_payloads import (
    ZaloApiError,
    ZaloPayloadError,
    event_signature,
    parse_event,
)
from ivr.web import zalo
from ivr.web.intake_state import INTAKE
from ivr.web.state import STATE
from ivr.web.webhook_guard import WEBHOOKS, WebhookGuard
from tests.config_checks import config_problems
from tests.rig.stack import EXAMPLE
from tests.rig.zalo_api import ZaloApiStandIn, running_zalo_api, signed_event, user_message_event

APP_ID = "1234567890123456789"
OA_ID = "579745863508352884"
OA_SECRET = "oa-secret-key-0123456789"
OA_TOKEN = "oa-access-token-abcdefghijklmnop"
USER = "2512523625412515"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def _data(api: ZaloApiStandIn | None = None) -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["channels"] = {
        "zalo": {
            "enabled": True,
            "app_id": APP_ID,
            "accounts": [
                {"oa_id": OA_ID, "hotline": "bac-tu-liem", "secret": OA_SECRET, "token": OA_TOKEN}
            ],
            **({"api_base_url": api.base_url, "media_hosts": [api.host]} if api else {}),
        }
    }
    return data


def _config(tmp_path: Path, data: dict[str, Any]) -> HotlineConfig:
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@dataclass
class FakeIntake:
    submissions: list[Submission] = field(default_factory=list)

    def submit(self, submission: Submission) -> IntakeResult:
        # As the real intake's sniffing: a file that is no JPEG is refused.
        if any(not a.content.startswith(b"\xff\xd8") for a in submission.attachments):
            raise IntakeRefused("tệp không phải ảnh (not an image)", "attachments")
        for index, earlier in enumerate(self.submissions):
            if earlier.idempotency_key == submission.idempotency_key:
                return IntakeResult(f"2611{index + 1:04d}", index + 1, index + 1, False, True)
        self.submissions.append(submission)
        number = len(self.submissions)
        return IntakeResult(f"2611{number:04d}", number, number, True)

    def status(self, case_code: str, contact: Any) -> Any:
        return None


@dataclass
class Webhook:
    client: TestClient
    intake: FakeIntake
    api: ZaloApiStandIn

    async def post(
        self,
        event: dict[str, Any],
        *,
        secret: str = OA_SECRET,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body, signed = signed_event(event, APP_ID, secret)
        answer = await self.client.post(
            "/channels/zalo/webhook", data=body, headers=signed if headers is None else headers
        )
        return answer.status, await answer.json()


def _event(msg_id: str, text: str = "", **kwargs: Any) -> dict[str, Any]:
    return user_message_event(
        app_id=APP_ID, oa_id=OA_ID, user_id=USER, msg_id=msg_id,
        timestamp_ms=int(time.time() * 1000), text=text, **kwargs,
    )  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    async with running_zalo_api({OA_TOKEN}) as api:
        config = _config(tmp_path, _data(api))
        intake = FakeIntake()
        app = web.Application()
        app[STATE] = SimpleNamespace(config=config)  # type: ignore[misc]
        app[INTAKE] = intake  # type: ignore[misc]
        app[WEBHOOKS] = WebhookGuard()
        for route in zalo.ROUTES:
            app.router.add_route(route.method, route.path, route.handler, name=route.name)
        async with TestClient(TestServer(app)) as client:
            yield Webhook(client, intake, api)


def test_the_signature_is_mac_sha256_of_app_id_body_timestamp_and_oa_secret_key() -> None:
    """As Zalo documents it: a plain SHA-256 (not an HMAC) over the four
    strings in this order, prefixed ``mac=``."""
    body = b'{"app_id":"1","timestamp":"1764493200000"}'
    expected = hashlib.sha256(b"1" + body + b"1764493200000" + OA_SECRET.encode()).hexdigest()
    assert event_signature("1", body, "1764493200000", OA_SECRET) == "mac=" + expected


def test_documented_text_and_image_events_are_read() -> None:
    text = _event("msg-a", "Đường ngập sâu")
    event = parse_event(json.dumps(text).encode())
    assert (event.event_name, event.sender_id, event.recipient_id, event.msg_id, event.text) == (
        "user_send_text",
        USER,
        OA_ID,
        "msg-a",
        "Đường ngập sâu",
    )
    image = _event("msg-b", image_urls=("https://cdn.example/a.jpg",))
    assert parse_event(json.dumps(image).encode()).image_urls == ("https://cdn.example/a.jpg",)
    for bad in (b"[]", b"{", json.dumps({**text, "sender": {"id": "a b"}}).encode(),
                json.dumps({**text, "timestamp": "soon"}).encode()):  # fmt: skip
        with pytest.raises(ZaloPayloadError):
            parse_event(bad)


async def test_a_signed_text_opens_a_case_for_the_zalo_user(webhook: Webhook) -> None:
    status, answer = await webhook.post(_event("msg-1", "Cống ở ngõ 5 bị tắc"))
    assert status == 200, answer
    assert answer["action"] == "case_opened" and answer["case_code"] == "26110001"
    [submission] = webhook.intake.submissions
    assert submission.hotline_id == "bac-tu-liem" and submission.channel is Channel.ZALO
    assert submission.contacts == ((ContactKind.ZALO, USER),)
    assert submission.idempotency_key == "msg-1" and submission.external_id == "msg-1"
    assert submission.text == "Cống ở ngõ 5 bị tắc" and submission.case_code is None
    # A message quoting a case code asks the intake to join it (whose it is, the
    # intake checks).
    await webhook.post(_event("msg-1b", "Bổ sung cho mã 26110001: đã tắc lại"))
    assert webhook.intake.submissions[-1].case_code == "26110001"


async def test_an_invalid_signature_is_refused_and_nothing_is_written(webhook: Webhook) -> None:
    event = _event("msg-2", "Giả mạo")
    assert (await webhook.post(event, secret="another-oa-secret-key"))[0] == 401
    assert (await webhook.post(event, headers={"Content-Type": "application/json"}))[0] == 401
    # A correct signature over another body signs nothing else.
    _, headers = signed_event(_event("msg-2", "Thật"), APP_ID, OA_SECRET)
    tampered = json.dumps(event).encode()
    response = await webhook.client.post("/channels/zalo/webhook", data=tampered, headers=headers)
    assert response.status == 401 and (await response.json()) == {"error": "invalid signature"}
    # Another app, another OA: refused before any signature could pass.
    status, answer = await webhook.post({**event, "app_id": "999"})
    assert status == 403 and "app_id" in answer["error"]
    status, answer = await webhook.post({**event, "recipient": {"id": "111"}})
    assert status == 403 and "official account" in answer["error"]
    assert webhook.intake.submissions == []


async def test_an_event_signed_outside_the_window_is_refused(webhook: Webhook) -> None:
    old = {**_event("msg-3", "Cũ"), "timestamp": str(int((time.time() - 3600) * 1000))}
    status, answer = await webhook.post(old)
    assert status == 401 and "window" in answer["error"]
    assert webhook.intake.submissions == []


async def test_a_replayed_event_makes_no_second_case(webhook: Webhook) -> None:
    event = _event("msg-4", "Cây đổ")
    first = await webhook.post(event)
    again = await webhook.post(event)
    assert first[0] == again[0] == 200 and again[1] == {**first[1], "duplicate": True}
    status, answer = await webhook.post({**event, "message": {"msg_id": "msg-4", "text": "Khác"}})
    assert status == 409 and "msg_id" in answer["error"]
    assert len(webhook.intake.submissions) == 1


async def test_an_image_is_fetched_only_from_an_allowed_host(webhook: Webhook) -> None:
    url = webhook.api.add_image("photo.jpg", JPEG)
    status, answer = await webhook.post(_event("msg-5", image_urls=(url,)))
    assert status == 200 and answer["attachments"] == 1, answer
    [submission] = webhook.intake.submissions
    assert [a.content for a in submission.attachments] == [JPEG]
    assert submission.text == zalo.IMAGE_ONLY_TEXT
    assert webhook.api.media_requests == ["photo.jpg"]
    # The same server by another name is not on the list: never fetched.
    elsewhere = url.replace("127.0.0.1", "localhost")
    for bad in (elsewhere, "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
                url.replace("http://", "http://user:pw@")):  # fmt: skip
        status, answer = await webhook.post(_event(f"msg-6-{len(bad)}", "Ảnh", image_urls=(bad,)))
        assert status == 200 and answer["attachments"] == 0, bad
    assert webhook.api.media_requests == ["photo.jpg"]
    assert [s.text for s in webhook.intake.submissions[1:]] == ["Ảnh"] * 4


async def test_a_large_image_is_fetched_whole(webhook: Webhook) -> None:
    large = JPEG[:-2] + bytes(range(256)) * 1600 + JPEG[-2:]  # ~400 KB, many TCP reads
    url = webhook.api.add_image("large.jpg", large)
    status, answer = await webhook.post(_event("msg-large", "Ảnh lớn", image_urls=(url,)))
    assert status == 200 and answer["attachments"] == 1, answer
    assert webhook.intake.submissions[-1].attachments[0].content == large


async def test_a_file_the_intake_refuses_as_an_image_does_not_lose_the_message(
    webhook: Webhook,
) -> None:
    url = webhook.api.add_image("not-a-photo.jpg", b"<html>not an image</html>")
    status, answer = await webhook.post(_event("msg-html", "Rác ở ngõ 3", image_urls=(url,)))
    assert status == 200 and answer["attachments"] == 0, answer
    submission = webhook.intake.submissions[-1]
    assert submission.attachments == ()
    assert submission.text == f"Rác ở ngõ 3\n{zalo.IMAGE_REFUSED}"


async def test_other_events_are_acknowledged_and_ignored(webhook: Webhook) -> None:
    follow = {
        "app_id": APP_ID, "event_name": "follow", "timestamp": str(int(time.time() * 1000)),
        "sender": {"id": OA_ID}, "recipient": {"id": OA_ID}, "follower": {"id": USER},
    }  # fmt: skip
    status, answer = await webhook.post(follow)
    assert (status, answer) == (200, {"ok": True, "ignored": "follow"})
    assert webhook.intake.submissions == []


async def test_an_oversized_body_is_413(webhook: Webhook) -> None:
    status, answer = await webhook.post(_event("msg-7", "x" * 70_000))
    assert status == 413 and "larger" in answer["error"]


def _reply(hotline_id: str = "bac-tu-liem") -> OutgoingReply:
    return OutgoingReply(message_id=7, case_code="26110001", hotline_id=hotline_id,
                         channel=Channel.ZALO, to=USER, subject="",
                         text="Phản ánh của quý vị đã được tiếp nhận, mã số 26110001.")  # fmt: skip


async def test_the_reply_sender_posts_a_cs_message_with_the_oa_access_token(
    tmp_path: Path,
) -> None:
    async with running_zalo_api({OA_TOKEN}) as api:
        sender = ZaloReplySender(_config(tmp_path, _data(api)))
        assert sender.channel is Channel.ZALO
        message_id = await sender.send(_reply())
        [sent] = api.sent
        assert sent["message_id"] == message_id
        assert (sent["user_id"], sent["access_token"]) == (USER, OA_TOKEN)
        assert "26110001" in sent["text"]


async def test_a_reply_names_its_case_once_and_has_no_subject_line(tmp_path: Path) -> None:
    async with running_zalo_api({OA_TOKEN}) as api:
        sender = ZaloReplySender(_config(tmp_path, _data(api)))
        ack = dataclasses.replace(_reply(), subject="[Mã số 26110001] Phản ánh đã được tiếp nhận")
        answer = dataclasses.replace(ack, text="Đã thay bóng đèn.")
        await sender.send(ack)
        await sender.send(answer)
        assert [m["text"] for m in api.sent] == [
            "Phản ánh của quý vị đã được tiếp nhận, mã số 26110001.",
            "Phản ánh mã số 26110001: Đã thay bóng đèn.",
        ]


async def test_the_reply_sender_raises_what_zalo_answered(tmp_path: Path) -> None:
    async with running_zalo_api({"another-token-0123456789"}) as api:
        sender = ZaloReplySender(_config(tmp_path, _data(api)))
        with pytest.raises(ZaloApiError) as caught:
            await sender.send(_reply())
        assert caught.value.code == -216
        with pytest.raises(ZaloApiError, match="no Zalo official account"):
            await sender.send(_reply("thanh-xuan"))
        assert api.sent == []


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    data = _data()
    data["channels"]["zalo"]["accounts"][0]["hotline"] = "no-such-hotline"
    data["channels"]["zalo"]["accounts"].append(dict(data["channels"]["zalo"]["accounts"][0]))
    del data["channels"]["zalo"]["app_id"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    problems = config_problems(path)
    assert "channels.zalo.accounts.0.hotline" in problems or "accounts[0]" in problems, problems
    assert "no-such-hotline" in problems and "listed twice" in problems, problems
    assert "the Zalo app's id is needed" in problems, problems
    data = _data()
    data["channels"]["zalo"]["api_base_url"] = "ftp://example"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "api_base_url" in config_problems(path)


def test_the_channels_secrets_are_masked_where_the_config_is_shown() -> None:
    data = _data()
    data["channels"]["sms"] = {"enabled": False, "secret": "bridge-secret-0123456789"}
    masked = mask_secrets(yaml.safe_dump(data, allow_unicode=True))
    for secret in (OA_SECRET, OA_TOKEN, "bridge-secret-0123456789"):
        assert secret not in masked
    assert masked.count(MASK) >= 3
