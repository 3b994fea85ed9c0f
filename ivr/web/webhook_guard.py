"""What the signed webhooks (SMS bridge, Zalo) share: their JSON errors, a
body read with a size limit, the timestamp window, the replay guard, and how a
case code is found in a citizen's text.

A webhook is authenticated by its signature, and a signature stays valid for
ever; the timestamp window refuses a captured request sent again later, and
inside the window the message id makes a second copy a no-op (the
:class:`ReplayGuard` here, and the intake's idempotency key behind it, which
survives a restart).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import StreamReader, web

from ivr.intake.types import IntakeRefused
from ivr.web.security import LoginRateLimiter

logger = logging.getLogger(__name__)


class WebhookRefused(Exception):
    """A request refused with ``status`` and a message for the sender's
    developers (never anything secret)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(status: int, message: str) -> web.Response:
    """The webhooks' error format: ``{"error": "…"}``."""
    return web.json_response({"error": message}, status=status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body (signatures are over the bytes as sent), 413 beyond
    ``limit`` whether or not a Content-Length announced it."""
    if request.content_length is not None and request.content_length > limit:
        raise WebhookRefused(413, f"body larger than {limit} bytes")
    body = await read_at_most(request.content, limit + 1)
    if len(body) > limit:
        raise WebhookRefused(413, f"body larger than {limit} bytes")
    return body


async def read_at_most(stream: StreamReader, size: int) -> bytes:
    """The stream to its end or its first ``size`` bytes, whichever is first
    (``read(n)`` alone returns what has arrived so far)."""
    data = bytearray()
    while len(data) < size:
        chunk = await stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def check_window(sent_at: float, now: float, window_seconds: int) -> None:
    """401 when the request was signed outside ``window_seconds`` of now
    (either side: a clock a little ahead is tolerated, a replay later is not)."""
    if abs(now - sent_at) > window_seconds:
        raise WebhookRefused(401, "timestamp outside the accepted window (replay or clock skew)")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Claim(enum.Enum):
    NEW = "new"  # go on; call ``done`` or ``release``
    DUPLICATE = "duplicate"  # the same message again: answer what the first got
    CONFLICT = "conflict"  # the same id with another content
    BUSY = "busy"  # the first copy is still being handled


@dataclass
class _Seen:
    digest: str
    until: float
    result: dict[str, Any] | None = None  # None while the first copy is handled


class ReplayGuard:
    """Message ids seen in the last ``ttl`` seconds, per channel, with the
    answer the first copy got. One per application; used from the event loop
    only (a claim is a check and a set with no await between them, so two
    copies arriving together cannot both be NEW)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._max = max_entries

    def claim(
        self, channel: str, message_id: str, digest: str, now: float, ttl: float
    ) -> tuple[Claim, dict[str, Any] | None]:
        self._expire(now)
        key = (channel, message_id)
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self._max:
                # Full of live entries: forget the oldest; the intake's
                # idempotency key still stops a second case.
                oldest = min(self._seen, key=lambda k: self._seen[k].until)
                del self._seen[oldest]
            self._seen[key] = _Seen(digest, now + ttl)
            return Claim.NEW, None
        if seen.digest != digest:
            return Claim.CONFLICT, None
        if seen.result is None:
            return Claim.BUSY, None
        return Claim.DUPLICATE, seen.result

    def done(self, channel: str, message_id: str, result: dict[str, Any]) -> None:
        seen = self._seen.get((channel, message_id))
        if seen is not None:
            seen.result = result

    def release(self, channel: str, message_id: str) -> None:
        """The first copy failed: a retry is welcome."""
        self._seen.pop((channel, message_id), None)

    async def answered_once(
        self,
        channel: str,
        message_id: str,
        digest: str,
        now: float,
        ttl: float,
        *,
        handle: Callable[[], Awaitable[dict[str, Any]]],
        refused: Callable[[IntakeRefused], web.Response],
        conflict: str,
        busy: str,
    ) -> web.Response:
        """The answer to a message handled once (``handle``'s result): a
        second copy gets the first one's answer marked ``duplicate``; a copy
        while the first is in hand, or the same id with another ``digest``, a
        409 (``busy``, ``conflict``). A message the intake refuses (answered by
        ``refused``) or whose handling fails may be sent again."""
        found, first = self.claim(channel, message_id, digest, now, ttl)
        if found is Claim.DUPLICATE:
            return web.json_response({**(first or {}), "duplicate": True})
        if found is Claim.CONFLICT:
            return json_error(409, conflict)
        if found is Claim.BUSY:
            return json_error(409, busy)
        try:
            result = await handle()
        except IntakeRefused as error:
            self.release(channel, message_id)
            return refused(error)
        except BaseException:
            self.release(channel, message_id)
            raise
        self.done(channel, message_id, result)
        return web.json_response(result)

    def _expire(self, now: float) -> None:
        stale = [key for key, seen in self._seen.items() if seen.until < now]
        for key in stale:
            del self._seen[key]


# Refused requests (bad signature, unknown app, stale) per client address: past
# this many in the window the address gets 429 until the window passes, so a
# forger cannot hammer the signature check; a sender that signs correctly never
# comes near it.
REFUSALS = 30
REFUSAL_WINDOW_SECONDS = 60


class WebhookGuard:
    """One per application: the message ids seen lately and the refusals per
    client address."""

    def __init__(self) -> None:
        self.replays = ReplayGuard()
        self.refusals = LoginRateLimiter(REFUSALS, REFUSAL_WINDOW_SECONDS)

    def too_many_refusals(self, address: str) -> web.Response | None:
        """429 while ``address`` is over its budget of refused requests."""
        wait = self.refusals.blocked([f"webhook:{address}"])
        if wait <= 0:
            return None
        response = json_error(429, "too many refused requests from this address; wait")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def refused(self, address: str) -> None:
        self.refusals.failed([f"webhook:{address}"])


WEBHOOKS = web.AppKey("hotline_webhooks", WebhookGuard)


# --- case codes in a citizen's text ---------------------------------------------------

# A status request is the code with at most a few words around it ("TRA CUU
# 26110123", "mã 26110123?"); a longer text that holds a number of that length
# is a report (which may continue the case it quotes).
STATUS_REQUEST_MAX_WORDS = 4


def quoted_case_code(text: str, code_digits: int) -> str | None:
    """The one number of a case code's length in ``text``, or None (none, or
    several: which one would it be?)."""
    codes = re.findall(rf"(?<!\d)\d{{{code_digits}}}(?!\d)", text)
    return codes[0] if len(codes) == 1 else None


def status_request_code(text: str, code_digits: int) -> str | None:
    """The case code a short text asks about, or None when the text is a report."""
    code = quoted_case_code(text, code_digits)
    if code is None:
        return None
    rest = re.sub(r"[^\w\s]", " ", text.replace(code, " "))
    if len(rest.split()) > STATUS_REQUEST_MAX_WORDS or re.search(r"\d", rest):
        return None
    return code
