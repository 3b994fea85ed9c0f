"""The frame every Open311 handler (:mod:`ivr.web.open311`) runs in: the
format the path asks for, answers and errors in that format (a failure of ours
too: a 500 the client can parse), the channel's on/off switch, the read
budget, and which hotline a ``jurisdiction_id`` names.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivr.config.channels import Open311Channel
from ivr.config.schema import HotlineConfig
from ivr.web.open311_format import FORMATS, Open311Error, error_body, render
from ivr.web.open311_limits import TooMany, budgets_of, spend
from ivr.web.state import Handler, address_of, state_of

logger = logging.getLogger(__name__)

BASE = "/open311/v2"

# A handler inside the frame: the request, the format ("json" or "xml"), the
# enabled channel's settings.
Open311Handler = Callable[[web.Request, str, Open311Channel], Awaitable[web.StreamResponse]]


def request_format(request: web.Request) -> str:
    """The format the path asks for; JSON for the error of an unknown one."""
    fmt = request.match_info.get("fmt", "json")
    return fmt if fmt in FORMATS else "json"


def answer(fmt: str, names: tuple[str, str | None], body: Any, status: int = 200) -> web.Response:
    """``body`` in ``fmt`` under the spec's element ``names``."""
    data, content_type = render(fmt, names, body)
    return web.Response(status=status, body=data, headers={"Content-Type": content_type})


def error_response(fmt: str, error: Open311Error) -> web.Response:
    """The spec's error list with the error's status (and Retry-After on 429)."""
    data, content_type = error_body(fmt, [(error.status, error.description)])
    headers = {"Content-Type": content_type}
    if isinstance(error, TooMany):
        headers["Retry-After"] = str(error.retry_after)
    return web.Response(status=error.status, body=data, headers=headers)


def channel_of(request: web.Request) -> Open311Channel:
    """The Open311 settings; 404 while the channel is off."""
    channel = state_of(request).config.channels.open311
    if not channel.enabled:
        raise Open311Error(404, "Open311 is not enabled on this server")
    return channel


def hotline_id_of(config: HotlineConfig, jurisdiction: str | None) -> str:
    """The hotline a ``jurisdiction_id`` names: required with several hotlines,
    optional with one."""
    jurisdiction = (jurisdiction or "").strip()
    if jurisdiction:
        if config.hotline(jurisdiction) is None:
            raise Open311Error(404, f"unknown jurisdiction_id {jurisdiction[:64]!r}")
        return jurisdiction
    if len(config.hotlines) == 1:
        return config.hotlines[0].id
    known = ", ".join(h.id for h in config.hotlines)
    raise Open311Error(400, f"jurisdiction_id is required on this server (one of: {known})")


def guarded(handler: Open311Handler) -> Handler:
    """Every Open311 handler: errors in the spec's format (a failure of ours
    too: a 500 the client can parse), the read budget."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        fmt = request_format(request)
        try:
            if request.match_info.get("fmt") not in FORMATS:
                raise Open311Error(404, "unknown format: use .json or .xml")
            channel = channel_of(request)
            if request.method == "GET":
                spend(budgets_of(request, channel).reads, address_of(request))
            return await handler(request, fmt, channel)
        except Open311Error as exc:
            return error_response(fmt, exc)
        except web.HTTPRequestEntityTooLarge:
            return error_response(fmt, Open311Error(413, "the request is too large"))
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("open311 %s %s failed", request.method, request.path)
            return error_response(fmt, Open311Error(500, "the server failed; nothing was saved"))

    return run
