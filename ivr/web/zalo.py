"""The Zalo official account's webhook: ``POST /channels/zalo/webhook``.

Zalo POSTs each event of the OA here, signed as its documentation says
(:mod:`ivr.notify.zalo_payloads`; docs/channels.md cites the pages). A text
(``user_send_text``) or an image (``user_send_image``) from a user becomes a
case through the intake, the user's id as their contact
(:attr:`ContactKind.ZALO`) and the ``msg_id`` as the idempotency key; the
acknowledgement goes back through the OA message API
(:class:`ivr.notify.zalo.ZaloReplySender`, by the intake's reply dispatcher).
Other events are answered 200 and ignored.

Refused: a bad or missing signature (401) or an event of an app or OA not in
the config (403), before anything is read from it; an event signed outside
the window (401); a ``msg_id`` seen again with another content (409). An image
is downloaded only from a host in ``channels.zalo.media_hosts``, without
following redirects: a URL in an event never makes us fetch anything else.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ivr.config.channels import ZaloChannel
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IncomingAttachment, IntakeRefused, Submission
from ivr.notify.zalo_payloads import (
    IMAGE_EVENT,
    SIGNATURE_HEADER,
    TAKEN_EVENTS,
    ZaloEvent,
    ZaloPayloadError,
    parse_event,
    signature_valid,
)
from ivr.web.intake_state import intake_of
from ivr.web.state import PUBLIC, Route, address_of, db, state_of
from ivr.web.webhook_guard import (
    WEBHOOKS,
    WebhookRefused,
    body_digest,
    check_window,
    json_error,
    quoted_case_code,
    read_at_most,
    read_body,
)

logger = logging.getLogger(__name__)

# What the case's text says when the citizen sent only a photo.
IMAGE_ONLY_TEXT = "(Ảnh gửi qua Zalo, không kèm lời nhắn)"
IMAGE_NOT_FETCHED = "(Ảnh gửi qua Zalo không tải được)"
IMAGE_REFUSED = "(Tệp gửi qua Zalo không phải ảnh hợp lệ, không được lưu)"


def image_url_allowed(url: str, section: ZaloChannel) -> bool:
    """Whether ``url`` may be fetched: http(s), no credentials, a host of the
    allow-list (exact name, any letter case), the scheme's usual port or one
    given in the URL to a listed host."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return False
    del port
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    host = (parts.hostname or "").lower()
    return bool(host) and host in {h.lower() for h in section.media_hosts}


async def fetch_image(url: str, section: ZaloChannel) -> bytes | None:
    """The image's bytes, or None (not allowed, not found, too big, an error)."""
    if not image_url_allowed(url, section):
        logger.warning("Zalo image not fetched: host of %r is not in media_hosts", url[:200])
        return None
    timeout = aiohttp.ClientTimeout(total=section.timeout_seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                logger.warning("Zalo image %r answered HTTP %s", url[:200], response.status)
                return None
            content = await read_at_most(response.content, section.max_image_bytes + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("Zalo image %r not fetched: %s", url[:200], exc)
        return None
    if len(content) > section.max_image_bytes:
        logger.warning("Zalo image %r larger than %s bytes", url[:200], section.max_image_bytes)
        return None
    return content


def _authenticated_event(body: bytes, signature: str | None, section: ZaloChannel) -> ZaloEvent:
    """The event, once its app, OA and signature are known good."""
    try:
        event = parse_event(body)
    except ZaloPayloadError as exc:
        # Without a readable app id and timestamp there is no signature to
        # check either: refuse as unauthenticated, say why.
        raise WebhookRefused(401, f"unreadable event, signature not checked: {exc}") from None
    if section.app_id is None or event.app_id != section.app_id:
        raise WebhookRefused(403, "app_id: not this hotline's Zalo app")
    account = section.account_of_oa(event.recipient_id)
    if account is None and event.event_name not in TAKEN_EVENTS:
        # An OA's own events (sent, seen…) name the OA as the sender.
        account = section.account_of_oa(event.sender_id)
    if account is None:
        raise WebhookRefused(403, "recipient: not one of the hotlines' official accounts")
    if not signature_valid(signature, event.app_id, body, event.timestamp, account.secret):
        raise WebhookRefused(401, "invalid signature")
    return event


async def zalo_webhook(request: web.Request) -> web.Response:
    """One event of the OA (see the module's docstring)."""
    state = state_of(request)
    section = state.config.channels.zalo
    if not section.enabled:
        return json_error(404, "the Zalo channel is not enabled")
    webhooks = request.app[WEBHOOKS]
    address = address_of(request)
    limited = webhooks.too_many_refusals(address)
    if limited is not None:
        return limited
    try:
        body = await read_body(request, section.max_body_bytes)
        event = _authenticated_event(body, request.headers.get(SIGNATURE_HEADER), section)
        now = time.time()
        check_window(event.sent_at_seconds, now, section.window_seconds)
    except WebhookRefused as refused:
        logger.warning("Zalo webhook refused from %s: %s", address, refused.message)
        if refused.status in (401, 403):
            webhooks.refused(address)
        return json_error(refused.status, refused.message)
    if event.event_name not in TAKEN_EVENTS:
        return web.json_response({"ok": True, "ignored": event.event_name})

    guard = webhooks.replays
    key = f"{event.recipient_id}:{event.msg_id}"
    # Zalo's resend of an event is the same body; the signature covers it.
    return await guard.answered_once(
        "zalo", key, body_digest(body), now, 2 * section.window_seconds,
        handle=lambda: _submit(request, event, section),
        refused=lambda refused: json_error(400, str(refused)),
        conflict="msg_id: already used for another message",
        busy="msg_id: the first copy is still being handled",
    )  # fmt: skip


async def _submit(
    request: web.Request, event: ZaloEvent, section: ZaloChannel
) -> dict[str, object]:
    account = section.account_of_oa(event.recipient_id)
    assert account is not None  # checked with the signature
    attachments: list[IncomingAttachment] = []
    text = event.text.strip()
    if event.event_name == IMAGE_EVENT:
        for index, url in enumerate(event.image_urls[:5]):
            content = await fetch_image(url, section)
            if content is not None:
                attachments.append(IncomingAttachment(f"zalo-{event.msg_id}-{index + 1}", content))
        if not text:
            text = IMAGE_ONLY_TEXT if attachments else IMAGE_NOT_FETCHED
    # A message quoting its citizen's case code joins that case's thread (the
    # intake checks the case is theirs and this hotline's; otherwise a new case).
    code_digits = state_of(request).config.cases.code_digits
    submission = Submission(
        hotline_id=account.hotline, channel=Channel.ZALO, text=text,
        contacts=((ContactKind.ZALO, event.sender_id),), attachments=tuple(attachments),
        idempotency_key=event.msg_id, external_id=event.msg_id,
        case_code=quoted_case_code(event.text, code_digits),
    )  # fmt: skip
    try:
        result = await db(intake_of(request).submit, submission)
    except IntakeRefused as refused:
        if refused.field != "attachments" or not attachments:
            raise
        # A file that is no image (or too big) must not lose the message: Zalo
        # would resend the event for hours. File it without, and say so.
        logger.warning("Zalo message %s: image refused (%s), filed without", event.msg_id, refused)
        attachments = []
        note = IMAGE_REFUSED
        text = note if text in (IMAGE_ONLY_TEXT, IMAGE_NOT_FETCHED) else f"{text}\n{note}"
        submission = dataclasses.replace(submission, text=text, attachments=())
        result = await db(intake_of(request).submit, submission)
    logger.info("Zalo message %s: case %s (%s)", event.msg_id, result.case_code,
                "new" if result.created else "joined")  # fmt: skip
    return {
        "ok": True,
        "action": "case_opened" if result.created else "joined",
        "case_code": result.case_code,
        "duplicate": result.duplicate,
        "attachments": len(attachments),
    }


ROUTES = [
    Route("POST", "/channels/zalo/webhook", zalo_webhook, PUBLIC, "channel_zalo_webhook"),
]
