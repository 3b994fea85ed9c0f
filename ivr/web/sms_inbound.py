"""Inbound texts from the SMS gateway's bridge: ``POST /channels/sms/inbound``.

The bridge POSTs one JSON object per text (docs/channels.md):
``{"id", "from", "to", "text", "received_at"}``, signed with the shared secret
``channels.sms.secret``: ``X-Hotline-Signature: sha256=<hex HMAC-SHA256 of
"<X-Hotline-Timestamp>.<raw body>">``. A request signed outside the window is
refused; inside it the text's ``id`` makes a second copy a no-op.

``to`` (one of the hotlines' SMS numbers) picks the hotline. A short text
holding a case code (``cases.code_digits`` digits) asks for that case's
status: the citizen who opened it gets the status back by SMS, anyone else the
same "not found" as for a code that does not exist (a code never reveals
another person's case). Any other text becomes a case through the intake.
Errors are ``{"error": "…"}`` with 400, 401, 409 or 413.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.config.schema import HotlineConfig
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.status import CaseStatusView
from ivr.intake.types import IntakeRefused, Submission
from ivr.phone import normalise_caller
from ivr.web.intake_state import intake_of
from ivr.web.state import PUBLIC, Route, address_of, db, state_of
from ivr.web.webhook_guard import (
    WEBHOOKS,
    WebhookRefused,
    check_window,
    json_error,
    quoted_case_code,
    read_body,
    status_request_code,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hotline-Signature"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
TEXT_MAX = 2000  # characters: ten concatenated Unicode parts and then some
_ID_MAX = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Line breaks are part of a text; other control characters are not.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")

# How a case's status reads in a text (the console's Vietnamese labels).
STATUS_WORDS = {
    "received": "chờ tiếp nhận",
    "classified": "chờ xử lý",
    "assigned": "đã chuyển đơn vị xử lý",
    "in_progress": "đang xử lý",
    "answered": "đã xử lý",
    "closed": "đã đóng",
    "rejected": "bị từ chối",
}


def sms_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Hotline-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class InboundSms:
    id: str
    sender: str  # "from" as the bridge wrote it
    to: str
    text: str
    received_at: str


def parse_inbound(body: bytes) -> InboundSms:
    """The bridge's JSON, checked field by field (:class:`WebhookRefused` 400)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "the body is not a JSON object")
    fields: dict[str, str] = {}
    for name in ("id", "from", "to"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise WebhookRefused(400, f"{name}: missing")
        if len(value) > _ID_MAX or _CONTROL.search(value):
            raise WebhookRefused(400, f"{name}: too long or holds control characters")
        fields[name] = value.strip()
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise WebhookRefused(400, "text: missing or empty")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _TEXT_CONTROL.search(text):
        raise WebhookRefused(400, "text: holds control characters")
    if len(text) > TEXT_MAX:
        raise WebhookRefused(400, f"text: longer than {TEXT_MAX} characters")
    received_at = data.get("received_at", "")
    if not isinstance(received_at, str) or len(received_at) > 64 or _CONTROL.search(received_at):
        raise WebhookRefused(400, "received_at: expected an ISO 8601 time")
    return InboundSms(fields["id"], fields["from"], fields["to"], text.strip(), received_at)


def status_text(view: CaseStatusView, unit_name: str) -> str:
    """The status of the case ``view`` (the intake's status lookup) as a text."""
    status = view.status
    text = f"{unit_name}: phản ánh mã số {view.case_code} {STATUS_WORDS.get(status, status)}."
    if status not in ("answered", "closed", "rejected"):
        text += f" Hạn trả lời: {view.due_date.strftime('%d/%m/%Y')}."
    if view.answer and status in ("answered", "closed"):
        text += f" Trả lời: {view.answer}"
    return text


def not_found_text(code: str, unit_name: str) -> str:
    """The same words whether the code does not exist or is someone else's."""
    return (
        f"{unit_name}: không tìm thấy phản ánh mã số {code} của số điện thoại này. "
        "Xin kiểm tra lại mã số."
    )


def _unit_name(config: HotlineConfig, hotline_id: str) -> str:
    hotline = config.hotline(hotline_id)
    return hotline.unit_name if hotline else "Đường dây nóng"


async def sms_inbound(request: web.Request) -> web.Response:
    """One text from the bridge (see the module's docstring)."""
    state = state_of(request)
    section = state.config.channels.sms
    if not section.enabled or section.secret is None:
        return json_error(404, "the SMS channel is not enabled")
    webhooks = request.app[WEBHOOKS]
    address = address_of(request)
    limited = webhooks.too_many_refusals(address)
    if limited is not None:
        return limited
    guard = webhooks.replays
    try:
        body = await read_body(request, section.max_body_bytes)
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not stamp.isdigit() or len(stamp) > 12 or not signature:
            raise WebhookRefused(401, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
        expected = sms_signature(section.secret, stamp, body)
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            raise WebhookRefused(401, "invalid signature")
        now = time.time()
        check_window(int(stamp), now, section.window_seconds)
        sms = parse_inbound(body)
        hotline_id = section.hotline_of(sms.to)
        if hotline_id is None or state.config.hotline(hotline_id) is None:
            raise WebhookRefused(400, "to: not one of the hotlines' SMS numbers")
        number = normalise_caller(sms.sender).e164
        if number is None or not number.startswith("+"):
            raise WebhookRefused(400, "from: not a phone number")
    except WebhookRefused as refused:
        if refused.status == 401:
            logger.warning("SMS webhook refused from %s: %s", address, refused.message)
            webhooks.refused(address)
        return json_error(refused.status, refused.message)

    # The content, not the body: a bridge retrying may stamp it anew.
    digest = hashlib.sha256(f"{number}\n{hotline_id}\n{sms.text}".encode()).hexdigest()
    return await guard.answered_once(
        "sms", sms.id, digest, now, 2 * section.window_seconds,
        handle=lambda: _handle(request, sms, hotline_id, number),
        refused=_refused_answer,
        conflict="id: already used for another text",
        busy="id: the first copy of this text is still being handled",
    )  # fmt: skip


def _refused_answer(refused: IntakeRefused) -> web.Response:
    answer: dict[str, Any] = {"error": str(refused)}
    if refused.field:
        answer["field"] = refused.field
    return web.json_response(answer, status=400)


async def _handle(
    request: web.Request, sms: InboundSms, hotline_id: str, number: str
) -> dict[str, Any]:
    state = state_of(request)
    config = state.config
    intake = intake_of(request)
    code = status_request_code(sms.text, config.cases.code_digits)
    if code is not None:
        view = await db(intake.status, code, (ContactKind.PHONE, number))
        case = await db(state.cases.find_by_code, code) if view is not None else None
        unit = _unit_name(config, hotline_id)
        # The same person's case on another hotline is "not found" too: this
        # number wrote to this hotline, whose staff hold only its own cases.
        if view is not None and case is not None and case.hotline_id == hotline_id:
            await db(state.cases.text_citizen, number, status_text(view, unit),
                     "status_reply", case.id)  # fmt: skip
            logger.info("SMS %s: status of case %s sent", sms.id, code)
            return {"ok": True, "action": "status"}
        await db(state.cases.text_citizen, number, not_found_text(code, unit), "status_not_found")
        logger.info("SMS %s: asked for a case not found", sms.id)
        return {"ok": True, "action": "not_found"}
    # A report quoting its citizen's case code joins that case (the intake
    # checks it is theirs and this hotline's; otherwise it opens a new one).
    submission = Submission(
        hotline_id=hotline_id, channel=Channel.SMS, text=sms.text,
        contacts=((ContactKind.PHONE, number),), idempotency_key=sms.id, external_id=sms.id,
        case_code=quoted_case_code(sms.text, config.cases.code_digits),
    )  # fmt: skip
    result = await db(intake.submit, submission)
    logger.info("SMS %s: case %s (%s)", sms.id, result.case_code,
                "new" if result.created else "joined")  # fmt: skip
    return {
        "ok": True,
        "action": "case_opened" if result.created else "joined",
        "case_code": result.case_code,
        "duplicate": result.duplicate,
    }


ROUTES = [
    Route("POST", "/channels/sms/inbound", sms_inbound, PUBLIC, "channel_sms_inbound"),
]
