"""Signing in and out, the language switch, the home redirect and ``/api/v1/me``.

The session check and the role check of every route are the middleware's
(:mod:`ivr.web.app`); here a user becomes a session and a session ends."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from ivr.web import audit_store
from ivr.web.i18n import LANGUAGES, translator
from ivr.web.models import WebUser
from ivr.web.rendering import error_page, render
from ivr.web.state import (
    LANGUAGE,
    LOGIN_CSRF,
    PUBLIC,
    SIGNED_IN,
    Route,
    address_of,
    audit,
    db,
    session_of,
    state_of,
    user_of,
)

logger = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_session"
LOGIN_CSRF_COOKIE = "hotline_login_csrf"
LANG_COOKIE = "hotline_lang"


def safe_next(target: str) -> str:
    """Only a local path: never an open redirect to another site. Browsers drop
    tabs and newlines from a Location and read ``\\`` as ``/``, so
    ``/<TAB>/evil.example`` would become ``//evil.example``: any control character,
    space or backslash is refused, and what is left must parse as a bare path."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or any(ch in target for ch in "\\ ")
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="Strict", path="/",
        secure=state_of(request).config.web.cookie_secure,
    )  # fmt: skip


def home_of(user: WebUser) -> str:
    return {
        "agent": "/agent", "supervisor": "/wallboard", "admin": "/wallboard",
        # A clerk of a responsible unit: the cases forwarded to their unit.
        "unit": "/forwards",
    }[user.role]  # fmt: skip


async def login_page(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    request[LOGIN_CSRF] = token
    response = render(request, "login.html", next=safe_next(request.query.get("next", "/")))
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await request.post()
    _ = translator(request[LANGUAGE])
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, str(form.get("csrf_token", ""))):
        return error_page(
            request, 403, "Bad request", "The form has expired; reload the page and try again."
        )
    address = address_of(request)
    keys = [f"user:{username}|addr:{address}"]
    wait = max(state.limiter.blocked(keys), state.address_limiter.blocked([address]))
    if wait > 0:
        await db(audit_store.audit, state.sessions, username, "login_blocked", address=address)
        request[LOGIN_CSRF] = expected
        return render(
            request, "login.html", status=429, next=next_path,
            error=_("Too many failed sign-ins. Try again in {seconds} s.", seconds=int(wait) + 1),
        )  # fmt: skip
    user = await db(state.users.authenticate, username, password)
    if user is None:
        state.limiter.failed(keys)
        state.address_limiter.failed([address])
        await db(audit_store.audit, state.sessions, username, "login_failed", address=address)
        request[LOGIN_CSRF] = expected
        return render(
            request, "login.html", status=401, next=next_path,
            error=_("Wrong user name or password."),
        )  # fmt: skip
    state.limiter.succeeded(keys)
    cookie, issued = state.signer.issue(user.id, user.session_epoch)
    await db(state.web_sessions.open, issued, address)
    await db(audit_store.audit, state.sessions, user.username, "login", address=address)
    response = web.HTTPFound(next_path if next_path != "/" else home_of(user))
    set_cookie(request, response, SESSION_COOKIE, cookie, int(state.signer.lifetime))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server, not only in this browser: a copy of the
    cookie is refused from now on."""
    await db(state_of(request).web_sessions.close, session_of(request))
    await audit(request, "logout")
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.StreamResponse:
    language = request.match_info["language"]
    if language not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPFound(safe_next(request.query.get("next", "/")))
    set_cookie(request, response, LANG_COOKIE, language, 365 * 86400)
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(home_of(user_of(request)))


async def me_api(request: web.Request) -> web.Response:
    user = user_of(request)
    return web.json_response(
        {"username": user.username, "role": user.role, "agent_id": user.agent_id,
         "csrf_token": state_of(request).signer.csrf_token(session_of(request))}
    )  # fmt: skip


ROUTES = [
    Route("GET", "/login", login_page, PUBLIC, "login"),
    Route("POST", "/login", login_submit, PUBLIC, "login_submit"),
    Route("GET", "/lang/{language}", set_language, PUBLIC, "language"),
    Route("POST", "/logout", logout, SIGNED_IN, "logout"),
    Route("GET", "/", home, SIGNED_IN, "home"),
    Route("GET", "/api/v1/me", me_api, SIGNED_IN, "me"),
]
