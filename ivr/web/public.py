"""The public page of selected cases with their answers (issue 13), and the
console's side of it: recording the citizen's consent and publishing.

- ``/public/cases`` (every hotline, or ``?hotline=``), ``/public/{hotline_id}/cases``
  and ``/public/cases/{public_id}``: no sign-in, no cookie (the language is a
  ``?lang=`` query), the console's security headers, a request budget per
  client address like the login page's. They show only what
  :class:`ivr.cases.publication.PublicCase` carries: topic, ward, dates and
  the texts a supervisor published; never the case code, number, name,
  recordings or transcript.
- ``POST /cases/{code}/consent``: an agent or supervisor records whether the
  citizen agreed to publication (after asking on the phone).
- ``POST /cases/{code}/publish`` and ``/unpublish``: supervisors (and
  admins), for the cases of their hotline; refused with the reason (400)
  without consent.

Every change is audited; a case outside the user's scope is a 403, audited.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.cases.publication import PublicationError, PublicationNotFound, PublicationService
from ivr.config.schema import HotlineConfig, iter_areas
from ivr.web import store
from ivr.web.i18n import LANGUAGES
from ivr.web.rendering import done, error_page, form_or_json, refuse, render, wants_json
from ivr.web.security import LoginRateLimiter
from ivr.web.state import (
    LANGUAGE,
    PUBLIC,
    STAFF,
    WATCHERS,
    Route,
    address_of,
    audit,
    db,
    scope_of,
    state_of,
    user_of,
)

logger = logging.getLogger(__name__)

# A person reading the page follows a few links a minute; a scraper walking
# every page is slowed down, like a password guesser at /login.
PUBLIC_REQUESTS = 120
PUBLIC_WINDOW_SECONDS = 60
PUBLIC_LIMITER = web.AppKey("hotline_public_limiter", LoginRateLimiter)


def public_limiter() -> LoginRateLimiter:
    """The per-address request budget of the public pages (one per app)."""
    return LoginRateLimiter(PUBLIC_REQUESTS, PUBLIC_WINDOW_SECONDS)


def _service(request: web.Request) -> PublicationService:
    return PublicationService(state_of(request).sessions)


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "on", "yes")


# --- the public page ------------------------------------------------------------------


def _budget(request: web.Request) -> web.Response | None:
    """429 once this address used its budget; otherwise count the request."""
    limiter = request.app[PUBLIC_LIMITER]
    key = [f"public:{address_of(request)}"]
    wait = limiter.blocked(key)
    if wait > 0:
        return web.Response(
            status=429, text="Too many requests", headers={"Retry-After": str(int(wait) + 1)}
        )
    limiter.failed(key)  # every request counts, not only failures
    return None


def _language(request: web.Request) -> str:
    """The page's language from ``?lang=`` (no cookie is set); Vietnamese first."""
    language = request.query.get("lang", "")
    if language in LANGUAGES:
        request[LANGUAGE] = language
    else:
        request[LANGUAGE] = "vi"
    return request[LANGUAGE]


def _labels(config: HotlineConfig) -> dict[str, dict[str, str]]:
    return {
        "topics": {t.code: t.name for t in config.cases.topics},
        "areas": {a.code: a.name for a in iter_areas(config.areas)},
        "hotlines": {h.id: h.name for h in config.hotlines},
    }


async def public_cases(request: web.Request) -> web.Response:
    """Published cases, newest first, for one hotline or all."""
    limited = _budget(request)
    if limited is not None:
        return limited
    language = _language(request)
    state = state_of(request)
    hotline_id = request.match_info.get("hotline_id") or request.query.get("hotline") or None
    hotline = state.config.hotline(hotline_id) if hotline_id else None
    if hotline_id and hotline is None:
        return error_page(request, 404, "Not found")
    try:
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        page = 1
    cases, more = await db(_service(request).published, hotline_id, min(page, 10_000))
    return render(
        request, "public_cases.html", cases=cases, hotline=hotline, page=page, more=more,
        labels=_labels(state.config), zone=state.zone, lang_query=f"lang={language}",
    )  # fmt: skip


async def public_case(request: web.Request) -> web.Response:
    """One published case by its public id (never the case code)."""
    limited = _budget(request)
    if limited is not None:
        return limited
    language = _language(request)
    state = state_of(request)
    public_id = request.match_info["public_id"][:24]
    case = await db(_service(request).published_case, public_id)
    if case is None:
        return error_page(request, 404, "Not found")
    return render(
        request, "public_case.html", case=case, labels=_labels(state.config), zone=state.zone,
        hotline=state.config.hotline(case.hotline_id), lang_query=f"lang={language}",
    )  # fmt: skip


# --- the console: consent and publication ------------------------------------------


def _bad_request(request: web.Request, message: str) -> web.Response:
    if wants_json(request):
        return web.json_response({"ok": False, "error": message}, status=400)
    return error_page(request, 400, "Bad request", message)


async def case_consent(request: web.Request) -> web.StreamResponse:
    """Record whether the citizen consented to publication (``consent``), with
    how it was given (``note``); withdrawing it unpublishes."""
    state = state_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "publish_consent_refused", f"case {code}")
    form = await form_or_json(request)
    consent = _truthy(form.get("consent"))
    note = form.get("note", "").strip()[:1000]
    try:
        changed = await db(
            _service(request).set_consent, code, consent, user_of(request).username, note
        )
    except PublicationNotFound:
        return error_page(request, 404, "Not found")
    if changed:
        action = "publish_consent" if consent else "publish_consent_withdrawn"
        await audit(request, action, f"case {code}", detail=note)
    return done(request, f"/cases/{code}", code=code, publish_consent=consent)


async def case_publish(request: web.Request) -> web.StreamResponse:
    """Publish an answered case of the supervisor's hotline with the texts
    they edited; 400 with the reason when it may not be."""
    state = state_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "publish_case_refused", f"case {code}")
    form = await form_or_json(request)
    try:
        public_id = await db(
            _service(request).publish, code, title=form.get("title", ""),
            text=form.get("text", ""), answer=form.get("answer", ""),
            actor=user_of(request).username,
        )  # fmt: skip
    except PublicationNotFound:
        return error_page(request, 404, "Not found")
    except PublicationError as exc:
        return _bad_request(request, str(exc))
    await audit(request, "publish_case", f"case {code}", detail=f"public id {public_id}")
    return done(request, f"/cases/{code}", code=code, public_id=public_id,
                url=f"/public/cases/{public_id}")  # fmt: skip


async def case_unpublish(request: web.Request) -> web.StreamResponse:
    """Take a case off the public page (at any time)."""
    state = state_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "unpublish_case_refused", f"case {code}")
    try:
        was = await db(_service(request).unpublish, code, user_of(request).username)
    except PublicationNotFound:
        return error_page(request, 404, "Not found")
    if was:
        await audit(request, "unpublish_case", f"case {code}")
    return done(request, f"/cases/{code}", code=code, unpublished=was)


ROUTES = [
    Route("GET", "/public/cases", public_cases, PUBLIC, "public_cases"),
    Route("GET", "/public/cases/{public_id}", public_case, PUBLIC, "public_case"),
    Route("GET", "/public/{hotline_id}/cases", public_cases, PUBLIC, "public_hotline_cases"),
    Route("POST", "/cases/{code}/consent", case_consent, STAFF, "case_consent"),
    Route("POST", "/api/v1/cases/{code}/consent", case_consent, STAFF, "case_consent_api"),
    Route("POST", "/cases/{code}/publish", case_publish, WATCHERS, "case_publish"),
    Route("POST", "/api/v1/cases/{code}/publish", case_publish, WATCHERS, "case_publish_api"),
    Route("POST", "/cases/{code}/unpublish", case_unpublish, WATCHERS, "case_unpublish"),
    Route("POST", "/api/v1/cases/{code}/unpublish", case_unpublish, WATCHERS,
          "case_unpublish_api"),
]  # fmt: skip
