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
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from ivr.cases.redaction import redact
from ivr.config.channels import Open311Channel
from ivr.config.email import check_email_address
from ivr.config.schema import HotlineConfig
from ivr.contracts.channels import Channel, ContactKind
from ivr.contracts.statuses import OPEN_CASE_STATUSES, CaseStatus
from ivr.db.models import utc_now
from ivr.intake.types import IncomingAttachment, IntakeRefused, IntakeResult, Submission
from ivr.phone import normalise_caller
from ivr.web import open311_store
from ivr.web.api_keys import ApiKeyStore, ApiKeyView, CheckedKeys, hash_key
from ivr.web.intake_state import intake_of
from ivr.web.open311_format import (
    FORMATS,
    REQUESTS,
    SERVICES,
    Open311Error,
    comma_list,
    date_range,
    end_of_day,
    error_body,
    render,
    w3,
)
from ivr.web.security import LoginRateLimiter
from ivr.web.state import PUBLIC, Handler, Route, address_of, db, state_of

logger = logging.getLogger(__name__)

SPEC = "http://wiki.open311.org/GeoReport_v2"
BASE = "/open311/v2"
DESCRIPTION_MAX = 4000  # the spec's limit of ``description``
IDEMPOTENCY_HEADER = "Idempotency-Key"
_CODE = re.compile(r"^\d{1,16}$")
# Control characters (line breaks excepted in the description) have no place in
# a field that ends up in a case, a log line or an XML answer.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Budgets:
    """Requests per minute: POSTs per API key, GETs per client address."""

    posts: LoginRateLimiter
    reads: LoginRateLimiter


# Per app, not module-wide: a test builds many apps. Weak: a dropped app's go too.
_BUDGETS: weakref.WeakKeyDictionary[web.Application, Budgets] = weakref.WeakKeyDictionary()


def _budgets(request: web.Request, channel: Open311Channel) -> Budgets:
    budgets = _BUDGETS.get(request.app)
    if (
        budgets is None
        or budgets.posts.attempts != channel.requests_per_minute
        or (budgets.reads.attempts != channel.reads_per_minute)
    ):
        # First use, or a config applied while running changed a budget.
        budgets = Budgets(
            LoginRateLimiter(channel.requests_per_minute, 60),
            LoginRateLimiter(channel.reads_per_minute, 60),
        )
        _BUDGETS[request.app] = budgets
    return budgets


@dataclass
class _Keys:
    """Keys checked lately, and the lookups under way: requests with the same
    key that arrive while its lookup waits for a database thread (a burst, a
    backlog) wait for that one lookup instead of each queueing their own."""

    checked: CheckedKeys = field(default_factory=CheckedKeys)
    pending: dict[str, asyncio.Future[ApiKeyView | None]] = field(default_factory=dict)


_KEYS: weakref.WeakKeyDictionary[web.Application, _Keys] = weakref.WeakKeyDictionary()


async def _api_key(request: web.Request, given: str) -> ApiKeyView | None:
    """The active key ``given`` is (see :class:`ivr.web.api_keys.CheckedKeys`)."""
    keys = _KEYS.get(request.app)
    if keys is None:
        keys = _KEYS[request.app] = _Keys()
    found = keys.checked.get(given)
    if found is not None:
        return found
    digest = hash_key(given)
    lookup = keys.pending.get(digest)
    if lookup is None:
        store = ApiKeyStore(state_of(request).sessions)
        lookup = keys.pending[digest] = asyncio.ensure_future(db(store.check, given))

        def done(future: asyncio.Future[ApiKeyView | None]) -> None:
            keys.pending.pop(digest, None)
            if not future.cancelled() and future.exception() is None:
                view = future.result()
                if view is not None:
                    keys.checked.put(given, view)

        lookup.add_done_callback(done)
    # Shielded: one waiter leaving (its client hung up) cancels no one else's.
    return await asyncio.shield(lookup)


def _spend(limiter: LoginRateLimiter, key: str) -> None:
    wait = limiter.blocked([key])
    if wait > 0:
        raise _TooMany(int(wait) + 1)
    limiter.failed([key])  # every request counts


class _TooMany(Open311Error):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"too many requests; try again in {retry_after} s")
        self.retry_after = retry_after


def _format(request: web.Request) -> str:
    fmt = request.match_info.get("fmt", "json")
    return fmt if fmt in FORMATS else "json"


def _answer(fmt: str, names: tuple[str, str | None], body: Any, status: int = 200) -> web.Response:
    data, content_type = render(fmt, names, body)
    return web.Response(status=status, body=data, headers={"Content-Type": content_type})


def _error(fmt: str, error: Open311Error) -> web.Response:
    data, content_type = error_body(fmt, [(error.status, error.description)])
    headers = {"Content-Type": content_type}
    if isinstance(error, _TooMany):
        headers["Retry-After"] = str(error.retry_after)
    return web.Response(status=error.status, body=data, headers=headers)


def _channel(request: web.Request) -> Open311Channel:
    channel = state_of(request).config.channels.open311
    if not channel.enabled:
        raise Open311Error(404, "Open311 is not enabled on this server")
    return channel


def _hotline_id(config: HotlineConfig, jurisdiction: str | None) -> str:
    jurisdiction = (jurisdiction or "").strip()
    if jurisdiction:
        if config.hotline(jurisdiction) is None:
            raise Open311Error(404, f"unknown jurisdiction_id {jurisdiction[:64]!r}")
        return jurisdiction
    if len(config.hotlines) == 1:
        return config.hotlines[0].id
    known = ", ".join(h.id for h in config.hotlines)
    raise Open311Error(400, f"jurisdiction_id is required on this server (one of: {known})")


def _services(config: HotlineConfig, channel: Open311Channel) -> list[dict[str, Any]]:
    offered = None if channel.topics is None else set(channel.topics)
    out = []
    for topic in config.cases.topics:
        if offered is not None and topic.code not in offered:
            continue
        extra = channel.services.get(topic.code)
        out.append(
            {
                "service_code": topic.code,
                "service_name": topic.name,
                "description": (extra.description if extra else "") or topic.name,
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(extra.keywords) if extra else "",
                "group": extra.group if extra else "",
            }
        )
    return out


Open311Handler = Callable[[web.Request, str, Open311Channel], Awaitable[web.StreamResponse]]


def _guarded(handler: Open311Handler) -> Handler:
    """Every Open311 handler: errors in the spec's format (a failure of ours
    too: a 500 the client can parse), the read budget."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        fmt = _format(request)
        try:
            if request.match_info.get("fmt") not in FORMATS:
                raise Open311Error(404, "unknown format: use .json or .xml")
            channel = _channel(request)
            if request.method == "GET":
                _spend(_budgets(request, channel).reads, address_of(request))
            return await handler(request, fmt, channel)
        except Open311Error as exc:
            return _error(fmt, exc)
        except web.HTTPRequestEntityTooLarge:
            return _error(fmt, Open311Error(413, "the request is too large"))
        except web.HTTPException:
            raise
        except Exception:
            logger.exception("open311 %s %s failed", request.method, request.path)
            return _error(fmt, Open311Error(500, "the server failed; nothing was saved"))

    return run


# --- discovery and services ---------------------------------------------------------


@_guarded
async def discovery(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """Where this endpoint is and what it speaks (the spec's service discovery)."""
    # The configured address when there is one: the Host header is the client's.
    base = (channel.public_url or f"{request.scheme}://{request.host}") + BASE
    body = {
        "changeset": "2026-11-30T00:00:00Z",
        "contact": "the hotline's administrators",
        "key_service": "API keys are issued by the hotline's administrators",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": "2026-11-30T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return _answer(fmt, ("discovery", None), body)


@_guarded
async def services(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """The hotline's topics as GeoReport services."""
    config = state_of(request).config
    _hotline_id(config, request.query.get("jurisdiction_id"))
    return _answer(fmt, SERVICES, _services(config, channel))


@_guarded
async def service_definition(
    request: web.Request, fmt: str, channel: Open311Channel
) -> web.Response:
    """A service's definition: no extra attributes (every service has
    ``metadata`` false), but the spec's call answers for any known code."""
    config = state_of(request).config
    _hotline_id(config, request.query.get("jurisdiction_id"))
    code = request.match_info["service_code"]
    if not any(s["service_code"] == code for s in _services(config, channel)):
        raise Open311Error(404, f"unknown service_code {code[:64]!r}")
    return _answer(fmt, ("service_definition", None), {"service_code": code, "attributes": []})


# --- POST requests ------------------------------------------------------------------


async def _read_form(
    request: web.Request, limit: int
) -> tuple[MultiDict[str], IncomingAttachment | None]:
    """The POST's fields, and the ``media`` file of a multipart body; 413 past
    ``limit`` bytes (counted while it streams in, not after)."""
    length = request.content_length
    if length is not None and length > limit:
        raise Open311Error(413, f"the request is larger than {limit} bytes")
    if request.content_type == "multipart/form-data":
        fields: MultiDict[str] = MultiDict()
        media: IncomingAttachment | None = None
        total = 0
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise Open311Error(400, "a nested multipart body is not accepted")
                chunks = []
                while chunk := await part.read_chunk(64 * 1024):
                    total += len(chunk)
                    if total > limit:
                        raise Open311Error(413, f"the request is larger than {limit} bytes")
                    chunks.append(chunk)
                content = b"".join(chunks)
                if part.filename is not None or part.name == "media":
                    if part.name != "media" or media is not None:
                        raise Open311Error(400, "only one file, named media, is accepted")
                    media = IncomingAttachment(
                        filename=(part.filename or "media")[:255],
                        content=content,
                        declared_type=part.headers.get("Content-Type", "")[:100],
                    )
                else:
                    fields.add(part.name, content.decode("utf-8", "replace"))
        except (ValueError, AssertionError) as exc:  # a malformed multipart body
            raise Open311Error(400, f"malformed multipart body: {exc}"[:200]) from None
        return fields, media
    if request.content_type not in ("application/x-www-form-urlencoded", ""):
        raise Open311Error(
            400, "post the fields form-encoded (or multipart/form-data with a media file)"
        )
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise Open311Error(400, "malformed form body") from None
    return MultiDict((k, v) for k, v in form.items() if isinstance(v, str)), None


def _field(form: MultiDict[str], name: str, max_length: int, *, lines: bool = False) -> str:
    values = form.getall(name, [])
    if len(values) > 1:
        raise Open311Error(400, f"{name} is given more than once")
    text = values[0].strip() if values else ""
    if len(text) > max_length:
        raise Open311Error(400, f"{name} is longer than {max_length} characters")
    if _CONTROL.search(text) or (not lines and ("\n" in text or "\r" in text)):
        raise Open311Error(400, f"{name} holds control characters or line breaks")
    return text


def _coordinate(form: MultiDict[str], name: str, bound: float) -> float | None:
    text = _field(form, name, 32)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Open311Error(400, f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise Open311Error(400, f"{name} is out of range (±{bound:g})")
    return value


@dataclass(frozen=True)
class _Posted:
    submission: Submission
    details: open311_store.RequestDetails
    account_id: str


def _media_url(text: str) -> str:
    if not text:
        return ""
    if not re.fullmatch(r"https?://[^\s<>\"']+", text):
        raise Open311Error(400, "media_url must be an http(s) URL")
    return text


def _idempotency_key(
    request: web.Request, key: ApiKeyView, form: MultiDict[str], media: IncomingAttachment | None
) -> str | None:
    """The dedup key of this POST (see the module's docstring), scoped to the
    API key so two apps never collide; a device's key covers every field and
    the media file's bytes (two photos with the same words are two reports)."""
    given = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if given:
        if len(given) > 128 or _CONTROL.search(given):
            raise Open311Error(400, f"{IDEMPOTENCY_HEADER} is at most 128 printable characters")
        return f"open311:{key.id}:h:{given}"
    device = form.get("device_id", "").strip()
    if not device:
        return None
    fields = sorted((k, v) for k, v in form.items() if k != "api_key")
    content = hashlib.sha256(media.content).hexdigest() if media else ""
    digest = hashlib.sha256(repr((fields, content)).encode("utf-8")).hexdigest()[:40]
    return f"open311:{key.id}:d:{digest}"


def _parse_post(
    request: web.Request,
    config: HotlineConfig,
    channel: Open311Channel,
    key: ApiKeyView,
    form: MultiDict[str],
    media: IncomingAttachment | None,
) -> _Posted:
    hotline_id = _hotline_id(config, form.get("jurisdiction_id"))
    if hotline_id != key.hotline_id:
        raise Open311Error(403, "this api_key is not valid for that jurisdiction_id")
    code = _field(form, "service_code", 64)
    if not code:
        raise Open311Error(400, "service_code is required")
    service = next((s for s in _services(config, channel) if s["service_code"] == code), None)
    if service is None:
        raise Open311Error(400, f"service_code {code!r} is not a service of this jurisdiction")
    latitude = _coordinate(form, "lat", 90)
    longitude = _coordinate(form, "long", 180)
    if (latitude is None) != (longitude is None):
        raise Open311Error(400, "lat and long go together")
    address = _field(form, "address_string", 500)
    address_id = _field(form, "address_id", 128)
    if latitude is None and not address and not address_id:
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    description = _field(form, "description", DESCRIPTION_MAX, lines=True)
    media_url = _media_url(_field(form, "media_url", 1000))
    if not description and media is None and not media_url:
        raise Open311Error(400, "description is required (or a media file)")
    contacts: list[tuple[ContactKind, str]] = []
    email = _field(form, "email", 255).lower()
    if email:
        try:
            # The same check as every address the hotline may write to.
            check_email_address(email)
        except ValueError:
            raise Open311Error(400, "email is not an e-mail address") from None
        contacts.append((ContactKind.EMAIL, email))
    phone_text = _field(form, "phone", 32)
    if phone_text:
        phone = normalise_caller(phone_text).e164
        if phone is None:
            raise Open311Error(400, "phone is not a phone number")
        contacts.append((ContactKind.PHONE, phone))
    # Vietnamese order: family name (the spec's last_name) first, as the
    # hotline writes and redacts names ("Nguyễn" + "Văn An").
    name = " ".join(
        part for part in (_field(form, "last_name", 64), _field(form, "first_name", 64)) if part
    )
    _field(form, "device_id", 128)  # checked; used only to recognise a retry
    account_id = _field(form, "account_id", 128)  # echoed in the answer, not kept
    text = description
    if media_url:
        # Agents see the link; the server never fetches it.
        text = f"{text}\n\nmedia_url (not fetched): {media_url}".strip()
    idempotency_key = _idempotency_key(request, key, form, media)
    submission = Submission(
        hotline_id=hotline_id, channel=Channel.OPEN311, text=text, contacts=tuple(contacts),
        name=name, topic=code, address=address,
        latitude=latitude, longitude=longitude, attachments=(media,) if media else (),
        idempotency_key=idempotency_key,
        # Which app sent it, on the case's thread: the key's id, and the
        # request's own id when the app gave one.
        external_id=idempotency_key or f"open311:{key.id}:{uuid.uuid4().hex}",
    )  # fmt: skip
    details = open311_store.RequestDetails(
        api_key_id=key.id, address_id=address_id, media_url=media_url,
    )  # fmt: skip
    return _Posted(submission, details, account_id)


@_guarded
async def post_request(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """A new service request: a case through the intake, its code back."""
    state = state_of(request)
    form, media = await _read_form(request, channel.max_request_bytes)
    given = _field(form, "api_key", 100)
    if not given:
        raise Open311Error(403, "api_key is required to post a request")
    budgets = _budgets(request, channel)
    # Wrong keys are budgeted per address, so guessing is slow too.
    key = await _api_key(request, given)
    if key is None:
        _spend(budgets.posts, f"bad:{address_of(request)}")
        logger.info("open311 POST with an unknown or revoked key from %s", address_of(request))
        raise Open311Error(403, "api_key is not valid")
    _spend(budgets.posts, f"key:{key.id}")
    posted = _parse_post(request, state.config, channel, key, form, media)
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
    return _answer(fmt, REQUESTS, body)


# --- GET requests -------------------------------------------------------------------


def _public(config: HotlineConfig, hotline_id: str, item: open311_store.PublicRequest,
            zone: Any) -> dict[str, Any]:  # fmt: skip
    topics = {t.code: t.name for t in config.cases.topics}
    hotline = config.hotline(hotline_id)
    unit = config.unit(item.responsible_unit) if item.responsible_unit else None
    names = (item.caller_name,)
    answered = item.status in (CaseStatus.ANSWERED, CaseStatus.CLOSED)
    if item.erased:
        notes = description = ""
    else:
        description = redact(item.summary, names=names)[:DESCRIPTION_MAX]
        if answered:
            notes = redact(item.answer, names=names)
        elif item.status == CaseStatus.REJECTED:
            notes = redact(item.rejection_reason, names=names)
        else:
            notes = ""
    return {
        "service_request_id": item.code,
        "status": "open" if item.status in OPEN_CASE_STATUSES else "closed",
        "status_notes": notes or None,
        "service_name": topics.get(item.topic or "", item.topic or ""),
        "service_code": item.topic,
        "description": description or None,
        "agency_responsible": unit.name if unit else (hotline.unit_name if hotline else None),
        "service_notice": None,
        "requested_datetime": w3(item.received_at, zone),
        "updated_datetime": w3(item.updated_at, zone),
        "expected_datetime": end_of_day(item.due_date, zone),
        "address": item.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": item.latitude,
        "long": item.longitude,
        "media_url": item.media_url or None,
    }


@_guarded
async def get_requests(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """Requests by id list, or by service, status and date window."""
    state = state_of(request)
    config, zone = state.config, state.zone
    hotline_id = _hotline_id(config, request.query.get("jurisdiction_id"))
    ids = comma_list(request.query.get("service_request_id"), limit=open311_store.MAX_REQUESTS)
    if ids:
        # The spec: a list of ids overrides every other parameter.
        codes = [i for i in ids if _CODE.match(i)]
        items = await db(open311_store.requests_by_code, state.sessions, hotline_id, codes)
    else:
        statuses = comma_list(request.query.get("status"), limit=2)
        if any(s not in ("open", "closed") for s in statuses):
            raise Open311Error(400, "status is open, closed, or both")
        topics = comma_list(request.query.get("service_code"), limit=100)
        start, end = date_range(
            request.query.get("start_date"), request.query.get("end_date"), utc_now(), zone
        )
        items = await db(
            open311_store.requests_between, state.sessions, hotline_id, start, end,
            topics=topics, statuses=statuses,
        )  # fmt: skip
    return _answer(fmt, REQUESTS, [_public(config, hotline_id, i, zone) for i in items])


@_guarded
async def get_request(request: web.Request, fmt: str, channel: Open311Channel) -> web.Response:
    """One request by its id (the case code)."""
    state = state_of(request)
    hotline_id = _hotline_id(state.config, request.query.get("jurisdiction_id"))
    code = request.match_info["request_id"]
    items = []
    if _CODE.match(code):
        items = await db(open311_store.requests_by_code, state.sessions, hotline_id, [code])
    if not items:
        raise Open311Error(404, f"no service request {code[:16]!r}")
    return _answer(fmt, REQUESTS, [_public(state.config, hotline_id, items[0], state.zone)])


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
