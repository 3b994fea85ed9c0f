"""The public web form (issue 14): a citizen reports a problem with photos or a
short video and gets a case code; a status page answers by code and contact.

- ``/report`` (a single-hotline deployment's form, or the list of hotlines)
  and ``/report/{hotline_id}``: no sign-in, no cookie (the language is a
  ``?lang=`` query). Topic, ward, free address, optional coordinates (a
  script may fill them from the phone's position, nothing external),
  description, photos or a video, name, phone and/or email, consent to
  publication, share location with photos (both unticked by default).
- ``/report/status`` and ``/report/{hotline_id}/status``: case code and the
  phone number or email given with it → status, dates and the answer. A wrong
  contact gets the very page an unknown code gets: a code's existence is
  never revealed.

Why a signed form token and not the console's CSRF check: a public form acts
with no one's authority (no session, no cookie), so a forged cross-site post
can do nothing a citizen cannot do by hand. The token does two other jobs: its
random part is the submission's idempotency key (a double click, a reload of
the result page or a retried post makes one case), and its signature and
timestamp keep the key ours and the form fresh (an old page comes back with
the input kept and a new token).

Uploads are read part by part in chunks and refused (413) as soon as the post
passes ``channels.web_form.max_upload_bytes``; nothing is written before the
whole post is read and valid. Every form post and every status lookup counts
against a per-address budget (429 with Retry-After beyond it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from ivr.cases.service import CaseService
from ivr.config.channels import WebFormChannel
from ivr.config.email import check_email_address
from ivr.config.schema import Area, Hotline, HotlineConfig
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.intake.types import IncomingAttachment, IntakeRefused, Submission
from ivr.phone import normalise_caller
from ivr.web.i18n import LANGUAGES, N_, translator
from ivr.web.intake_state import Intake, intake_of
from ivr.web.rendering import render
from ivr.web.security import LoginRateLimiter
from ivr.web.state import LANGUAGE, PUBLIC, Route, address_of, db, state_of

logger = logging.getLogger(__name__)

REPORT_LIMITER = web.AppKey("hotline_report_limiter", LoginRateLimiter)
STATUS_LIMITER = web.AppKey("hotline_report_status_limiter", LoginRateLimiter)

# Text fields: at most this many characters (a description is a report, not a file).
LIMITS = {"name": 100, "phone": 30, "email": 254, "address": 300, "description": 5000,
          "code": 16, "contact": 254, "latitude": 32, "longitude": 32, "topic": 64,
          "ward": 64, "form_token": 200}  # fmt: skip
DESCRIPTION_MIN = 10
# The form's fields top to bottom ("form": a problem with the whole post, listed first).
FIELD_ORDER = ("form", "topic", "description", "files", "ward", "address", "latitude", "name",
               "phone", "email")  # fmt: skip
TEXT_PART_BYTES = 64 * 1024  # one text field of the multipart post
CHUNK = 64 * 1024
# Allowed in the description besides printable text; single-line fields allow none.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CODE = re.compile(r"^[0-9]{6,16}$")

# Messages shown beside the fields (translated when shown).
M_REQUIRED_TOPIC = N_("Choose what the report is about.")
M_UNKNOWN_CHOICE = N_("Choose one of the options in the list.")
M_DESCRIPTION_SHORT = N_("Describe the problem in a few words (at least 10 characters).")
M_TOO_LONG = N_("This text is too long (at most {limit} characters).")
M_CONTROL = N_("This text holds characters that are not allowed (line breaks or control codes).")
M_PHONE = N_("Enter a Vietnamese phone number, for example 0912 345 678.")
M_EMAIL = N_("Enter an email address such as ten@example.vn.")
M_CONTACT = N_("Give a phone number or an email address so the answer can reach you.")
M_COORDINATES = N_("Give both latitude and longitude as numbers, or leave both empty.")
M_FILES = N_("At most {count} files.")
M_EXPIRED = N_("The form was open too long. Check your input, choose the files again and send.")
M_FILES_AGAIN = N_("Choose the photos or video again: a browser cannot keep them.")
M_NOT_FOUND = N_(
    "No report matches this code and contact. Check both: the phone number or email "
    "must be the one given with the report."
)
M_CODE = N_("Enter the case code, digits only.")


class FormTooLarge(Exception):
    """The post passed the size limit while it was being read."""


# --- the form token --------------------------------------------------------------------


class FormTokens:
    """``nonce.issued.mac``: the nonce is the idempotency key, the MAC (keyed by
    the app's secret, bound to the hotline) says we issued it, ``issued``
    dates the page."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"hotline report form\0" + key).digest()

    def _mac(self, hotline_id: str, nonce: str, issued: int) -> str:
        payload = f"{hotline_id}\0{nonce}\0{issued}".encode()
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode("ascii")

    def issue(self, hotline_id: str, now: float | None = None) -> str:
        nonce = secrets.token_urlsafe(18)
        issued = int(time.time() if now is None else now)
        return f"{nonce}.{issued}.{self._mac(hotline_id, nonce, issued)}"

    def check(
        self, token: str, hotline_id: str, max_age: float, now: float | None = None
    ) -> str | None:
        """The nonce of a good, fresh token for this hotline; None otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        nonce, issued_text, mac = parts
        issued = int(issued_text)
        if not hmac.compare_digest(mac.encode(), self._mac(hotline_id, nonce, issued).encode()):
            return None
        age = (time.time() if now is None else now) - issued
        if age > max_age or age < -300:  # a little clock skew between processes
            return None
        return nonce


FORM_TOKENS = web.AppKey("hotline_report_form_tokens", FormTokens)


def setup(app: web.Application, secret: bytes, channel: WebFormChannel) -> None:
    """The form's token signer and per-address budgets on ``app`` (one per app)."""
    app[FORM_TOKENS] = FormTokens(secret)
    app[REPORT_LIMITER] = LoginRateLimiter(channel.submissions_per_window, channel.window_seconds)
    app[STATUS_LIMITER] = LoginRateLimiter(
        channel.status_lookups_per_window, channel.window_seconds
    )


# --- reading and checking the form ------------------------------------------------------


@dataclass
class ReportForm:
    """What the citizen typed, as typed (shown back on errors), and the
    cleaned values once :func:`check_report` accepted it."""

    values: dict[str, str] = field(default_factory=dict)
    publish_consent: bool = False
    share_location: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # field → English message
    error_values: dict[str, dict[str, object]] = field(default_factory=dict)
    phone_e164: str | None = None
    email: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def error(self, name: str, message: str, **values: object) -> None:
        self.errors.setdefault(name, message)
        if values:
            self.error_values.setdefault(name, values)


def wards(config: HotlineConfig) -> list[tuple[str, list[Area]]]:
    """The units a report can be placed in: the leaves of the areas tree
    (wards, communes), grouped under their parent's name."""
    groups: list[tuple[str, list[Area]]] = []

    def walk(areas: list[Area], parent: str) -> None:
        leaves = [a for a in areas if not a.children]
        if leaves:
            groups.append((parent, leaves))
        for area in areas:
            if area.children:
                walk(area.children, area.name)

    walk(config.areas, "")
    return groups


def _clean_text(form: ReportForm, name: str, *, multiline: bool = False) -> str:
    text = form.values.get(name, "")
    if multiline:  # a textarea posts CRLF
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    if (_CONTROL if multiline else _LINE_CONTROL).search(text):
        form.error(name, M_CONTROL)
    if len(text) > LIMITS[name]:
        form.error(name, M_TOO_LONG, limit=LIMITS[name])
    return text


def _coordinate(text: str, bound: float) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    if not math.isfinite(value) or abs(value) > bound:
        return None
    return round(value, 6)


def check_report(
    fields: dict[str, str], config: HotlineConfig, hotline: Hotline, *, files: int = 0
) -> ReportForm:
    """Check a posted report; ``errors`` is empty when it may be submitted."""
    del hotline  # topics and areas are the deployment's, shared by its hotlines
    form = ReportForm(values={k: v for k, v in fields.items() if k in LIMITS})
    form.publish_consent = fields.get("publish_consent", "") in ("1", "on", "yes")
    form.share_location = fields.get("share_location", "") in ("1", "on", "yes")
    for name in ("name", "address"):
        form.values[name] = _clean_text(form, name)
    form.values["description"] = _clean_text(form, "description", multiline=True)
    if "description" not in form.errors and len(form.values["description"]) < DESCRIPTION_MIN:
        form.error("description", M_DESCRIPTION_SHORT)

    topic = form.values.get("topic", "")
    if not topic:
        form.error("topic", M_REQUIRED_TOPIC)
    elif topic not in {t.code for t in config.cases.topics}:
        form.error("topic", M_UNKNOWN_CHOICE)
    ward = form.values.get("ward", "")
    if ward and ward not in {a.code for _, group in wards(config) for a in group}:
        form.error("ward", M_UNKNOWN_CHOICE)

    phone = form.values.get("phone", "").strip()
    if phone:
        number = normalise_caller(phone) if not _LINE_CONTROL.search(phone) else None
        # A citizen's own number: E.164, not a short code or a withheld marker.
        if number is None or number.e164 is None or not number.e164.startswith("+"):
            form.error("phone", M_PHONE)
        else:
            form.phone_e164 = number.e164
    email = form.values.get("email", "").strip()
    if email:
        try:
            form.email = check_email_address(email).lower()
        except ValueError:
            form.error("email", M_EMAIL)
    if not phone and not email:
        form.error("phone", M_CONTACT)

    latitude = form.values.get("latitude", "").strip()
    longitude = form.values.get("longitude", "").strip()
    if latitude or longitude:
        form.latitude = _coordinate(latitude, 90)
        form.longitude = _coordinate(longitude, 180)
        if form.latitude is None or form.longitude is None:
            form.error("latitude", M_COORDINATES)
    if files > config.channels.web_form.max_files:
        form.error("files", M_FILES, count=config.channels.web_form.max_files)
    return form


def submission_of(
    form: ReportForm,
    hotline_id: str,
    nonce: str,
    attachments: tuple[IncomingAttachment, ...],
) -> Submission:
    """The checked form as the intake's :class:`Submission`."""
    contacts: list[tuple[ContactKind, str]] = []
    if form.phone_e164:
        contacts.append((ContactKind.PHONE, form.phone_e164))
    if form.email:
        contacts.append((ContactKind.EMAIL, form.email))
    return Submission(
        hotline_id=hotline_id,
        channel=Channel.WEB,
        text=form.values["description"],
        contacts=tuple(contacts),
        name=form.values.get("name", ""),
        topic=form.values.get("topic") or None,
        area_code=form.values.get("ward") or None,
        address=form.values.get("address", ""),
        latitude=form.latitude,
        longitude=form.longitude,
        share_location=form.share_location,
        publish_consent=form.publish_consent,
        attachments=attachments,
        idempotency_key=f"web-form:{hotline_id}:{nonce}",
    )


async def _read_part(part: BodyPartReader, limit: int, budget: list[int]) -> bytes:
    """A part's bytes, chunk by chunk; FormTooLarge past ``limit`` or the post's budget."""
    data = bytearray()
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk
        budget[0] -= len(chunk)
        if len(data) > limit or budget[0] < 0:
            raise FormTooLarge()


async def read_post(
    request: web.Request, max_bytes: int
) -> tuple[dict[str, str], list[IncomingAttachment]]:
    """The posted fields and files, refused (FormTooLarge) as soon as the
    body passes ``max_bytes``: the declared length first, then while reading."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise FormTooLarge()
    fields: dict[str, str] = {}
    files: list[IncomingAttachment] = []
    if request.content_type != "multipart/form-data":
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(text="send the form as multipart/form-data")
        # Small forms (the status lookup, a report without files): the app's
        # client_max_size (1 MiB) bounds them.
        posted = await request.post()
        return {k: v for k, v in posted.items() if isinstance(v, str)}, files
    budget = [max_bytes]
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):  # a nested multipart: not from our form
            raise web.HTTPBadRequest(text="unexpected nested multipart")
        if part.filename is not None:
            content = await _read_part(part, max_bytes, budget)
            # Only the form's file input; a file input left empty posts an empty part.
            if content and part.name == "files":
                files.append(IncomingAttachment(
                    _safe_filename(part.filename), content, part.headers.get("Content-Type", "")
                ))  # fmt: skip
            continue
        name = part.name or ""
        raw = await _read_part(part, TEXT_PART_BYTES, budget)
        if name in LIMITS or name in ("publish_consent", "share_location"):
            fields[name] = raw.decode("utf-8", errors="replace")
    return fields, files


def _safe_filename(name: str) -> str:
    """The file's own name without folders or control characters (shown to
    staff; the stored file is named by the intake). Browsers and aiohttp's
    client percent-encode what a quoted header value cannot hold."""
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    return _LINE_CONTROL.sub("", name).strip()[:120] or "file"


# --- the pages ----------------------------------------------------------------------------


def _language(request: web.Request) -> str:
    """The page's language from ``?lang=`` (no cookie is set); Vietnamese first."""
    language = request.query.get("lang", "")
    request[LANGUAGE] = language if language in LANGUAGES else "vi"
    return request[LANGUAGE]


def _channel(request: web.Request) -> WebFormChannel:
    channel = state_of(request).config.channels.web_form
    if not channel.enabled:
        raise _not_found(request)
    return channel


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    language = request[LANGUAGE]
    return render(request, template, status=status, lang_query=f"lang={language}", **context)


def _error_page(
    request: web.Request, status: int, title: str, message: str, hotline: Hotline | None = None
) -> web.Response:
    """A citizen's error page (already translated texts), in the form's layout."""
    return _page(request, "report_error.html", status, title=title, message=message,
                 hotline=hotline)  # fmt: skip


def _not_found(request: web.Request) -> web.HTTPException:
    _ = translator(request[LANGUAGE])
    response = _error_page(request, 404, _("Not found"), _("There is no such page."))
    return web.HTTPNotFound(text=response.text, content_type="text/html")


def _hotline(request: web.Request) -> Hotline | None:
    """The hotline of the path; None on ``/report`` of a deployment with several."""
    config = state_of(request).config
    hotline_id = request.match_info.get("hotline_id")
    if hotline_id is None:
        return config.sole_hotline()
    hotline = config.hotline(hotline_id)
    if hotline is None:
        raise _not_found(request)
    return hotline


def _over_budget(request: web.Request, key: web.AppKey[LoginRateLimiter]) -> web.Response | None:
    """429 once this address used its budget; otherwise count this request."""
    limiter = request.app[key]
    keys = [address_of(request)]
    wait = limiter.blocked(keys)
    if wait > 0:
        _ = translator(request[LANGUAGE])
        response = _error_page(
            request, 429, _("Too many requests"),
            _("Too many reports or lookups from your connection. "
              "Please try again in {minutes} minutes.", minutes=max(1, math.ceil(wait / 60))),
        )  # fmt: skip
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    limiter.failed(keys)  # every request counts, accepted or not
    return None


def _form_page(
    request: web.Request,
    hotline: Hotline,
    form: ReportForm | None = None,
    status: int = 200,
    notice: str = "",
) -> web.Response:
    config = state_of(request).config
    form = form or ReportForm()
    _ = translator(request[LANGUAGE])
    # The summary lists the problems in the order the fields come on the page.
    ordered = sorted(form.errors.items(), key=lambda item: FIELD_ORDER.index(item[0]))
    errors = {name: _(message, **form.error_values.get(name, {})) for name, message in ordered}
    return _page(
        request, "report_form.html", status, hotline=hotline, form=form, errors=errors,
        topics=config.cases.topics, ward_groups=wards(config),
        token=request.app[FORM_TOKENS].issue(hotline.id),
        max_files=config.channels.web_form.max_files,
        max_size=size_text(config.channels.web_form.max_upload_bytes),
        action=_base_path(hotline, config), notice=notice,
    )  # fmt: skip


def size_text(size: int) -> str:
    """A byte count as a citizen reads it: "60 MB", "512 KB"."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(1, size // 1024)} KB"


def _base_path(hotline: Hotline, config: HotlineConfig) -> str:
    return "/report" if config.sole_hotline() is not None else f"/report/{hotline.id}"


async def report_form(request: web.Request) -> web.StreamResponse:
    """The empty form, or, on ``/report`` with several hotlines, the list of them."""
    _language(request)
    _channel(request)
    hotline = _hotline(request)
    if hotline is None:
        return _page(request, "report_choose.html", hotlines=state_of(request).config.hotlines,
                     hotline=None)  # fmt: skip
    return _form_page(request, hotline)


async def report_submit(request: web.Request) -> web.StreamResponse:
    """Check the post; re-show it with messages, or hand it to the intake and
    show the case code and due date."""
    _language(request)
    channel = _channel(request)
    hotline = _hotline(request)
    if hotline is None:
        raise _not_found(request)
    limited = _over_budget(request, REPORT_LIMITER)
    if limited is not None:
        return limited
    try:
        fields, files = await read_post(request, channel.max_upload_bytes)
    except FormTooLarge:
        logger.info("web form post over %d bytes refused", channel.max_upload_bytes)
        _ = translator(request[LANGUAGE])
        return _error_page(
            request, 413, _("The files are too large"),
            _("A report with its photos and video may be at most {size}. Nothing was "
              "saved: go back and choose smaller photos or a shorter video.",
              size=size_text(channel.max_upload_bytes)),
            hotline,
        )  # fmt: skip
    config = state_of(request).config
    form = check_report(fields, config, hotline, files=len(files))
    nonce = request.app[FORM_TOKENS].check(
        fields.get("form_token", ""), hotline.id, channel.form_hours * 3600
    )
    if nonce is None and not form.errors:
        form.error("form", M_EXPIRED)
    if form.errors:
        if files and "files" not in form.errors:
            form.error("files", M_FILES_AGAIN)
        return _form_page(request, hotline, form, status=400)
    assert nonce is not None
    submission = submission_of(form, hotline.id, nonce, tuple(files))
    intake = intake_of(request)
    try:
        result = await db(intake.submit, submission)
    except IntakeRefused as exc:
        field_name = _INTAKE_FIELDS.get(exc.field or "", "form")
        form.error(field_name, str(exc))
        if files and field_name != "files":
            form.error("files", M_FILES_AGAIN)
        return _form_page(request, hotline, form, status=400)
    logger.info("web form: case %s (%s)", result.case_code,
                "duplicate" if result.duplicate else "new")  # fmt: skip
    contact = submission.contacts[0]
    view = await db(intake.status, result.case_code, contact)
    shown = status_view(view, state_of(request).zone) if view is not None else None
    return _page(request, "report_done.html", hotline=hotline, code=result.case_code,
                 view=shown, duplicate=result.duplicate,
                 status_path=_base_path(hotline, config) + "/status")  # fmt: skip


# The intake's names of the fields it refuses → the form's (else the summary shows it).
_INTAKE_FIELDS = {"topic": "topic", "area_code": "ward", "address": "address",
                  "latitude": "latitude", "longitude": "latitude", "text": "description",
                  "attachments": "files", "name": "name", "contacts": "phone"}  # fmt: skip


@dataclass(frozen=True)
class StatusView:
    """What the status page shows of a case: dates already as local days."""

    code: str
    status: str
    received: str
    due: str
    answer: str
    answered: str
    text: str


def _day(value: Any, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(zone).strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return ""


def status_view(view: Any, zone: ZoneInfo) -> StatusView:
    """The intake's view of a case, as the pages show it."""

    def first(*names: str) -> Any:
        for name in names:
            value = getattr(view, name, None)
            if value is not None:
                return value
        return None

    return StatusView(
        code=str(first("case_code", "code") or ""),
        status=str(first("status") or ""),
        received=_day(first("received_at", "created_at", "received"), zone),
        due=_day(first("due_date", "due_at", "due"), zone),
        answer=str(first("answer") or ""),
        answered=_day(first("answered_at", "answered"), zone),
        text=str(first("text", "summary", "description") or ""),
    )


def parse_contact(text: str) -> tuple[ContactKind, str] | None:
    """A phone number (to E.164) or an email address (lower-cased); None if neither."""
    text = text.strip()
    if not text or _LINE_CONTROL.search(text):
        return None
    if "@" in text:
        try:
            return ContactKind.EMAIL, check_email_address(text).lower()
        except ValueError:
            return None
    number = normalise_caller(text)
    if number.e164 is None or not number.e164.startswith("+"):
        return None
    return ContactKind.PHONE, number.e164


async def status_page(request: web.Request) -> web.StreamResponse:
    """The lookup form (GET) and its answer (POST)."""
    _language(request)
    _channel(request)
    hotline = _hotline(request)
    config = state_of(request).config
    action = (_base_path(hotline, config) if hotline else "/report") + "/status"
    context: dict[str, Any] = {"hotline": hotline, "action": action, "errors": {},
                               "values": {"code": request.query.get("code", "")[:16]},
                               "found": None, "not_found": False}  # fmt: skip
    if request.method == "GET":
        return _page(request, "report_status.html", **context)
    limited = _over_budget(request, STATUS_LIMITER)
    if limited is not None:
        return limited
    fields, _ = await read_post(request, TEXT_PART_BYTES)
    code = re.sub(r"\s", "", fields.get("code", ""))[: LIMITS["code"]]
    contact_text = fields.get("contact", "")[: LIMITS["contact"]]
    context["values"] = {"code": code, "contact": contact_text}
    contact = parse_contact(contact_text)
    if not _CODE.fullmatch(code):
        context["errors"]["code"] = M_CODE
    if contact is None:
        context["errors"]["contact"] = M_CONTACT
    if context["errors"]:
        return _page(request, "report_status.html", 400, **context)
    assert contact is not None
    state = state_of(request)
    found = await db(look_up, intake_of(request), state.cases, code, contact)
    if found is None or (hotline is not None and found[1] != hotline.id):
        # The same page for an unknown code, a wrong contact and another hotline's case.
        context["not_found"] = True
        return _page(request, "report_status.html", 404, **context)
    view, _hotline_id, text = found
    context["found"] = replace(status_view(view, state.zone), text=text)
    return _page(request, "report_status.html", **context)


def look_up(
    intake: Intake, cases: CaseService, code: str, contact: tuple[ContactKind, str]
) -> tuple[Any, str, str] | None:
    """(the intake's status view, the case's hotline, the citizen's own first
    message) when ``contact`` is the case's citizen's; None otherwise. The
    text shown back is what the citizen wrote, never the staff's summary."""
    view = intake.status(code, contact)
    if view is None:
        return None
    case = cases.find_by_code(view.case_code)
    if case is None:
        return None
    first = next(
        (e.message.text for e in intake.thread(case.id)
         if e.message.direction == MessageDirection.INBOUND),
        "",
    )  # fmt: skip
    return view, case.hotline_id, first


ROUTES = [
    Route("GET", "/report", report_form, PUBLIC, "report_form"),
    Route("POST", "/report", report_submit, PUBLIC, "report_submit"),
    # Before /report/{hotline_id}: "status" is a page, not a hotline.
    Route("GET", "/report/status", status_page, PUBLIC, "report_status"),
    Route("POST", "/report/status", status_page, PUBLIC, "report_status_lookup"),
    Route("GET", "/report/{hotline_id}", report_form, PUBLIC, "report_hotline_form"),
    Route("POST", "/report/{hotline_id}", report_submit, PUBLIC, "report_hotline_submit"),
    Route("GET", "/report/{hotline_id}/status", status_page, PUBLIC, "report_hotline_status"),
    Route("POST", "/report/{hotline_id}/status", status_page, PUBLIC,
          "report_hotline_status_lookup"),
]  # fmt: skip
