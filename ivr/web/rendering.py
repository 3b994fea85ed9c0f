"""How the console answers: a page from a template, the same error as a page
or as JSON, the "done" of a form post, and the refusal of a record outside
the user's scope. Also how a handler reads a form or a JSON body alike."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ivr.web.i18n import translator
from ivr.web.security import SessionData
from ivr.web.state import LANGUAGE, LOGIN_CSRF, SESSION, USER, audit, state_of, user_of

logger = logging.getLogger(__name__)


def is_api(request: web.Request) -> bool:
    """Does the client want JSON (an ``/api/`` path or an Accept header)?"""
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def wants_json(request: web.Request) -> bool:
    """JSON for the API and for the pages' own fetch() calls."""
    return is_api(request) or request.headers.get("X-Requested-With") == "fetch"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    state = state_of(request)
    language = request.get(LANGUAGE, state.config.web.default_language)
    session: SessionData | None = request.get(SESSION)
    html = state.templates.get_template(template).render(
        _=translator(language),
        language=language,
        user=request.get(USER),
        csrf_token=state.signer.csrf_token(session) if session else request.get(LOGIN_CSRF, ""),
        path=request.path_qs,
        config=state.config,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, title: str, message: str = "") -> web.Response:
    if is_api(request):
        return web.json_response({"error": title, "message": message}, status=status)
    _ = translator(request.get(LANGUAGE, "vi"))
    return render(request, "error.html", status=status, title=_(title), message=_(message))


def refused(request: web.Request) -> web.Response:
    return error_page(request, 403, "Access denied", "Your role does not allow this page.")


async def refuse(request: web.Request, action: str, target: str) -> web.Response:
    """A record outside the user's scope: 403, and the attempt is audited."""
    user = user_of(request)
    logger.info("%s (%s) refused %s", user.username, user.role, target)
    await audit(request, action, target, detail=f"{request.method} {request.path}")
    return refused(request)


def done(request: web.Request, back: str, **payload: Any) -> web.StreamResponse:
    """A form post succeeded: JSON for the API and fetch(), else back to ``back``."""
    if wants_json(request):
        return web.json_response({"ok": True, **payload})
    raise web.HTTPSeeOther(back)


async def form_or_json(request: web.Request) -> dict[str, str]:
    """The posted fields, from a form or a JSON object, as strings."""
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    return {k: str(v) for k, v in (await request.post()).items()}


def unknown_pause_reason(request: web.Request) -> web.Response:
    """A reason outside the configured codes: refused before anything reaches
    Asterisk (free text in an AMI header could inject actions)."""
    _ = translator(request[LANGUAGE])
    codes = ", ".join(r.code for r in state_of(request).config.pause_reasons)
    logger.warning("%s sent an unknown pause reason: refused", user_of(request).username)
    return error_page(
        request, 400, "Bad request",
        _("Unknown pause reason; choose one from the list ({codes}).", codes=codes),
    )  # fmt: skip
