"""The aiohttp application: middlewares (session, role check, CSRF, headers)
and the page and API routes.

Every route is registered with the roles that may use it (:func:`_routes`);
the auth middleware refuses a route registered without roles, so a route can
never be public by omission.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ivr.agi import variables as v
from ivr.cases.models import STATUSES, Case
from ivr.cases.service import SEVERITIES, CaseError, CaseNotFound, CaseService
from ivr.config.apply import AppliedConfig, ConfigApplier
from ivr.config.loader import ConfigError
from ivr.config.pause_reasons import SUPERVISOR_PAUSE
from ivr.config.schema import HotlineConfig, iter_areas
from ivr.phone import normalise_caller
from ivr.transcription.recognizer import turns_from_json
from ivr.web import store, xlsx
from ivr.web.access import AccessScope
from ivr.web.charts import bar_chart, stacked_bars
from ivr.web.i18n import LANGUAGES, translator
from ivr.web.live import LiveHub
from ivr.web.models import ADMIN, AGENT, SUPERVISOR, WebUser
from ivr.web.openapi import openapi_document
from ivr.web.security import LoginRateLimiter, SessionData, SessionSigner, client_address
from ivr.web.session_store import SessionStore

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "hotline_session"
LOGIN_CSRF_COOKIE = "hotline_login_csrf"
LANG_COOKIE = "hotline_lang"
PUBLIC: frozenset[str] = frozenset({"public"})
STAFF = frozenset({ADMIN, SUPERVISOR, AGENT})
WATCHERS = frozenset({ADMIN, SUPERVISOR})
ADMINS = frozenset({ADMIN})
AGENTS = frozenset({AGENT})
SPY_OPTIONS = {"listen": "", "whisper": "w", "barge": "B"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebState:
    config: HotlineConfig
    sessions: sessionmaker[Session]
    signer: SessionSigner
    users: store.UserStore
    web_sessions: SessionStore
    cases: CaseService
    hub: LiveHub
    queue_manager: Any | None  # queue_manager.manager.QueueManager
    limiter: LoginRateLimiter  # failed sign-ins per (user name, client address)
    address_limiter: LoginRateLimiter  # and per client address, for any user names
    templates: jinja2.Environment
    zone: ZoneInfo
    recordings_root: Path
    applier: ConfigApplier | None = None  # set when this process owns the config file
    roles: dict[str, frozenset[str]] = field(default_factory=dict)  # route name → roles


STATE = web.AppKey("hotline_state", WebState)
# What the middlewares put on each request.
USER = web.RequestKey("hotline_user", WebUser)
SESSION = web.RequestKey("hotline_session", SessionData)
LANGUAGE = web.RequestKey("hotline_language", str)
LOGIN_CSRF = web.RequestKey("hotline_login_csrf", str)  # the login form's token


async def db(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a synchronous database function off the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


def _state(request: web.Request) -> WebState:
    return request.app[STATE]


def _user(request: web.Request) -> WebUser:
    user = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized()
    return user  # type: ignore[no-any-return]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def _address(request: web.Request) -> str:
    """The client's address: the peer, or, when the peer is a trusted reverse
    proxy, the right-most X-Forwarded-For entry that is not a trusted proxy
    (entries further left are whatever the client wrote)."""
    return client_address(
        request.remote or "", request.headers.getall("X-Forwarded-For", []),
        _state(request).config.web.trusted_proxies,
    )  # fmt: skip


# --- rendering --------------------------------------------------------------------


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    state = _state(request)
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
    if _is_api(request):
        return web.json_response({"error": title, "message": message}, status=status)
    _ = translator(request.get(LANGUAGE, "vi"))
    return render(request, "error.html", status=status, title=_(title), message=_(message))


# --- middlewares ------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    # Everything the pages use is served by the app itself: no CDN, no inline script.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if "Cache-Control" not in response.headers and not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session → user; role check for the route; CSRF check for every POST."""
    state = _state(request)
    session = state.signer.read(request.cookies.get(SESSION_COOKIE))
    user: WebUser | None = None
    if session is not None:
        # The signed cookie alone is not enough: the session must still be on
        # record (signing out deletes it), and the user active at the same epoch.
        user = await db(state.web_sessions.user_of, session)
        if user is None:
            session = None
    request[USER], request[SESSION] = user, session
    language = request.cookies.get(LANG_COOKIE) or (user.language if user else None)
    request[LANGUAGE] = language if language in LANGUAGES else state.config.web.default_language

    if request.path.startswith("/static/"):
        return await handler(request)
    route_name = request.match_info.route.name
    roles = state.roles.get(route_name or "")
    if roles is None:
        if isinstance(request.match_info.http_exception, web.HTTPException):
            code = request.match_info.http_exception.status
            return error_page(request, code, "Not found" if code == 404 else "Bad request")
        logger.error("route %s %s has no roles: refused", request.method, request.path)
        return error_page(request, 403, "Access denied")
    if roles is not PUBLIC:
        if user is None or session is None:
            if _is_api(request) or request.path.startswith("/ws/"):
                return web.json_response({"error": "not signed in"}, status=401)
            raise web.HTTPFound(f"/login?next={request.path_qs}")
        if user.role not in roles:
            logger.info("%s (%s) refused %s", user.username, user.role, request.path)
            # Trying a route of another role is worth an auditor's eye too.
            await db(store.audit, state.sessions, user.username, "route_refused",
                     f"{request.method} {request.path}"[:255], detail=user.role,
                     address=_address(request))  # fmt: skip
            return error_page(request, 403, "Access denied", "Your role does not allow this page.")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            token = request.headers.get("X-CSRF-Token")
            if token is None and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                token = str((await request.post()).get("csrf_token", ""))
            if not state.signer.check_csrf(session, token):
                return error_page(
                    request, 403, "Bad request",
                    "The form has expired; reload the page and try again.",
                )  # fmt: skip
    return await handler(request)


# --- sign in and out --------------------------------------------------------------


def _safe_next(target: str) -> str:
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


async def login_page(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    request[LOGIN_CSRF] = token
    response = render(request, "login.html", next=_safe_next(request.query.get("next", "/")))
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="Strict", path="/",
        secure=_state(request).config.web.cookie_secure,
    )  # fmt: skip


async def login_submit(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    form = await request.post()
    _ = translator(request[LANGUAGE])
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, str(form.get("csrf_token", ""))):
        return error_page(
            request, 403, "Bad request", "The form has expired; reload the page and try again."
        )
    address = _address(request)
    keys = [f"user:{username}|addr:{address}"]
    wait = max(state.limiter.blocked(keys), state.address_limiter.blocked([address]))
    if wait > 0:
        await db(store.audit, state.sessions, username, "login_blocked", address=_address(request))
        request[LOGIN_CSRF] = expected
        return render(
            request, "login.html", status=429, next=next_path,
            error=_("Too many failed sign-ins. Try again in {seconds} s.", seconds=int(wait) + 1),
        )  # fmt: skip
    user = await db(state.users.authenticate, username, password)
    if user is None:
        state.limiter.failed(keys)
        state.address_limiter.failed([address])
        await db(store.audit, state.sessions, username, "login_failed", address=_address(request))
        request[LOGIN_CSRF] = expected
        return render(
            request, "login.html", status=401, next=next_path,
            error=_("Wrong user name or password."),
        )  # fmt: skip
    state.limiter.succeeded(keys)
    cookie, issued = state.signer.issue(user.id, user.session_epoch)
    await db(state.web_sessions.open, issued, _address(request))
    await db(store.audit, state.sessions, user.username, "login", address=_address(request))
    response = web.HTTPFound(next_path if next_path != "/" else _home(user))
    _set_cookie(request, response, SESSION_COOKIE, cookie, int(state.signer.lifetime))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server, not only in this browser: a copy of the
    cookie is refused from now on."""
    state = _state(request)
    await db(state.web_sessions.close, request[SESSION])
    await db(store.audit, state.sessions, _user(request).username, "logout",
             address=_address(request))  # fmt: skip
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.StreamResponse:
    language = request.match_info["language"]
    if language not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPFound(_safe_next(request.query.get("next", "/")))
    _set_cookie(request, response, LANG_COOKIE, language, 365 * 86400)
    raise response


def _home(user: WebUser) -> str:
    return {"agent": "/agent", "supervisor": "/wallboard", "admin": "/wallboard"}[user.role]


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(_home(_user(request)))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def me_api(request: web.Request) -> web.Response:
    user = _user(request)
    return web.json_response(
        {"username": user.username, "role": user.role, "agent_id": user.agent_id,
         "csrf_token": _state(request).signer.csrf_token(request[SESSION])}
    )  # fmt: skip


# --- wallboard and supervisor actions ---------------------------------------------


async def wallboard_page(request: web.Request) -> web.Response:
    state = _state(request)
    return render(
        request, "wallboard.html", phones=[p.id for p in state.config.phones],
        agents={a.id: a for a in state.config.agents},
    )  # fmt: skip


async def wallboard_socket(request: web.Request) -> web.StreamResponse:
    return await _state(request).hub.serve(request, "wallboard")


async def wallboard_api(request: web.Request) -> web.Response:
    return web.json_response(_state(request).hub.board())


def _manager(request: web.Request) -> Any:
    manager = _state(request).queue_manager
    if manager is None:
        raise web.HTTPServiceUnavailable(text="the queue manager does not run in this process")
    return manager


async def _form_or_json(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    return {k: str(v) for k, v in (await request.post()).items()}


def _done(request: web.Request, back: str, **payload: Any) -> web.StreamResponse:
    if _is_api(request) or request.headers.get("X-Requested-With") == "fetch":
        return web.json_response({"ok": True, **payload})
    raise web.HTTPSeeOther(back)


async def supervise_agent(request: web.Request) -> web.StreamResponse:
    """Pause, resume or log off an agent from the wallboard (audited)."""
    state = _state(request)
    user = _user(request)
    agent_id = request.match_info["agent_id"]
    action = request.match_info["action"]
    if state.config.web and agent_id not in {a.id for a in state.config.agents}:
        return error_page(request, 404, "Not found")
    manager = _manager(request)
    form = await _form_or_json(request)
    if action == "pause":
        reason = form.get("reason") or SUPERVISOR_PAUSE
        if state.config.pause_reason(reason) is None:
            return _unknown_pause_reason(request)
        await manager.pause(agent_id, reason)
    elif action == "unpause":
        await manager.unpause(agent_id)
    elif action == "logout":
        await manager.logout(agent_id, by=user.username)
    else:
        return error_page(request, 404, "Not found")
    await db(store.audit, state.sessions, user.username, f"agent_{action}", agent_id,
             address=_address(request))  # fmt: skip
    return _done(request, "/wallboard", agent=agent_id, action=action)


async def spy(request: web.Request) -> web.StreamResponse:
    """Listen, whisper or barge in on an agent's call: Asterisk rings the
    supervisor's phone and, when answered, runs ChanSpy on the agent's phone
    (context ``hotline-spy`` in the rendered dialplan). Audited."""
    state = _state(request)
    user = _user(request)
    form = await _form_or_json(request)
    agent = next((a for a in state.config.agents if a.id == form.get("agent_id")), None)
    mode = form.get("mode", "")
    phone = form.get("phone", "")
    if agent is None or mode not in SPY_OPTIONS or phone not in {p.id for p in state.config.phones}:
        return error_page(request, 400, "Bad request")
    manager = _manager(request)
    interface = f"PJSIP/{agent.phone}"
    link = next(
        (
            link
            for link in manager.links.values()
            if any(interface in q.members for q in link.model.queues.values())
        ),
        next(iter(manager.links.values())),
    )
    channel = await _live_channel_of(link, agent.phone)
    if channel is None:
        return error_page(request, 409, "Bad request", "The agent is not on a call.")
    await link.send(
        {
            "Action": "Originate",
            "Channel": f"PJSIP/{phone}",
            "Context": "hotline-spy",
            "Exten": agent.phone,
            "Priority": "1",
            "CallerID": f"{mode} <{agent.phone}>",
            # One header line per variable (panoramisk writes a list that way).
            "Variable": [f"{v.SPY_OPTS}={SPY_OPTIONS[mode]}", f"{v.SPY_CHANNEL}={channel}"],
            "Async": "true",
        }
    )
    await db(store.audit, state.sessions, user.username, f"spy_{mode}", agent.id,
             detail=f"from phone {phone}", address=_address(request))  # fmt: skip
    return _done(request, "/wallboard", agent=agent.id, mode=mode)


async def _live_channel_of(link: Any, phone: str) -> str | None:
    """The agent phone's channel that is up now, by exact endpoint: Asterisk
    names PJSIP channels ``PJSIP/<endpoint>-<8 hex digits>``, so ``dtv-1``
    never matches ``PJSIP/dtv-10-…``."""
    answer = await link.send({"Action": "CoreShowChannels"}, as_list=True)
    pattern = re.compile(rf"^PJSIP/{re.escape(phone)}-[0-9a-f]{{8}}$")
    channels = [
        (m.get("ChannelState") == "6", str(m.get("Channel", "")))
        for m in answer
        if m.get("Event") == "CoreShowChannel" and pattern.match(str(m.get("Channel", "")))
    ]
    # An answered channel (state 6, Up) first.
    return max(channels)[1] if channels else None


# --- agent console ----------------------------------------------------------------


def _agent_of(request: web.Request) -> Any:
    user = _user(request)
    agent = next((a for a in _state(request).config.agents if a.id == user.agent_id), None)
    if agent is None:
        raise web.HTTPForbidden(text="this user is linked to no agent of the config")
    return agent


def _agent_state(request: web.Request) -> dict[str, Any]:
    agent = _agent_of(request)
    interface = f"PJSIP/{agent.phone}"
    queues = []
    for queue in _state(request).hub.board()["queues"]:
        for member in queue["agents"]:
            if member["interface"] == interface:
                queues.append(
                    {"queue": queue["id"], "title": queue["title"], "state": member["state"],
                     "paused": member["paused"], "reason": member["paused_reason"]}
                )  # fmt: skip
    return {"agent_id": agent.id, "name": agent.name, "interface": interface, "queues": queues}


async def agent_page(request: web.Request) -> web.Response:
    state = _state(request)
    return render(
        request, "agent.html", me=_agent_state(request), reasons=state.config.pause_reasons,
        topics=state.config.cases.topics, areas=iter_areas(state.config.areas),
        severities=SEVERITIES,
    )  # fmt: skip


async def agent_socket(request: web.Request) -> web.StreamResponse:
    agent = _agent_of(request)
    return await _state(request).hub.serve(request, "agent", f"PJSIP/{agent.phone}")


async def agent_state_api(request: web.Request) -> web.Response:
    return web.json_response(_agent_state(request))


async def agent_action(request: web.Request) -> web.StreamResponse:
    """The agent's own login/logout/pause/unpause (``action`` in the path)."""
    state = _state(request)
    agent = _agent_of(request)
    manager = _manager(request)
    action = request.match_info["action"]
    form = await _form_or_json(request)
    if action == "login":
        await manager.login(agent.id, by=agent.id)
    elif action == "logout":
        await manager.logout(agent.id, by=agent.id)
    elif action == "pause":
        reason = form.get("reason") or state.config.pause_reasons[0].code
        if state.config.pause_reason(reason) is None:
            return _unknown_pause_reason(request)
        await manager.pause(agent.id, reason)
    elif action == "unpause":
        await manager.unpause(agent.id)
    else:
        return error_page(request, 404, "Not found")
    await db(store.audit, state.sessions, _user(request).username, f"self_{action}", agent.id,
             detail=form.get("reason", "") if action == "pause" else "",
             address=_address(request))  # fmt: skip
    return _done(request, "/agent", action=action)


def _unknown_pause_reason(request: web.Request) -> web.Response:
    """A reason outside the configured codes: refused before anything reaches
    Asterisk (free text in an AMI header could inject actions)."""
    _ = translator(request[LANGUAGE])
    codes = ", ".join(r.code for r in _state(request).config.pause_reasons)
    logger.warning("%s sent an unknown pause reason: refused", _user(request).username)
    return error_page(
        request, 400, "Bad request",
        _("Unknown pause reason; choose one from the list ({codes}).", codes=codes),
    )  # fmt: skip


async def screen_pop(request: web.Request) -> web.Response:
    """The caller's history for the agent's screen-pop (an HTML fragment)."""
    state = _state(request)
    number = request.query.get("number", "")[:64]
    uniqueid = request.query.get("uniqueid", "")[:64]
    history = await _readable_history(request, number, uniqueid)
    if history is None:
        return _refused(request)
    current = history.current_call
    return render(
        request, "pop.html", history=history, uniqueid=uniqueid,
        queue=request.query.get("queue", ""), topics=state.config.cases.topics,
        areas=iter_areas(state.config.areas), severities=SEVERITIES,
        area_code=current.area_code if current else "",
    )  # fmt: skip


async def caller_api(request: web.Request) -> web.Response:
    scope = _scope(request)
    history = await _readable_history(
        request, request.match_info["number"][:64], request.query.get("uniqueid", "")[:64]
    )
    if history is None:
        return _refused(request)
    return web.json_response(
        {
            "number": history.number,
            "e164": history.e164,
            "earlier_calls": [
                _call_json(c) if c.uniqueid in history.readable_calls
                else {**_call_json(c), "caller_number": scope.number(c.caller_number, own=False),
                      "readable": False}
                for c in history.earlier_calls
            ],
            "open_cases": [
                _case_json(c) if c.code in history.readable_cases
                else {"code": c.code, "status": c.status, "topic": c.topic,
                      "received_at": _iso(c.received_at),
                      "caller_number": scope.number(c.caller_number, own=False),
                      "readable": False}
                for c in history.open_cases
            ],
        }
    )  # fmt: skip


# --- who may read what (see ivr/web/access.py) ------------------------------------


def _scope(request: web.Request) -> AccessScope:
    return AccessScope.of(_user(request), _state(request).config)


def _same_number(one: str, other: str) -> bool:
    def key(text: str) -> str:
        return normalise_caller(text).e164 or text.strip()

    return bool(one) and key(one) == key(other)


def _serving(request: web.Request, scope: AccessScope, uniqueid: str, number: str = "") -> bool:
    """Is this the call ringing or answered at the agent's phone now (the live
    hub saw it)? Then the agent may read it before any record names them."""
    current = _state(request).hub.current_call(scope.phone_interface)
    if current is None or (uniqueid and current.uniqueid != uniqueid):
        return False
    return not number or _same_number(current.number, number)


async def _may_read_call(request: web.Request, scope: AccessScope, uniqueid: str) -> bool:
    if _serving(request, scope, uniqueid):
        return True
    return bool(await db(store.call_visible, _state(request).sessions, scope, uniqueid))


async def _audit_read(request: web.Request, action: str, target: str, detail: str = "") -> None:
    """Reads of personal data are audited: who, what, when, from where."""
    await db(store.audit, _state(request).sessions, _user(request).username, action, target,
             detail=detail, address=_address(request))  # fmt: skip


async def _refuse(request: web.Request, action: str, target: str) -> web.Response:
    """A record outside the user's scope: 403, and the attempt is audited."""
    user = _user(request)
    logger.info("%s (%s) refused %s", user.username, user.role, target)
    await _audit_read(request, action, target, detail=f"{request.method} {request.path}")
    return _refused(request)


def _refused(request: web.Request) -> web.Response:
    return error_page(request, 403, "Access denied", "Your role does not allow this page.")


async def _readable_history(
    request: web.Request, number: str, uniqueid: str
) -> store.CallerHistory | None:
    """The caller's history if this user may read it, audited either way (None:
    refused). An agent reads the whole history of the caller at their phone now
    (they are serving them), and of an earlier caller only their own work."""
    state = _state(request)
    scope = _scope(request)
    serving = scope.sees_everything or _serving(request, scope, uniqueid, number)
    if not serving:
        own = await db(
            store.search_calls, state.sessions, store.Filters(number=number), state.zone,
            limit=1, scope=scope,
        )  # fmt: skip
        if not own:
            await _refuse(request, "read_caller_refused", f"caller {number}")
            return None
    history = await db(
        store.caller_history, state.sessions, number, uniqueid if serving else "",
        scope=scope, only_readable=not serving,
    )  # fmt: skip
    await _audit_read(request, "read_caller", f"caller {history.e164 or number}",
                      detail=f"{len(history.earlier_calls)} calls, "
                             f"{len(history.open_cases)} open cases")  # fmt: skip
    return history


# --- calls and cases --------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _call_json(call: Any) -> dict[str, Any]:
    return {
        "uniqueid": call.uniqueid, "hotline_id": call.hotline_id,
        "caller_number": call.caller_number, "area_code": call.area_code,
        "keys_pressed": call.keys_pressed, "route_kind": call.route_kind,
        "route_target": call.route_target, "answered_by": call.answered_by,
        "started_at": _iso(call.started_at), "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at), "outcome": call.outcome,
        "satisfaction": call.satisfaction,
    }  # fmt: skip


def _case_json(case: Case, history: bool = False) -> dict[str, Any]:
    out = {
        "code": case.code, "status": case.status, "channel": case.channel,
        "hotline_id": case.hotline_id, "caller_number": case.caller_number,
        "caller_name": case.caller_name, "area_code": case.area_code, "topic": case.topic,
        "severity": case.severity, "summary": case.summary, "transcript": case.transcript,
        "responsible_unit": case.responsible_unit, "answer": case.answer,
        "received_at": _iso(case.received_at), "due_date": _iso(case.due_date),
        "closed_at": _iso(case.closed_at), "call_uniqueid": case.call_uniqueid,
        "legal_hold": case.legal_hold, "legal_hold_reason": case.legal_hold_reason,
        "legal_hold_by": case.legal_hold_by, "legal_hold_at": _iso(case.legal_hold_at),
        "erased_at": _iso(case.erased_at),
    }  # fmt: skip
    if history:
        out["history"] = [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action,
             "from_status": e.from_status, "to_status": e.to_status, "note": e.note}
            for e in case.history
        ]  # fmt: skip
    return out


async def calls_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    filters = store.Filters.parse(request.query)
    calls = await db(store.search_calls, state.sessions, filters, state.zone,
                     scope=_scope(request))  # fmt: skip
    if request.path.endswith((".csv", ".xlsx")):
        return await _export(request, "calls", [_call_json(c) for c in calls])
    await _audit_read(request, "list_calls", request.path,
                      detail=f"{len(calls)} rows; {request.query_string}"[:500])  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response([_call_json(c) for c in calls])
    return render(
        request, "calls.html", calls=calls, filters=filters, zone=state.zone,
        areas=iter_areas(state.config.areas), agents=state.config.agents,
    )  # fmt: skip


async def call_page(request: web.Request) -> web.Response:
    state = _state(request)
    uniqueid = request.match_info["uniqueid"][:64]
    # Scope before existence: an agent learns nothing about others' call ids.
    if not await _may_read_call(request, _scope(request), uniqueid):
        return await _refuse(request, "read_call_refused", f"call {uniqueid}")
    detail = await db(store.call_detail, state.sessions, uniqueid)
    if detail is None:
        return error_page(request, 404, "Not found")
    await _audit_read(request, "read_call", f"call {uniqueid}",
                      detail=f"{len(detail.recordings)} recordings")  # fmt: skip
    if detail.transcript is not None:
        await _audit_read(request, "read_transcript", f"call {uniqueid}")
    if request.path.startswith("/api/"):
        return web.json_response(
            {
                **_call_json(detail.call),
                "recordings": [{"id": r.id, "kind": r.kind, "url": f"/recordings/{r.id}"}
                               for r in detail.recordings],
                "transcript": detail.transcript.text if detail.transcript else "",
                "cases": [c.code for c in detail.cases],
                "agent_id": detail.queue_call.agent_id if detail.queue_call else None,
            }
        )  # fmt: skip
    transcript = detail.transcript
    return render(
        request, "call.html", detail=detail, zone=state.zone,
        turns=turns_from_json(transcript.dialogue) if transcript else [],
        transcript_text=transcript.text if transcript else "",
    )  # fmt: skip


async def cases_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    filters = store.Filters.parse(request.query)
    cases = await db(store.search_cases, state.sessions, filters, state.zone,
                     scope=_scope(request))  # fmt: skip
    if request.path.endswith((".csv", ".xlsx")):
        return await _export(request, "cases", [_case_json(c) for c in cases])
    await _audit_read(request, "list_cases", request.path,
                      detail=f"{len(cases)} rows; {request.query_string}"[:500])  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response([_case_json(c) for c in cases])
    return render(
        request, "cases.html", cases=cases, filters=filters, zone=state.zone,
        areas=iter_areas(state.config.areas), topics=state.config.cases.topics,
        statuses=STATUSES, agents=state.config.agents,
    )  # fmt: skip


async def case_page(request: web.Request) -> web.Response:
    state = _state(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, _scope(request), code):
        return await _refuse(request, "read_case_refused", f"case {code}")
    case = await db(store.case_with_history, state.sessions, code)
    if case is None:
        return error_page(request, 404, "Not found")
    await _audit_read(request, "read_case", f"case {code}")
    if request.path.startswith("/api/"):
        if case.transcript:
            await _audit_read(request, "read_transcript", f"case {code}")
        return web.json_response(_case_json(case, history=True))
    from ivr.cases.service import TRANSITIONS

    recordings = await db(store.recordings_of_case, state.sessions, case)
    transcript = await db(store.transcript_of_case, state.sessions, case)
    if case.transcript or transcript is not None:
        await _audit_read(request, "read_transcript", f"case {code}")
    return render(
        request, "case.html", case=case, zone=state.zone, recordings=recordings,
        next_statuses=sorted(TRANSITIONS[case.status]), topics=state.config.cases.topics,
        units=state.config.departments, severities=SEVERITIES,
        turns=turns_from_json(transcript.dialogue) if transcript else [],
        transcript_text=case.transcript or (transcript.text if transcript else ""),
    )  # fmt: skip


async def open_case(request: web.Request) -> web.StreamResponse:
    """Open a case (agent's screen-pop form, or the API)."""
    state = _state(request)
    user = _user(request)
    form = await _form_or_json(request)
    caller = normalise_caller(form.get("caller_number", ""))
    hotline = _scope(request).hotline_id or state.config.hotlines[0].id
    uniqueid = form.get("call_uniqueid", "").strip()[:64] or None
    # Linking a case to a call shows the call's recordings and transcript on
    # the case page: an agent may link only a call it is serving or handled.
    if uniqueid and not await _may_read_call(request, _scope(request), uniqueid):
        return await _refuse(request, "open_case_refused", f"call {uniqueid}")
    if uniqueid:
        detail = await db(store.call_detail, state.sessions, uniqueid)
        if detail is not None:
            hotline = detail.call.hotline_id
    topic = form.get("topic") or None
    area = form.get("area_code") or None
    if area is not None and state.config.area(area) is None:
        area = None
    try:
        case = await db(
            state.cases.open_case,
            channel="phone",
            hotline_id=hotline,
            caller_number=caller.e164,
            caller_name=form.get("caller_name", "").strip()[:128],
            area_code=area,
            topic=topic,
            summary=form.get("summary", "").strip()[:4000],
            call_uniqueid=uniqueid,
            actor=user.username,
            severity=form.get("severity") or "normal",
        )
    except CaseError as exc:
        return (
            web.json_response({"ok": False, "error": str(exc)}, status=400)
            if _is_api(request) or request.headers.get("X-Requested-With") == "fetch"
            else error_page(request, 400, "Bad request", str(exc))
        )
    if _is_api(request) or request.headers.get("X-Requested-With") == "fetch":
        return web.json_response({"ok": True, "code": case.code, "case": _case_json(case)})
    raise web.HTTPSeeOther(f"/cases/{case.code}")


async def update_case(request: web.Request) -> web.StreamResponse:
    """Status workflow, classification, assignment and the written summary."""
    state = _state(request)
    user = _user(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, _scope(request), code):
        return await _refuse(request, "update_case_refused", f"case {code}")
    form = await _form_or_json(request)
    try:
        if form.get("topic"):
            await db(state.cases.classify, code, topic=form["topic"],
                     severity=form.get("severity") or "normal", actor=user.username)  # fmt: skip
        if form.get("unit"):
            await db(state.cases.assign, code, form["unit"][:64], user.username)
        if form.get("status"):
            await db(state.cases.change_status, code, form["status"], user.username,
                     form.get("note", "")[:4000])  # fmt: skip
        if "summary" in form:
            await db(_set_summary, state.sessions, code, form["summary"][:4000], user.username)
    except CaseError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    return _done(request, f"/cases/{code}", code=code)


def _set_summary(sessions: sessionmaker[Session], code: str, summary: str, actor: str) -> None:
    from sqlalchemy import select

    from ivr.cases.models import CaseEvent
    from ivr.db.models import utc_now

    with sessions.begin() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        if case is None:
            raise CaseError(f"no case {code}")
        if case.summary != summary:
            case.summary = summary
            case.updated_at = utc_now()
            session.add(CaseEvent(case_id=case.id, at=utc_now(), actor=actor, action="summary",
                                  note=f"{len(summary)} characters"))  # fmt: skip


async def case_hold(request: web.Request) -> web.StreamResponse:
    """Supervisors and admins put a case under legal hold (a reason is
    required) or release it; retention then spares everything linked to it.
    Audited, and a case history event."""
    state = _state(request)
    user = _user(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, _scope(request), code):
        return await _refuse(request, "legal_hold_refused", f"case {code}")
    form = await _form_or_json(request)
    hold = str(form.get("hold", "")).lower() in ("1", "true", "on", "yes")
    reason = str(form.get("reason", "")).strip()[:1000]
    try:
        await db(state.cases.set_legal_hold, code, hold=hold, reason=reason, actor=user.username)
    except CaseNotFound:
        return error_page(request, 404, "Not found")
    except CaseError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    await db(store.audit, state.sessions, user.username,
             "legal_hold" if hold else "legal_hold_released", f"case {code}",
             detail=reason, address=_address(request))  # fmt: skip
    return _done(request, f"/cases/{code}", code=code, legal_hold=hold)


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """Serve one recording by its id, never by a path from the request; the
    file must lie inside the recordings folder. Every listen and download is
    audited; agents hear only the calls they answered (unless allowed)."""
    state = _state(request)
    user = _user(request)
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError:
        return error_page(request, 404, "Not found")
    found = await db(store.recording, state.sessions, recording_id)
    if found is None:
        return error_page(request, 404, "Not found")
    scope = _scope(request)
    # ``agents_hear_all_recordings`` widens an agent's ears, never a
    # supervisor's hotline.
    agent_hears_all = user.role == AGENT and state.config.web.agents_hear_all_recordings
    if not scope.sees_everything and not agent_hears_all:
        allowed = _serving(request, scope, found.call_uniqueid) or await db(
            store.recording_visible, state.sessions, scope, found
        )
        if not allowed:
            return await _refuse(request, "listen_refused", f"recording {found.id}")
    path = Path(found.path).resolve()
    if not path.is_relative_to(state.recordings_root) or not path.is_file():
        logger.warning("recording %s points outside %s: %s", found.id, state.recordings_root, path)
        return error_page(request, 404, "Not found")
    download = request.query.get("download") == "1"
    await db(store.audit, state.sessions, user.username, "download" if download else "listen",
             f"recording {found.id}", detail=f"call {found.call_uniqueid} {found.kind}",
             address=_address(request))  # fmt: skip
    response = web.FileResponse(path, headers={"Cache-Control": "no-store"})
    response.content_type = "audio/wav"
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response


async def _csv(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 (Vietnamese) correctly with a BOM
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            # Neutralise spreadsheet formulas in citizen-written text.
            writer.writerow(
                {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v)
                 for k, v in row.items()}
            )  # fmt: skip
    await _audit_export(request, f"{name}.csv")
    return web.Response(
        body=out.getvalue().encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _xlsx(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    # Inline-string cells are never formulas, so text needs no "'" prefix here.
    header = list(rows[0]) if rows else []
    body = await asyncio.to_thread(
        xlsx.workbook, header, [list(row.values()) for row in rows], sheet=name
    )
    await _audit_export(request, f"{name}.xlsx")
    return web.Response(
        body=body,
        content_type=xlsx.CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


async def _export(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    """The rows as the file the path asks for (``.csv`` or ``.xlsx``), audited."""
    if request.path.endswith(".xlsx"):
        return await _xlsx(request, name, rows)
    return await _csv(request, name, rows)


async def _audit_export(request: web.Request, filename: str) -> None:
    await db(store.audit, _state(request).sessions, _user(request).username, "export",
             filename, detail=request.query_string, address=_address(request))  # fmt: skip


# --- statistics -------------------------------------------------------------------


def _period(request: web.Request, zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    filters = store.Filters.parse(request.query)
    day_to = filters.day_to or today
    day_from = filters.day_from or day_to - timedelta(days=13)
    if day_from > day_to or (day_to - day_from).days > 366:
        day_from = day_to - timedelta(days=13)
    return day_from, day_to


async def stats_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    day_from, day_to = _period(request, state.zone)
    figures = await db(store.statistics, state.sessions, day_from, day_to, state.zone)
    if request.path.startswith("/api/"):
        return web.json_response(figures)
    if request.path.endswith((".csv", ".xlsx")):
        return await _export(
            request, "statistics", [{"day": d, "calls": n} for d, n in figures["per_day"]]
        )
    _ = translator(request[LANGUAGE])
    area_names = {a.code: a.name for a in iter_areas(state.config.areas)}
    topic_names = {t.code: t.name for t in state.config.cases.topics}
    charts = {
        "per_day": bar_chart([(d[5:], n) for d, n in figures["per_day"]], _("Calls per day")),
        "per_hour": bar_chart([(f"{h}", n) for h, n in figures["per_hour"]], _("Calls per hour")),
        "by_area": bar_chart(
            [(area_names.get(a, a), n) for a, n in figures["by_area"][:12]], _("Calls by area"),
            horizontal=True,
        ),
        "by_topic": bar_chart(
            [(topic_names.get(t, t), n) for t, n in figures["by_topic"]], _("Cases by topic"),
            horizontal=True,
        ),
        "queue": stacked_bars(
            [(_("Queue"), figures["queue_answered"], figures["queue_abandoned"])],
            (_("Answered"), _("Abandoned")), _("Queue calls: answered and abandoned"),
        ),
        "units": stacked_bars(
            [(u, on, late) for u, on, late in figures["cases_by_unit"]],
            (_("On time"), _("Late")), _("Cases on time and late per unit"),
        ),
    }  # fmt: skip
    return render(request, "stats.html", figures=figures, charts=charts)


# --- administration ---------------------------------------------------------------


async def users_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    users = await db(state.users.all)
    if request.path.startswith("/api/"):
        return web.json_response(
            [{"id": u.id, "username": u.username, "role": u.role, "agent_id": u.agent_id,
              "hotline_id": u.hotline_id,
              "active": u.active} for u in users]
        )  # fmt: skip
    return render(request, "admin_users.html", users=users, agents=state.config.agents,
                  error=request.query.get("error", ""))  # fmt: skip


async def add_user(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    form = await _form_or_json(request)
    agent_id = form.get("agent_id") or None
    if agent_id and agent_id not in {a.id for a in state.config.agents}:
        return error_page(request, 400, "Bad request", f"unknown agent {agent_id}")
    hotline_id = form.get("hotline_id") or None
    if hotline_id and state.config.hotline(hotline_id) is None:
        return error_page(request, 400, "Bad request", f"unknown hotline {hotline_id}")
    try:
        user = await db(
            state.users.add, form.get("username", ""), form.get("password", ""),
            form.get("role", ""), agent_id=agent_id, display_name=form.get("display_name", ""),
            hotline_id=hotline_id,
        )  # fmt: skip
    except store.UserError as exc:
        if _is_api(request):
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        raise web.HTTPSeeOther("/admin/users?" + _urlencode({"error": str(exc)})) from None
    await db(store.audit, state.sessions, _user(request).username, "user_add", user.username,
             detail=user.role, address=_address(request))  # fmt: skip
    return _done(request, "/admin/users", id=user.id)


def _urlencode(values: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


async def user_active(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    form = await _form_or_json(request)
    active = form.get("active") == "1"
    try:
        user = await db(state.users.set_active, int(request.match_info["user_id"]), active)
    except (store.UserError, ValueError):
        return error_page(request, 404, "Not found")
    if not active:
        await db(state.web_sessions.close_all, user.id)
    await db(store.audit, state.sessions, _user(request).username,
             "user_enable" if active else "user_disable", user.username,
             address=_address(request))  # fmt: skip
    return _done(request, "/admin/users")


async def audit_page(request: web.Request) -> web.StreamResponse:
    """The audit log with filters (actor, action, days); ``.csv`` exports it
    (audited like every export)."""
    state = _state(request)
    filters = store.AuditFilters.parse(request.query)
    export = request.path.endswith(".csv")
    entries = await db(
        store.audit_entries, state.sessions,
        store.AUDIT_EXPORT_ROWS if export else store.MAX_ROWS, filters, state.zone,
    )  # fmt: skip
    rows = [{"at": _iso(e.at), "actor": e.actor, "action": e.action, "target": e.target,
             "detail": e.detail, "address": e.address} for e in entries]  # fmt: skip
    if export:
        return await _csv(request, "audit", rows)
    if request.path.startswith("/api/"):
        return web.json_response(rows)
    actions = await db(store.audit_actions, state.sessions)
    return render(request, "admin_audit.html", entries=entries, zone=state.zone,
                  filters=filters, actions=actions)  # fmt: skip


def _transcription_jobs(sessions: sessionmaker[Session], limit: int = 200) -> list[Any]:
    """Jobs that need a person's eye first: failed, then waiting or running."""
    from sqlalchemy import case as when
    from sqlalchemy import select

    from ivr.cases.models import TranscriptionJob

    order = when((TranscriptionJob.status == "failed", 0), else_=1)
    with sessions() as session:
        return list(
            session.scalars(
                select(TranscriptionJob)
                .where(TranscriptionJob.status != "done")
                .order_by(order, TranscriptionJob.created_at.desc())
                .limit(limit)
            )
        )


async def jobs_page(request: web.Request) -> web.StreamResponse:
    """Transcription jobs for supervisors: a failed one shows its reason."""
    state = _state(request)
    jobs = await db(_transcription_jobs, state.sessions)
    if request.path.startswith("/api/"):
        return web.json_response(
            [{"call": j.call_uniqueid, "status": j.status, "attempts": j.attempts,
              "error": j.error, "created": _iso(j.created_at), "worker": j.worker}
             for j in jobs]
        )  # fmt: skip
    return render(request, "jobs.html", jobs=jobs)


async def config_page(request: web.Request) -> web.Response:
    """The config as tables, and the file in an editor when this process owns it."""
    state = _state(request)
    # Secrets are masked; applying the text keeps them (ivr/config/secret_mask.py).
    text = await asyncio.to_thread(state.applier.masked_text) if state.applier else ""
    if request.path.startswith("/api/"):
        return web.json_response(
            {"source": str(state.config.source or ""), "text": text,
             "editable": state.applier is not None}
        )  # fmt: skip
    return _config_view(request, text)


def _config_view(
    request: web.Request, text: str, *, status: int = 200, problems: Any = (),
    applied: AppliedConfig | None = None,
) -> web.Response:  # fmt: skip
    state = _state(request)
    return render(
        request, "admin_config.html", status=status, areas=iter_areas(state.config.areas),
        text=text, editable=state.applier is not None, problems=list(problems),
        applied=applied,
    )  # fmt: skip


async def config_apply(request: web.Request) -> web.StreamResponse:
    """Check, save and apply an edited config. An error names file, line and
    field, and the edited text comes back in the editor: nothing is lost."""
    state = _state(request)
    if state.applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    form = await _form_or_json(request)
    text = form.get("text", "").replace("\r\n", "\n")
    try:
        applied = await state.applier.apply_text(text)
    except ConfigError as exc:
        await db(store.audit, state.sessions, _user(request).username, "config_refused",
                 str(state.config.source), detail=str(exc)[:500],
                 address=_address(request))  # fmt: skip
        if _is_api(request):
            return web.json_response(
                {"ok": False, "problems": [
                    {"file": str(p.file), "line": p.line, "field": p.field,
                     "message": p.message} for p in exc.problems]},
                status=422,
            )  # fmt: skip
        return _config_view(request, text, status=422, problems=exc.problems)
    await db(store.audit, state.sessions, _user(request).username, "config_apply",
             str(state.config.source), detail=f"backup {applied.backup}",
             address=_address(request))  # fmt: skip
    if _is_api(request):
        return web.json_response(
            {"ok": True, "backup": str(applied.backup or ""),
             "rendered": [str(p) for p in applied.rendered], "reloaded": applied.reloaded,
             "restart_needed": applied.restart_needed, "warnings": applied.warnings}
        )  # fmt: skip
    return _config_view(request, await asyncio.to_thread(state.applier.masked_text),
                        applied=applied)  # fmt: skip


class _WebConfigTarget:
    """The console's view of a config applied while running."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    async def replace_config(self, config: HotlineConfig) -> None:
        self.state.config = config
        self.state.cases.use_config(config)
        self.state.hub.config = config


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# --- the application --------------------------------------------------------------


def _routes() -> Iterable[tuple[str, str, Handler, frozenset[str], str]]:
    """(method, path, handler, roles, name)."""
    return [
        ("GET", "/login", login_page, PUBLIC, "login"),
        ("POST", "/login", login_submit, PUBLIC, "login_submit"),
        ("GET", "/lang/{language}", set_language, PUBLIC, "language"),
        ("GET", "/healthz", health, PUBLIC, "health"),
        ("GET", "/api/openapi.json", openapi, PUBLIC, "openapi"),
        ("POST", "/logout", logout, STAFF, "logout"),
        ("GET", "/", home, STAFF, "home"),
        ("GET", "/api/v1/me", me_api, STAFF, "me"),
        # supervisors
        ("GET", "/wallboard", wallboard_page, WATCHERS, "wallboard"),
        ("GET", "/ws/wallboard", wallboard_socket, WATCHERS, "wallboard_ws"),
        ("GET", "/api/v1/wallboard", wallboard_api, WATCHERS, "wallboard_api"),
        ("POST", "/wallboard/agents/{agent_id}/{action}", supervise_agent, WATCHERS, "supervise"),
        ("POST", "/api/v1/agents/{agent_id}/{action}", supervise_agent, WATCHERS, "supervise_api"),
        ("POST", "/wallboard/spy", spy, WATCHERS, "spy"),
        ("POST", "/api/v1/spy", spy, WATCHERS, "spy_api"),
        ("GET", "/stats", stats_page, WATCHERS, "stats"),
        ("GET", "/stats.csv", stats_page, WATCHERS, "stats_csv"),
        ("GET", "/stats.xlsx", stats_page, WATCHERS, "stats_xlsx"),
        ("GET", "/api/v1/stats", stats_page, WATCHERS, "stats_api"),
        ("GET", "/calls.csv", calls_page, WATCHERS, "calls_csv"),
        ("GET", "/cases.csv", cases_page, WATCHERS, "cases_csv"),
        ("GET", "/calls.xlsx", calls_page, WATCHERS, "calls_xlsx"),
        ("GET", "/cases.xlsx", cases_page, WATCHERS, "cases_xlsx"),
        # agents
        ("GET", "/agent", agent_page, AGENTS, "agent"),
        ("GET", "/ws/agent", agent_socket, AGENTS, "agent_ws"),
        ("GET", "/api/v1/agent", agent_state_api, AGENTS, "agent_api"),
        ("POST", "/agent/{action}", agent_action, AGENTS, "agent_action"),
        ("POST", "/api/v1/agent/{action}", agent_action, AGENTS, "agent_action_api"),
        ("GET", "/agent/pop", screen_pop, AGENTS, "screen_pop"),
        # everyone on staff
        ("GET", "/calls", calls_page, STAFF, "calls"),
        ("GET", "/api/v1/calls", calls_page, STAFF, "calls_api"),
        ("GET", "/calls/{uniqueid}", call_page, STAFF, "call"),
        ("GET", "/api/v1/calls/{uniqueid}", call_page, STAFF, "call_api"),
        ("GET", "/api/v1/callers/{number}", caller_api, STAFF, "caller_api"),
        ("GET", "/cases", cases_page, STAFF, "cases"),
        ("GET", "/api/v1/cases", cases_page, STAFF, "cases_api"),
        ("POST", "/cases", open_case, STAFF, "open_case"),
        ("POST", "/api/v1/cases", open_case, STAFF, "open_case_api"),
        ("GET", "/cases/{code}", case_page, STAFF, "case"),
        ("GET", "/api/v1/cases/{code}", case_page, STAFF, "case_api"),
        ("POST", "/cases/{code}", update_case, STAFF, "update_case"),
        ("POST", "/api/v1/cases/{code}", update_case, STAFF, "update_case_api"),
        ("POST", "/cases/{code}/hold", case_hold, WATCHERS, "case_hold"),
        ("POST", "/api/v1/cases/{code}/hold", case_hold, WATCHERS, "case_hold_api"),
        ("GET", "/recordings/{recording_id}", recording_audio, STAFF, "recording"),
        ("GET", "/jobs", jobs_page, WATCHERS, "jobs"),
        ("GET", "/api/v1/jobs", jobs_page, WATCHERS, "jobs_api"),
        # administrators
        ("GET", "/admin/users", users_page, ADMINS, "users"),
        ("GET", "/api/v1/users", users_page, ADMINS, "users_api"),
        ("POST", "/admin/users", add_user, ADMINS, "add_user"),
        ("POST", "/api/v1/users", add_user, ADMINS, "add_user_api"),
        ("POST", "/admin/users/{user_id}/active", user_active, ADMINS, "user_active"),
        ("GET", "/admin/audit", audit_page, ADMINS, "audit"),
        ("GET", "/admin/audit.csv", audit_page, ADMINS, "audit_csv"),
        ("GET", "/api/v1/audit", audit_page, ADMINS, "audit_api"),
        ("GET", "/admin/config", config_page, ADMINS, "config"),
        ("POST", "/admin/config", config_apply, ADMINS, "config_apply"),
        ("GET", "/api/v1/config", config_page, ADMINS, "config_api"),
        ("POST", "/api/v1/config", config_apply, ADMINS, "config_apply_api"),
    ]


def create_app(
    config: HotlineConfig,
    sessions: sessionmaker[Session],
    *,
    secret: bytes,
    queue_manager: Any | None = None,
    case_service: CaseService | None = None,
    applier: ConfigApplier | None = None,
) -> web.Application:
    """The console. ``queue_manager`` feeds the wallboard and carries the agent
    actions; without it (``--only web`` on another host) those answer 503."""
    web_cfg = config.web
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    zone = ZoneInfo(config.timezone)
    templates.filters["local"] = lambda value, fmt="%Y-%m-%d %H:%M:%S": (
        value.astimezone(zone).strftime(fmt) if value else ""
    )
    state = WebState(
        config=config,
        sessions=sessions,
        signer=SessionSigner(secret, web_cfg.session_hours * 3600),
        users=store.UserStore(sessions),
        web_sessions=SessionStore(sessions),
        cases=case_service or CaseService(sessions, config),
        hub=LiveHub(config, queue_manager),
        queue_manager=queue_manager,
        limiter=LoginRateLimiter(web_cfg.login_attempts, web_cfg.login_window_seconds),
        # One address may try a few names (a shared office PC), not a dictionary.
        address_limiter=LoginRateLimiter(
            web_cfg.login_attempts * 4, web_cfg.login_window_seconds
        ),
        templates=templates,
        zone=zone,
        recordings_root=config.resolve_path(config.paths.recordings).resolve(),
        applier=applier,
    )
    # Pause reasons are codes on the wire; pages show their labels (read from
    # the state, so a config applied while running is seen at once).
    def pause_labels(language: str) -> dict[str, str]:
        return {r.code: r.label(language) for r in state.config.pause_reasons}

    templates.globals["pause_labels"] = pause_labels
    templates.filters["with_pause_labels"] = lambda texts, language: {
        **texts, **pause_labels(language)
    }
    config_target = _WebConfigTarget(state)
    if applier is not None:
        applier.targets.append(config_target)
    app = web.Application(middlewares=[security_headers, authentication])
    app[STATE] = state
    for method, path, handler, roles, name in _routes():
        app.router.add_route(method, path, handler, name=name)
        state.roles[name] = roles
    app.router.add_static("/static/", HERE / "static", name="static")

    async def on_startup(app: web.Application) -> None:
        state.hub.start()

    async def on_shutdown(app: web.Application) -> None:
        await state.hub.close()
        if applier is not None and config_target in applier.targets:
            applier.targets.remove(config_target)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def start_web(
    config: HotlineConfig,
    sessions: sessionmaker[Session],
    *,
    queue_manager: Any | None = None,
    port: int | None = None,
    applier: ConfigApplier | None = None,
) -> web.AppRunner:
    """Start the console on ``config.web.bind:port``; ``runner.cleanup()`` stops it."""
    from ivr.web.security import load_secret

    secret = load_secret(config.web.secret_env, config.resolve_path(config.web.secret_file))
    app = create_app(
        config, sessions, secret=secret, queue_manager=queue_manager, applier=applier
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(
        runner, config.web.bind, config.web.port if port is None else port, reuse_address=True
    )
    await site.start()
    logger.info("web console on http://%s:%s/", config.web.bind, bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("the web console is not listening")
