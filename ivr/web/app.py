"""The console's assembly: the middlewares (security headers, session, role
check, CSRF), the routes each feature module declares, and the application's
start and stop.

Features live in their own modules, each with its handlers and a ``ROUTES``
list of (method, path, handler, roles, name): :mod:`ivr.web.auth`,
:mod:`ivr.web.wallboard`, :mod:`ivr.web.agent`, :mod:`ivr.web.calls`,
:mod:`ivr.web.cases`, :mod:`ivr.web.stats`, :mod:`ivr.web.admin` and
:mod:`ivr.web.openapi`. Handlers parse the request, call a store, the case
service or the queue manager, and answer; no SQL and no AMI in them. The auth
middleware refuses a route registered without roles, so a route can never be
public by omission.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.forwarding import ForwardingService, Notifier
from ivr.cases.publication import draft_of
from ivr.cases.service import CaseService
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.web import (
    admin,
    admin_holidays,
    admin_office,
    admin_people,
    admin_prompts,
    admin_roster,
    admin_wards,
    agent,
    api_keys_admin,
    audit_store,
    auth,
    calls,
    cases,
    citizen_form,
    config_changes,
    forwarding,
    health,
    knowledge,
    metrics,
    open311,
    openapi,
    public,
    sms_inbound,
    stats,
    store,
    unit_portal,
    wallboard,
    webhook_guard,
    written_work,
    zalo,
)
from ivr.web.auth import LANG_COOKIE, SESSION_COOKIE
from ivr.web.i18n import LANGUAGES
from ivr.web.intake_state import install_intake
from ivr.web.live import LiveHub
from ivr.web.models import WebUser
from ivr.web.rendering import error_page, is_api
from ivr.web.security import LoginRateLimiter, SessionSigner, load_secret
from ivr.web.session_store import SessionStore
from ivr.web.state import (
    LANGUAGE,
    PUBLIC,
    SESSION,
    STATE,
    USER,
    Handler,
    Route,
    WebState,
    address_of,
    db,
)

logger = logging.getLogger(__name__)

__all__ = ["STATE", "WebState", "bound_port", "create_app", "start_web"]

HERE = Path(__file__).resolve().parent

# Every route of the console, feature by feature.
ROUTES: list[Route] = [
    *auth.ROUTES,
    *health.ROUTES,
    *metrics.ROUTES,
    *openapi.ROUTES,
    *wallboard.ROUTES,
    *stats.ROUTES,
    *agent.ROUTES,
    *calls.ROUTES,
    *cases.ROUTES,
    *forwarding.ROUTES,
    *unit_portal.ROUTES,
    *knowledge.ROUTES,
    *public.ROUTES,
    *citizen_form.ROUTES,
    *admin.ROUTES,
    *api_keys_admin.ROUTES,
    *written_work.ROUTES,
    *sms_inbound.ROUTES,
    *zalo.ROUTES,
    *open311.ROUTES,
    *admin_people.ROUTES,
    *admin_roster.ROUTES,
    *admin_holidays.ROUTES,
    *admin_wards.ROUTES,
    *admin_office.ROUTES,
    *config_changes.ROUTES,
    *admin_prompts.ROUTES,
]

# Routes whose forms carry files: a larger body than aiohttp's 1 MB default
# (which every other route keeps, so a big body elsewhere is refused early).
BODY_LIMITS: dict[str, int] = {**unit_portal.BODY_LIMITS, **admin_prompts.BODY_LIMITS}


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
    state = request.app[STATE]
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
    body_limit = BODY_LIMITS.get(route_name or "")
    if body_limit is not None:
        request = request.clone(client_max_size=body_limit)
    roles = state.roles.get(route_name or "")
    if roles is None:
        if isinstance(request.match_info.http_exception, web.HTTPException):
            code = request.match_info.http_exception.status
            return error_page(request, code, "Not found" if code == 404 else "Bad request")
        logger.error("route %s %s has no roles: refused", request.method, request.path)
        return error_page(request, 403, "Access denied")
    if roles is not PUBLIC:
        if user is None or session is None:
            if is_api(request) or request.path.startswith("/ws/"):
                return web.json_response({"error": "not signed in"}, status=401)
            raise web.HTTPFound(f"/login?next={request.path_qs}")
        if user.role not in roles:
            logger.info("%s (%s) refused %s", user.username, user.role, request.path)
            # Trying a route of another role is worth an auditor's eye too.
            await db(audit_store.audit, state.sessions, user.username, "route_refused",
                     f"{request.method} {request.path}"[:255], detail=user.role,
                     address=address_of(request))  # fmt: skip
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


async def _live_console(app: web.Application) -> AsyncIterator[None]:
    """While the console runs, the live hub follows the queue manager (one place
    for its start and its stop). A config applied while running needs nothing
    here: the console reads it from the process's config source."""
    state = app[STATE]
    state.hub.start()
    try:
        yield
    finally:
        await state.hub.close()


async def _close_sockets(app: web.Application) -> None:
    # Websockets close at shutdown, not at cleanup: the runner waits for open
    # handlers (up to its shutdown timeout) between the two.
    await app[STATE].hub.close()


def create_app(
    config: HotlineConfig | ConfigSource,
    sessions: sessionmaker[Session],
    *,
    secret: bytes,
    queue_manager: Any | None = None,
    case_service: CaseService | None = None,
    applier: ConfigApplier | None = None,
    notifier: Notifier | None = None,
) -> web.Application:
    """The console. ``queue_manager`` feeds the wallboard and carries the agent
    actions; without it (``--only web`` on another host) those answer 503.
    ``config`` is the process's config source (or a config, given a source of
    its own); ``case_service`` the process's one case service."""
    source = ConfigSource.of(config)
    config = source.current
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
        config_source=source,
        sessions=sessions,
        signer=SessionSigner(secret, web_cfg.session_hours * 3600),
        users=store.UserStore(sessions),
        web_sessions=SessionStore(sessions),
        cases=case_service or CaseService(sessions, source),
        hub=LiveHub(source, queue_manager),
        queue_manager=queue_manager,
        limiter=LoginRateLimiter(web_cfg.login_attempts, web_cfg.login_window_seconds),
        # One address may try a few names (a shared office PC), not a dictionary.
        address_limiter=LoginRateLimiter(web_cfg.login_attempts * 4, web_cfg.login_window_seconds),
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
        **texts,
        **pause_labels(language),
    }
    app = web.Application(middlewares=[security_headers, authentication])
    app[STATE] = state
    # /metrics and /healthz (issue 15): what they read; start_services adds the
    # FastAGI server, the call log and the background loops once they run.
    metrics.install_metrics(app, source, sessions, queue_manager)
    app[health.HEALTH_PROBE] = health.DatabaseProbe()
    # Forwarding to units (issue 13): its service shares the case service;
    # emails go through ``notifier`` (the configured SMTP sender by default).
    app[forwarding.FORWARDING] = ForwardingService(sessions, source, cases=state.cases)
    app[forwarding.NOTIFIER] = notifier or forwarding.default_notifier(config)
    # The public page (issue 13): its request budget per address; the case
    # page pre-fills the texts to publish without personal data.
    app[public.PUBLIC_LIMITER] = public.public_limiter()
    # The SMS and Zalo webhooks' message ids seen lately (replays inside the window)
    # and refused requests per address.
    app[webhook_guard.WEBHOOKS] = webhook_guard.WebhookGuard()
    templates.filters["public_draft"] = draft_of
    # The wards' test calls ring real numbers over the trunk: a budget per user.
    app[admin_wards.TRIAL_LIMITER] = admin_wards.trial_limiter()
    # The public report form (issue 14): its form tokens and per-address budgets.
    citizen_form.setup(app, secret, config.channels.web_form)
    # The one intake every written channel submits through (issue 14).
    install_intake(app, sessions, source, state.cases, state.recordings_root)
    for method, path, handler, roles, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
        state.roles[name] = roles
    app.router.add_static("/static/", HERE / "static", name="static")
    app.cleanup_ctx.append(_live_console)
    app.cleanup_ctx.append(forwarding.email_outbox)
    app.on_shutdown.append(_close_sockets)
    return app


async def start_web(
    config: HotlineConfig | ConfigSource,
    sessions: sessionmaker[Session],
    *,
    queue_manager: Any | None = None,
    port: int | None = None,
    applier: ConfigApplier | None = None,
    case_service: CaseService | None = None,
) -> web.AppRunner:
    """Start the console on ``config.web.bind:port``; ``runner.cleanup()`` stops it."""
    source = ConfigSource.of(config)
    config = source.current
    secret = load_secret(config.web.secret_env, config.resolve_path(config.web.secret_file))
    app = create_app(
        source, sessions, secret=secret, queue_manager=queue_manager,
        case_service=case_service, applier=applier,
    )  # fmt: skip
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
