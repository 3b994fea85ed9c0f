"""Zalo Official Account wire formats, in one place: the webhook's signature,
the events we take (text and image messages) and the OA message API's request
and answer. Pure functions; :mod:`ivr.web.zalo` and :mod:`ivr.notify.zalo` use
them, and so does the test stand-in ``tests/rig/zalo_api.py``.

Facts this relies on (Zalo's documentation and published integrations, cited
in docs/channels.md; a live OA was not tried from here):

- Every webhook POST carries ``X-ZEvent-Signature: mac=<hex>`` where ``<hex>``
  is SHA-256 (a plain hash, not an HMAC) of the app id, the raw JSON body, the
  ``timestamp`` field of that body and the OA secret key, concatenated in that
  order. The OA secret key is not the app secret.
- An event is JSON: ``app_id``, ``event_name``, ``timestamp`` (milliseconds,
  a string), ``sender.id`` (the user's id as this OA sees it), ``recipient.id``
  (the OA's id), ``user_id_by_app`` and ``message``: ``msg_id``, ``text`` and,
  for ``user_send_image``, ``attachments[]`` of ``{"type": "image",
  "payload": {"url", "thumbnail"}}``.
- Zalo expects 200 quickly and resends an event it did not get 200 for.
- The customer-service message API is ``POST {base}/v3.0/oa/message/cs`` with
  the OA access token in an ``access_token`` header and a JSON body
  ``{"recipient": {"user_id"}, "message": {"text"}}``; it answers
  ``{"error": 0, "message": "Success", "data": {"message_id", "user_id"}}``, or
  a negative ``error`` with a ``message`` (-216: the access token is invalid).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-ZEvent-Signature"
CS_MESSAGE_PATH = "/v3.0/oa/message/cs"
TEXT_EVENT = "user_send_text"
IMAGE_EVENT = "user_send_image"
TAKEN_EVENTS = frozenset({TEXT_EVENT, IMAGE_EVENT})
TEXT_LIMIT = 2000  # characters of a text message the API accepts
_ID_MAX = 64


class ZaloPayloadError(ValueError):
    """An event we cannot read (not JSON, a field missing or of the wrong type)."""


class ZaloApiError(RuntimeError):
    """The message API refused a message; ``code`` is Zalo's error number."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Zalo error {code}: {message}")
        self.code = code


def event_signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The ``X-ZEvent-Signature`` value Zalo sends with ``body``."""
    digest = hashlib.sha256(
        app_id.encode() + body + timestamp.encode() + oa_secret_key.encode()
    ).hexdigest()
    return f"mac={digest}"


def signature_valid(
    header: str | None, app_id: str, body: bytes, timestamp: str, oa_secret_key: str
) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time compare)."""
    if not header:
        return False
    expected = event_signature(app_id, body, timestamp, oa_secret_key)
    return hmac.compare_digest(header.strip().encode(), expected.encode())


@dataclass(frozen=True)
class ZaloEvent:
    app_id: str
    event_name: str
    timestamp: str  # as sent: it is part of the signature
    sender_id: str
    recipient_id: str  # the OA, for a user's message
    msg_id: str
    text: str
    image_urls: tuple[str, ...]

    @property
    def sent_at_seconds(self) -> float:
        return int(self.timestamp) / 1000


def parse_event(body: bytes) -> ZaloEvent:
    """Read a webhook event; :class:`ZaloPayloadError` says what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ZaloPayloadError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ZaloPayloadError("the body is not a JSON object")
    app_id = _id(data.get("app_id"), "app_id")
    event_name = _id(data.get("event_name"), "event_name")
    timestamp = data.get("timestamp")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 16:
        raise ZaloPayloadError("timestamp: expected milliseconds since 1970")
    sender = _object(data.get("sender"))
    recipient = _object(data.get("recipient"))
    message = data.get("message")
    msg_id, text, urls = "", "", []
    if event_name in TAKEN_EVENTS:
        if not isinstance(message, dict):
            raise ZaloPayloadError("message: missing")
        msg_id = _id(message.get("msg_id"), "message.msg_id")
        text = message.get("text") or ""
        if not isinstance(text, str):
            raise ZaloPayloadError("message.text: expected a string")
        attachments = message.get("attachments") or []
        if not isinstance(attachments, list):
            raise ZaloPayloadError("message.attachments: expected a list")
        for attachment in attachments:
            if not isinstance(attachment, dict) or attachment.get("type") != "image":
                continue
            payload = attachment.get("payload")
            url = payload.get("url") if isinstance(payload, dict) else None
            if isinstance(url, str) and url:
                urls.append(url)
        if event_name == IMAGE_EVENT and not urls:
            raise ZaloPayloadError("message.attachments: no image URL")
    return ZaloEvent(
        app_id=app_id, event_name=event_name, timestamp=timestamp,
        sender_id=_id(sender.get("id"), "sender.id"),
        recipient_id=_id(recipient.get("id"), "recipient.id"),
        msg_id=msg_id, text=text, image_urls=tuple(urls),
    )  # fmt: skip


def cs_message(user_id: str, text: str) -> dict[str, Any]:
    """The body of a customer-service text message to ``user_id``."""
    return {"recipient": {"user_id": user_id}, "message": {"text": text[:TEXT_LIMIT]}}


def sent_message_id(answer: Any) -> str | None:
    """The message id of the API's answer, or :class:`ZaloApiError`."""
    if not isinstance(answer, dict):
        raise ZaloApiError(-1, "the answer is not a JSON object")
    code = answer.get("error")
    if code != 0:
        number = code if isinstance(code, int) else -1
        raise ZaloApiError(number, str(answer.get("message") or "no message")[:300])
    data = answer.get("data")
    message_id = data.get("message_id") if isinstance(data, dict) else None
    return str(message_id) if message_id else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any, name: str) -> str:
    """An id or name as Zalo sends it (digits, letters, ``_``), never text."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _ID_MAX
        or not all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in value)
    ):
        raise ZaloPayloadError(f"{name}: missing or not an id")
    return value
