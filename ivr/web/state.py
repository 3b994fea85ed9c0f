"""What every part of the console shares: the application's state (a typed
``AppKey``), what the middlewares put on each request, the role sets a route is
registered with, and the accessors handlers use to reach them.

Each feature module (:mod:`ivr.web.auth`, :mod:`ivr.web.wallboard`, …) lists
its routes as :class:`Route` rows; :mod:`ivr.web.app` assembles them and its
middleware refuses any route registered without roles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.service import CaseService
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.db.executor import DbExecutor
from ivr.web import audit_store, store
from ivr.web.access import AccessScope
from ivr.web.live import LiveHub
from ivr.web.models import ADMIN, AGENT, SUPERVISOR, UNIT, WebUser
from ivr.web.security import LoginRateLimiter, SessionData, SessionSigner, client_address
from ivr.web.session_store import SessionStore

logger = logging.getLogger(__name__)

# Who may use a route. PUBLIC is compared by identity in the middleware.
PUBLIC: frozenset[str] = frozenset({"public"})
STAFF = frozenset({ADMIN, SUPERVISOR, AGENT})
WATCHERS = frozenset({ADMIN, SUPERVISOR})
ADMINS = frozenset({ADMIN})
AGENTS = frozenset({AGENT})
UNITS = frozenset({UNIT})  # clerks of responsible units: forwarded cases only
SIGNED_IN = STAFF | UNITS  # signing out, who am I
# A forward (issue 13) is read by the hotline's staff and the unit's clerks, and
# moved by the clerks or, on their behalf, the hotline's supervisors.
FORWARD_READERS = STAFF | UNITS
FORWARD_ACTORS = WATCHERS | UNITS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(NamedTuple):
    """One route of a feature, with the roles that may use it."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[str]
    name: str


@dataclass
class WebState:
    config_source: ConfigSource  # the process's one config source (see ivr.service)
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

    @property
    def config(self) -> HotlineConfig:
        """The config current now (a config applied while running is seen at once)."""
        return self.config_source.current


STATE = web.AppKey("hotline_state", WebState)
# What the middlewares put on each request.
# None on a request without a valid session (a public page, or refused).
USER: web.RequestKey[WebUser | None] = web.RequestKey("hotline_user")
SESSION: web.RequestKey[SessionData | None] = web.RequestKey("hotline_session")
LANGUAGE = web.RequestKey("hotline_language", str)
LOGIN_CSRF = web.RequestKey("hotline_login_csrf", str)  # the login form's token


P = ParamSpec("P")
T = TypeVar("T")

# The console's database threads, apart from the FastAGI server's (a stalled
# database can hold the IVR's threads but never these). As many as asyncio's
# default executor had, which the console used before. Shared by every app in
# the process and never closed: idle threads cost nothing and a test may build
# many apps.
WEB_DB = DbExecutor("web-db", min(32, (os.cpu_count() or 1) + 4))


async def db(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a synchronous database function off the event loop."""
    return await WEB_DB.run(function, *args, **kwargs)


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]


def user_of(request: web.Request) -> WebUser:
    """The signed-in user (the middleware let only them through)."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized()
    return user


def session_of(request: web.Request) -> SessionData:
    """The signed-in user's session (the middleware let only them through)."""
    session = request.get(SESSION)
    if session is None:
        raise web.HTTPUnauthorized()
    return session


def scope_of(request: web.Request) -> AccessScope:
    """Which records this user may read (see ivr/web/access.py)."""
    return AccessScope.of(user_of(request), state_of(request).config)


def address_of(request: web.Request) -> str:
    """The client's address: the peer, or, when the peer is a trusted reverse
    proxy, the right-most X-Forwarded-For entry that is not a trusted proxy
    (entries further left are whatever the client wrote)."""
    return client_address(
        request.remote or "", request.headers.getall("X-Forwarded-For", []),
        state_of(request).config.web.trusted_proxies,
    )  # fmt: skip


def manager_of(request: web.Request) -> Any:
    """The queue manager, or 503 when it runs in another process."""
    manager = state_of(request).queue_manager
    if manager is None:
        raise web.HTTPServiceUnavailable(text="the queue manager does not run in this process")
    return manager


async def audit(request: web.Request, action: str, target: str = "", detail: str = "") -> None:
    """An audit entry for what the signed-in user did or read: who, what, when,
    from where."""
    await db(audit_store.audit, state_of(request).sessions, user_of(request).username, action,
             target, detail=detail, address=address_of(request))  # fmt: skip
