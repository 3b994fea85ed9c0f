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

This module holds the pages; the fields' checks are in citizen_form_checks.py,
the size-limited read of the post in citizen_form_upload.py, the token in
citizen_form_token.py.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.cases.service import CaseService
from ivr.config.channels import WebFormChannel
from ivr.config.schema import Hotline, HotlineConfig
from ivr.contracts.channels import ContactKind, MessageDirection
from ivr.intake.types import IntakeRefused
from ivr.web.citizen_form_checks import (
    CASE_CODE,
    FIELD_ORDER,
    INTAKE_FIELDS,
    LIMITS,
    M_CODE,
    M_CONTACT,
    M_EXPIRED,
    M_FILES_AGAIN,
    ReportForm,
    check_report,
    parse_contact,
    submission_of,
    wards,
)
from ivr.web.citizen_form_token import FormTokens
from ivr.web.citizen_form_upload import TEXT_PART_BYTES, FormTooLarge, read_post
from ivr.web.i18n import LANGUAGES, translator
from ivr.web.intake_state import Intake, intake_of
from ivr.web.rendering import render
from ivr.web.security import LoginRateLimiter
from ivr.web.state import LANGUAGE, PUBLIC, Route, address_of, db, state_of

logger = logging.getLogger(__name__)

REPORT_LIMITER = web.AppKey("hotline_report_limiter", LoginRateLimiter)
STATUS_LIMITER = web.AppKey("hotline_report_status_limiter", LoginRateLimiter)
FORM_TOKENS = web.AppKey("hotline_report_form_tokens", FormTokens)


def setup(app: web.Application, secret: bytes, channel: WebFormChannel) -> None:
    """The form's token signer and per-address budgets on ``app`` (one per app)."""
    app[FORM_TOKENS] = FormTokens(secret)
    app[REPORT_LIMITER] = LoginRateLimiter(channel.submissions_per_window, channel.window_seconds)
    app[STATUS_LIMITER] = LoginRateLimiter(
        channel.status_lookups_per_window, channel.window_seconds
    )


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


def _too_many(request: web.Request, wait: float, explanation: str) -> web.Response:
    """The 429 page saying ``explanation``, to be tried again in ``wait`` seconds."""
    _ = translator(request[LANGUAGE])
    response = _error_page(request, 429, _("Too many requests"), explanation)
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


def _minutes(wait: float) -> int:
    return max(1, math.ceil(wait / 60))


def _over_budget(request: web.Request, key: web.AppKey[LoginRateLimiter]) -> web.Response | None:
    """429 once this address used its budget; otherwise count this request."""
    limiter = request.app[key]
    keys = [address_of(request)]
    wait = limiter.blocked(keys)
    if wait > 0:
        _ = translator(request[LANGUAGE])
        return _too_many(request, wait, _(
            "Too many reports or lookups from your connection. "
            "Please try again in {minutes} minutes.", minutes=_minutes(wait)))  # fmt: skip
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
        field_name = INTAKE_FIELDS.get(exc.field or "", "form")
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
    if not CASE_CODE.fullmatch(code):
        context["errors"]["code"] = M_CODE
    if contact is None:
        context["errors"]["contact"] = M_CONTACT
    if context["errors"]:
        return _page(request, "report_status.html", 400, **context)
    assert contact is not None
    # Codes are short (a few random digits a month): whoever knows a citizen's
    # phone could try them all from many addresses. Wrong guesses are counted per
    # contact too, whatever the address, within the same budget.
    guessed = [f"contact:{contact[0]}:{contact[1]}"]
    limiter = request.app[STATUS_LIMITER]
    wait = limiter.blocked(guessed)
    if wait > 0:
        _ = translator(request[LANGUAGE])
        return _too_many(request, wait, _(
            "Too many wrong case codes were tried with this phone number or email. "
            "Please try again in {minutes} minutes, or call the hotline.",
            minutes=_minutes(wait)))  # fmt: skip
    state = state_of(request)
    found = await db(look_up, intake_of(request), state.cases, code, contact)
    if found is None or (hotline is not None and found[1] != hotline.id):
        # The same page for an unknown code, a wrong contact and another hotline's case.
        limiter.failed(guessed)
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
