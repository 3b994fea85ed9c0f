"""Open311 GeoReport v2 under ``/open311/v2/`` (issue 14; docs/channels.md).

Follows http://wiki.open311.org/GeoReport_v2:

- ``GET discovery.(json|xml)``: this endpoint, its formats, where keys come from;
- ``GET services.(json|xml)``: the hotline's case topics as services
  (``service_code`` = topic code, ``metadata`` false, ``type`` realtime);
- ``GET services/{code}.(json|xml)``: a definition without attributes;
- ``POST requests.(json|xml)``: a case through the one intake, with an API key
  (form-encoded as the spec says, or multipart with a ``media`` file);
- ``GET requests.(json|xml)``: by ``service_request_id`` list, or by
  ``service_code``, ``status`` and a ``start_date``/``end_date`` window of at
  most 90 days and 1000 requests (the spec's defaults);
- ``GET requests/{id}.(json|xml)``: one request.

``jurisdiction_id`` is a hotline id: required when the deployment has several
hotlines, optional with one. Every answer, errors included, is in the format
the path asks for (errors: the spec's list of ``{code, description}``).

Decisions the spec leaves open (docs/channels.md says them too):

- ``service_request_id`` is the case code, the one the citizen can quote on
  the phone, the form's status page or by SMS.
- ``media_url`` is stored as a link and shown to agents and in ``GET
  requests``; it is never fetched (the server would otherwise fetch any URL a
  client names). A photo or video is posted as the multipart ``media`` file.
- Retries: the spec has no idempotency. A POST with an ``Idempotency-Key``
  header (or, without one, with a ``device_id``) is deduplicated per API key:
  the same key (or the same device with the same fields) gives the first
  request's answer back and writes nothing more.
- ``GET requests`` lists only requests that came through Open311 (the spec
  makes them public; a citizen who phoned was never told so), with only what
  the public page may show: no name, phone or e-mail, the description and the
  answer redacted (ivr.cases.redaction).
- Keys: per app and hotline, ``hotline open311-keys`` (ivr/web/open311_cli.py);
  POSTs per key and GETs per client address have a budget per minute (429).

This module holds the routes and their handlers, each a few lines: parse, call,
answer. The rest has a module per job: the frame every handler runs in, its
answers and errors (:mod:`ivr.web.open311_http`, with the wire formats of
:mod:`ivr.web.open311_format`), API keys and budgets
(:mod:`ivr.web.open311_limits`), discovery and services
(:mod:`ivr.web.open311_services`), the POST's form
(:mod:`ivr.web.open311_post_form`), the GET's search and public view
(:mod:`ivr.web.open311_search`); the tables in :mod:`ivr.web.open311_store`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.config.channels import Open311Channel
from ivr.db.models import utc_now
from ivr.intake.types import IntakeRefused, IntakeResult
from ivr.web import open311_store
from ivr.web.intake_state import intake_of
from ivr.web.open311_format import DESCRIPTION_MAX, REQUESTS, SERVICES, Open311Error
from ivr.web.open311_http import BASE, Open311Handler, answer, guarded, hotline_id_of
from ivr.web.open311_limits import Budgets, api_key_of, budgets_of, spend
from ivr.web.open311_post_form import IDEMPOTENCY_HEADER, form_field, parse_post, read_form
from ivr.web.open311_search import (
    find_requests,
    is_request_code,
    parse_search,
    public_request,
)
from ivr.web.open311_services import SPEC, discovery_document, service_of, services_of
from ivr.web.state import PUBLIC, Route, address_of, db, state_of

# The names this module had before it was split, for code that imports them here.
__all__ = [
    "BASE",
    "DESCRIPTION_MAX",
    "IDEMPOTENCY_HEADER",
    "ROUTES",
    "SPEC",
    "Budgets",
    "Open311Handler",
    "discovery",
    "get_request",
    "get_requests",
    "post_request",
    "service_definition",
    "services",
]

logger = logging.getLogger(__name__)


# --- discovery and services ---------------------------------------------------------


@guarded
async def discovery(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """Where this endpoint is and what it speaks (the spec's service discovery)."""
    # The configured address when there is one: the Host header is the client's.
    base = (channel.public_url or f"{request.scheme}://{request.host}") + BASE
    return answer(fmt, ("discovery", None), discovery_document(base))


@guarded
async def services(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """The hotline's topics as GeoReport services."""
    config = state_of(request).config
    hotline_id_of(config, request.query.get("jurisdiction_id"))
    return answer(fmt, SERVICES, services_of(config, channel))


@guarded
async def service_definition(
    request: web.Request, fmt: str, channel: Open311Channel
) -> web.Response:
    """A service's definition: no extra attributes (every service has
    ``metadata`` false), but the spec's call answers for any known code."""
    config = state_of(request).config
    hotline_id_of(config, request.query.get("jurisdiction_id"))
    code = request.match_info["service_code"]
    if service_of(config, channel, code) is None:
        raise Open311Error(404, f"unknown service_code {code[:64]!r}")
    return answer(fmt, ("service_definition", None), {"service_code": code, "attributes": []})


# --- POST requests ------------------------------------------------------------------


@guarded
async def post_request(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """A new service request: a case through the intake, its code back."""
    state = state_of(request)
    form, media = await read_form(request, channel.max_request_bytes)
    given = form_field(form, "api_key", 100)
    if not given:
        raise Open311Error(403, "api_key is required to post a request")
    budgets = budgets_of(request, channel)
    # Wrong keys are budgeted per address, so guessing is slow too.
    key = await api_key_of(request, given)
    if key is None:
        spend(budgets.posts, f"bad:{address_of(request)}")
        logger.info("open311 POST with an unknown or revoked key from %s", address_of(request))
        raise Open311Error(403, "api_key is not valid")
    spend(budgets.posts, f"key:{key.id}")
    posted = parse_post(request, state.config, channel, key, form, media)
    intake = intake_of(request)

    def submit() -> IntakeResult:
        # One trip to a database thread for both writes: at hundreds of posts a
        # second the hand-over to and from the thread is a cost of its own.
        result = intake.submit(posted.submission)
        if posted.details.worth_a_row:
            open311_store.record_request(state.sessions, result.case_id, posted.details)
        return result

    try:
        result = await db(submit)
    except IntakeRefused as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise Open311Error(400, f"{where}{exc}") from None
    if result.duplicate:
        logger.info("open311 retry of case %s (key %s)", result.case_code, key.id)
    body = [
        {
            "service_request_id": result.case_code,
            "service_notice": channel.service_notice,
            "account_id": posted.account_id or None,
        }
    ]
    return answer(fmt, REQUESTS, body)


# --- GET requests -------------------------------------------------------------------


@guarded
async def get_requests(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """Requests by id list, or by service, status and date window."""
    state = state_of(request)
    config, zone = state.config, state.zone
    hotline_id = hotline_id_of(config, request.query.get("jurisdiction_id"))
    search = parse_search(request.query, utc_now(), zone)
    items = await db(find_requests, state.sessions, hotline_id, search)
    return answer(fmt, REQUESTS, [public_request(config, hotline_id, i, zone) for i in items])


@guarded
async def get_request(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """One request by its id (the case code)."""
    state = state_of(request)
    hotline_id = hotline_id_of(state.config, request.query.get("jurisdiction_id"))
    code = request.match_info["request_id"]
    items = []
    if is_request_code(code):
        items = await db(open311_store.requests_by_code, state.sessions, hotline_id, [code])
    if not items:
        raise Open311Error(404, f"no service request {code[:16]!r}")
    return answer(fmt, REQUESTS, [public_request(state.config, hotline_id, items[0], state.zone)])


_FMT = "{fmt:[a-z0-9]+}"
ROUTES = [
    Route("GET", f"{BASE}/discovery.{_FMT}", discovery, PUBLIC, "open311_discovery"),
    Route("GET", f"{BASE}/services.{_FMT}", services, PUBLIC, "open311_services"),
    Route("GET", f"{BASE}/services/{{service_code}}.{_FMT}", service_definition, PUBLIC,
          "open311_service"),
    Route("POST", f"{BASE}/requests.{_FMT}", post_request, PUBLIC, "open311_post_request"),
    Route("GET", f"{BASE}/requests.{_FMT}", get_requests, PUBLIC, "open311_requests"),
    Route("GET", f"{BASE}/requests/{{request_id}}.{_FMT}", get_request, PUBLIC,
          "open311_request"),
]  # fmt: skip
