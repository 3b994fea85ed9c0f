"""A local stand-in for Zalo's Official Account API, and signed webhook events.

Nothing from Zalo can be reached from here, so the tests talk to this server
instead (``channels.zalo.api_base_url`` and ``media_hosts`` point at it). It
follows Zalo's published documentation (docs/channels.md cites it) for what
the hotline uses:

- ``POST /v3.0/oa/message/cs`` with the OA access token in the
  ``access_token`` header and ``{"recipient": {"user_id"}, "message":
  {"text"}}``: answers ``{"error": 0, "message": "Success", "data":
  {"message_id", "user_id"}}``; an unknown token ``{"error": -216, …}``, a
  malformed body ``{"error": -201, …}`` (HTTP 200 either way, as Zalo does);
- ``GET /media/<name>``: an image a citizen "sent" (Zalo's CDN in real life).

    async with running_zalo_api({"oa-token-…"}) as zalo:
        url = zalo.add_image("photo.jpg", jpeg_bytes)
        zalo.sent  # the messages the hotline sent, in order

:func:`signed_event` builds a webhook POST as Zalo signs it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ivr.notify.zalo_payloads import CS_MESSAGE_PATH, SIGNATURE_HEADER, event_signature


@dataclass
class ZaloApiStandIn:
    base_url: str
    tokens: set[str]
    sent: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    media_requests: list[str] = field(default_factory=list)
    # Set to make the next sends fail with Zalo's error (number, message).
    fail_with: tuple[int, str] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def host(self) -> str:
        return self.base_url.split("//", 1)[1].split(":", 1)[0]

    def add_image(self, name: str, content: bytes) -> str:
        self.media[name] = content
        return f"{self.base_url}/media/{name}"

    async def wait_for_sent(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The sent messages once there are ``count`` of them."""

        async def enough() -> None:
            while len(self.sent) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.sent


def _app(stand_in: ZaloApiStandIn) -> web.Application:
    async def cs_message(request: web.Request) -> web.Response:
        if request.headers.get("access_token") not in stand_in.tokens:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        try:
            body = await request.json()
            user_id = body["recipient"]["user_id"]
            text = body["message"]["text"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": -201, "message": "Parameters are invalid"})
        if not isinstance(user_id, str) or not isinstance(text, str) or not text:
            return web.json_response({"error": -201, "message": "Parameters are invalid"})
        if stand_in.fail_with is not None:
            code, message = stand_in.fail_with
            return web.json_response({"error": code, "message": message})
        message_id = secrets.token_hex(16)
        stand_in.sent.append(
            {"user_id": user_id, "text": text, "message_id": message_id,
             "access_token": request.headers["access_token"]}
        )  # fmt: skip
        stand_in._arrived.set()
        return web.json_response(
            {"error": 0, "message": "Success",
             "data": {"message_id": message_id, "user_id": user_id}}
        )  # fmt: skip

    async def media(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        stand_in.media_requests.append(name)
        content = stand_in.media.get(name)
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="image/jpeg")

    app = web.Application()
    app.router.add_post(CS_MESSAGE_PATH, cs_message)
    app.router.add_get("/media/{name}", media)
    return app


@asynccontextmanager
async def running_zalo_api(tokens: set[str]) -> AsyncIterator[ZaloApiStandIn]:
    """The stand-in on a free loopback port, for the ``async with`` block."""
    stand_in = ZaloApiStandIn(base_url="", tokens=tokens)
    runner = web.AppRunner(_app(stand_in), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    stand_in.base_url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def user_message_event(
    *,
    app_id: str,
    oa_id: str,
    user_id: str,
    msg_id: str,
    timestamp_ms: int,
    text: str = "",
    image_urls: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A ``user_send_text`` (or, with ``image_urls``, ``user_send_image``)
    event shaped as Zalo's documentation shows it."""
    message: dict[str, Any] = {"msg_id": msg_id}
    if text:
        message["text"] = text
    if image_urls:
        message["attachments"] = [
            {"type": "image", "payload": {"thumbnail": url, "url": url}} for url in image_urls
        ]
    return {
        "app_id": app_id,
        "user_id_by_app": "552177279717587730",
        "event_name": "user_send_image" if image_urls else "user_send_text",
        "timestamp": str(timestamp_ms),
        "sender": {"id": user_id},
        "recipient": {"id": oa_id},
        "message": message,
    }


def signed_event(
    event: dict[str, Any], app_id: str, oa_secret_key: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the webhook POST Zalo would send for ``event``."""
    body = json.dumps(event, ensure_ascii=False).encode()
    signature = event_signature(app_id, body, str(event["timestamp"]), oa_secret_key)
    return body, {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
