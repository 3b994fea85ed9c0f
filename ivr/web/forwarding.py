"""Forwarding in the console (issue 13): the hotline forwards a case to units
and approves the final answer; a unit user reads its forwards and acts on
them. JSON under ``/api/v1`` (the units' portal pages come next).

Handlers parse, check the scope and call :mod:`ivr.cases.forwarding`. Who may
touch a forward (:meth:`AccessScope.sees_forward`): the staff of the case's
hotline, and the clerks of the forward's unit — nobody else; a refusal is a
403 and is audited. A unit user reads the case's summary, and its transcript
only when the hotline shared it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from aiohttp import BodyPartReader, web

from ivr.cases.forwarding import (
    DueRun,
    ForwardError,
    ForwardingSchedule,
    ForwardingService,
    ForwardNotFound,
    ForwardRequest,
    Notifier,
    send_emails,
)
from ivr.cases.models import Case, CaseForward
from ivr.cases.service import CaseNotFound
from ivr.config.schema import HotlineConfig
from ivr.notify.email import EmailSender, OutgoingEmail, sender_from_config
from ivr.web.access import AccessScope
from ivr.web.live import LiveHub
from ivr.web.rendering import error_page, is_api, refuse
from ivr.web.state import (
    FORWARD_ACTORS,
    FORWARD_READERS,
    STAFF,
    STATE,
    UNITS,
    WATCHERS,
    Route,
    audit,
    db,
    scope_of,
    state_of,
    user_of,
)

logger = logging.getLogger(__name__)

FORWARDING = web.AppKey("hotline_forwarding", ForwardingService)
NOTIFIER = web.AppKey("hotline_forward_notifier", object)  # a Notifier, or None
_TRUE = ("1", "true", "on", "yes")


class EmailSenderNotifier:
    """The forwarding :class:`Notifier` over the email engineer's
    ``EmailSender`` (``async send(OutgoingEmail)``)."""

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender

    async def email(self, to: str, subject: str, text: str) -> None:
        await self.sender.send(OutgoingEmail(to=to, subject=subject, text=text))


def forward_json(forward: CaseForward, *, events: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": forward.id,
        "unit_code": forward.unit_code,
        "hotline_id": forward.hotline_id,
        "status": forward.status,
        "sent_at": forward.sent_at.isoformat(),
        "sent_by": forward.sent_by,
        "due_date": forward.due_date.isoformat(),
        "share_transcript": forward.share_transcript,
        "share_recording": forward.share_recording,
        "note": forward.note,
        "answer": forward.answer,
        "answered_at": forward.answered_at.isoformat() if forward.answered_at else None,
        "answered_by": forward.answered_by,
        "extension_days_requested": forward.extension_days_requested,
        "extension_reason": forward.extension_reason,
    }
    if events:
        data["events"] = [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
             "from": e.status_from, "to": e.status_to, "note": e.note}
            for e in forward.events
        ]  # fmt: skip
    return data


def _bad(request: web.Request, message: str, status: int = 400) -> web.Response:
    """A refused request: JSON for the API, else the error page (forms on the case page)."""
    if is_api(request):
        return web.json_response({"ok": False, "error": message}, status=status)
    return error_page(request, status, "Not found" if status == 404 else "Bad request", message)


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        return body if isinstance(body, dict) else {}
    form = await request.post()
    data: dict[str, Any] = {k: str(v) for k, v in form.items()}
    # A form forwards to several units with one "unit" field per unit.
    data["units"] = [str(u) for u in form.getall("unit", [])]
    return data


def _service(request: web.Request) -> ForwardingService:
    return request.app[FORWARDING]


async def _may_touch_case(request: web.Request, code: str, action: str) -> web.Response | None:
    """None when the user is of the case's hotline; else the 403 (audited) or 404."""
    hotline_id = await db(_service(request).hotline_of_case, code)
    if hotline_id is None:
        return _bad(request, "no such case", 404)
    scope = scope_of(request)
    if scope.is_unit or not scope.sees_hotline(hotline_id):
        return await refuse(request, action, f"case {code}")
    return None


async def _forward_in_scope(
    request: web.Request, action: str
) -> tuple[CaseForward | None, web.Response | None]:
    try:
        forward_id = int(request.match_info["forward_id"])
    except ValueError:
        return None, _bad(request, "no such forward", 404)
    forward = await db(_service(request).get, forward_id)
    if forward is None:
        return None, _bad(request, "no such forward", 404)
    scope: AccessScope = scope_of(request)
    if not scope.sees_forward(forward.unit_code, forward.hotline_id):
        return None, await refuse(request, action, f"forward {forward_id}")
    return forward, None


async def case_forwarding(request: web.Request, case: Case) -> dict[str, Any]:
    """What the case page shows of forwarding (the page checked the scope):
    the forwards, the units the case's hotline may forward to, the final
    answer prefilled from the units' answers."""
    service = _service(request)
    config = state_of(request).config
    return {
        "forwards": await db(service.forwards_of_case, case.code),
        "forward_units": config.units_for(case.hotline_id),
        "unit_names": {unit.code: unit.name for unit in config.units},
        "final_answer_draft": await db(service.draft_final_answer, case.code),
    }


# --- the hotline ------------------------------------------------------------------


async def forward_case(request: web.Request) -> web.StreamResponse:
    """Forward a case to one or more units: ``{"units": [{"unit_code", "working_days",
    "share_transcript", "share_recording", "note"}, …]}`` (or unit codes)."""
    code = request.match_info["code"][:16]
    refused = await _may_touch_case(request, code, "forward_refused")
    if refused is not None:
        return refused
    body = await _body(request)
    requests: list[ForwardRequest] = []
    try:
        for item in body.get("units") or []:
            if isinstance(item, str):
                item = {"unit_code": item}
            days = item.get("working_days", body.get("working_days"))
            requests.append(
                ForwardRequest(
                    unit_code=str(item.get("unit_code", ""))[:64],
                    working_days=int(days) if days not in (None, "") else None,
                    share_transcript=str(item.get("share_transcript", body.get(
                        "share_transcript", ""))).lower() in _TRUE,
                    share_recording=str(item.get("share_recording", body.get(
                        "share_recording", ""))).lower() in _TRUE,
                    note=str(item.get("note", body.get("note", "")))[:4000],
                )
            )  # fmt: skip
    except (TypeError, ValueError, AttributeError):
        return _bad(request, "units: a list of unit codes or {unit_code, working_days, …}")
    try:
        outcome = await db(_service(request).forward, code, requests, user_of(request).username)
    except ForwardError as exc:
        return _bad(request, str(exc))
    await send_emails(request.app[NOTIFIER], outcome.emails)  # type: ignore[arg-type]
    await audit(request, "forward_case", f"case {code}",
                detail=", ".join(r.unit_code for r in requests))  # fmt: skip
    if not is_api(request):
        raise web.HTTPSeeOther(f"/cases/{code}#forwards")
    return web.json_response(
        {"ok": True, "forwards": [forward_json(f) for f in outcome.forwards]}, status=201
    )


async def case_forwards(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"][:16]
    refused = await _may_touch_case(request, code, "read_forwards_refused")
    if refused is not None:
        return refused
    try:
        forwards = await db(_service(request).forwards_of_case, code)
    except CaseNotFound:
        return _bad(request, "no such case", 404)
    await audit(request, "read_forwards", f"case {code}")
    return web.json_response([forward_json(f, events=True) for f in forwards])


async def final_answer_draft(request: web.Request) -> web.StreamResponse:
    """The final answer prefilled from the units' answers."""
    code = request.match_info["code"][:16]
    refused = await _may_touch_case(request, code, "read_forwards_refused")
    if refused is not None:
        return refused
    text = await db(_service(request).draft_final_answer, code)
    return web.json_response({"code": code, "answer": text})


async def approve_final_answer(request: web.Request) -> web.StreamResponse:
    """A supervisor approves the final answer: the case is answered (the
    citizen's SMS), its approver and time recorded, then closed."""
    code = request.match_info["code"][:16]
    refused = await _may_touch_case(request, code, "approve_answer_refused")
    if refused is not None:
        return refused
    body = await _body(request)
    answer = str(body.get("answer", "")).strip()[:4000]
    close = str(body.get("close", "true")).lower() in _TRUE
    try:
        case = await db(_service(request).approve_final_answer, code, answer,
                        user_of(request).username, close)  # fmt: skip
    except CaseNotFound:
        return _bad(request, "no such case", 404)
    except ForwardError as exc:
        return _bad(request, str(exc))
    except ValueError as exc:  # the case service's CaseError: a move not allowed
        return _bad(request, str(exc))
    await audit(request, "approve_answer", f"case {code}")
    if not is_api(request):
        raise web.HTTPSeeOther(f"/cases/{code}")
    return web.json_response(
        {"ok": True, "code": case.code, "status": case.status,
         "approved_by": case.answer_approved_by}
    )  # fmt: skip


async def decide_extension(request: web.Request) -> web.StreamResponse:
    forward, refused = await _forward_in_scope(request, "extension_decision_refused")
    if forward is None:
        assert refused is not None
        return refused
    if scope_of(request).is_unit:  # the route's roles exclude them; belt and braces
        return await refuse(request, "extension_decision_refused", f"forward {forward.id}")
    decision = request.match_info["decision"]
    if decision not in ("grant", "refuse"):
        return _bad(request, "decision: grant or refuse", 404)
    body = await _body(request)
    due: date | None = None
    try:
        if body.get("due_date"):
            due = date.fromisoformat(str(body["due_date"]))
        outcome = await db(_service(request).decide_extension, forward.id,
                           grant=decision == "grant", actor=user_of(request).username,
                           note=str(body.get("note", ""))[:1000], due_date=due)  # fmt: skip
    except ValueError as exc:  # ForwardError, or a malformed date
        return _bad(request, str(exc))
    await send_emails(request.app[NOTIFIER], outcome.emails)  # type: ignore[arg-type]
    await audit(request, f"extension_{decision}", f"forward {forward.id}")
    return web.json_response({"ok": True, "forward": forward_json(outcome.forwards[0])})


# --- the unit ---------------------------------------------------------------------


async def my_forwards(request: web.Request) -> web.StreamResponse:
    """A unit user's forwards, soonest deadline first."""
    scope = scope_of(request)
    if scope.unit_code is None:
        return web.json_response([])
    rows = [
        {**forward_json(forward), "case_code": code}
        for forward, code in await db(_service(request).forwards_of_unit, scope.unit_code)
    ]
    await audit(request, "list_forwards", f"unit {scope.unit_code}", detail=f"{len(rows)} rows")
    return web.json_response(rows)


async def forward_detail(request: web.Request) -> web.StreamResponse:
    forward, refused = await _forward_in_scope(request, "read_forward_refused")
    if forward is None:
        assert refused is not None
        return refused
    case = await db(_service(request).case_for_unit, forward)
    await audit(request, "read_forward", f"forward {forward.id}")
    if case is not None and case["transcript"]:
        await audit(request, "read_transcript", f"case {case['code']}")
    return web.json_response({**forward_json(forward, events=True), "case": case})


async def unit_action(request: web.Request) -> web.StreamResponse:
    """received, in_progress, answer (text, attachment_ids), return (reason),
    extension (days, reason)."""
    forward, refused = await _forward_in_scope(request, "forward_action_refused")
    if forward is None:
        assert refused is not None
        return refused
    action = request.match_info["action"]
    service = _service(request)
    actor = user_of(request).username
    unit = scope_of(request).unit_code  # None for the hotline's supervisors
    body = await _body(request)
    try:
        if action == "received":
            outcome = await db(service.mark_received, forward.id, actor, unit)
        elif action == "in_progress":
            outcome = await db(service.mark_in_progress, forward.id, actor, unit)
        elif action == "answer":
            ids = [int(i) for i in body.get("attachment_ids") or []]
            outcome = await db(service.answer, forward.id, str(body.get("answer", "")), actor,
                               unit, ids)  # fmt: skip
        elif action == "return":
            outcome = await db(service.return_not_ours, forward.id,
                               str(body.get("reason", ""))[:4000], actor, unit)  # fmt: skip
        elif action == "extension":
            outcome = await db(service.request_extension, forward.id, int(body.get("days", 0)),
                               str(body.get("reason", ""))[:4000], actor, unit)  # fmt: skip
        else:
            return _bad(request, f"unknown action {action!r}", 404)
    except ForwardNotFound:
        return _bad(request, "no such forward", 404)
    except (ValueError, TypeError) as exc:  # ForwardError, or a malformed number
        return _bad(request, str(exc))
    await audit(request, f"forward_{action}", f"forward {forward.id}")
    return web.json_response({"ok": True, "forward": forward_json(outcome.forwards[0])})


async def upload_attachment(request: web.Request) -> web.StreamResponse:
    """A file for the unit's answer (multipart field ``file``); its id goes in
    the answer's ``attachment_ids``."""
    forward, refused = await _forward_in_scope(request, "attachment_refused")
    if forward is None:
        assert refused is not None
        return refused
    reader = await request.multipart()
    part = await reader.next()
    while part is not None and getattr(part, "name", None) != "file":
        part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader):
        return _bad(request, "send the file in a multipart field named 'file'")
    content = bytes(await part.read())
    try:
        attachment = await db(
            _service(request).store_attachment, forward.id, part.filename or "file", content,
            part.headers.get("Content-Type", ""), user_of(request).username,
            scope_of(request).unit_code,
        )  # fmt: skip
    except ValueError as exc:  # ForwardError: empty or too large
        return _bad(request, str(exc))
    await audit(request, "attachment_upload", f"forward {forward.id}",
                detail=f"attachment {attachment.id}")  # fmt: skip
    return web.json_response(
        {"ok": True, "id": attachment.id, "filename": attachment.filename,
         "size": attachment.size}, status=201,
    )  # fmt: skip


async def download_attachment(request: web.Request) -> web.StreamResponse:
    """An attachment by its id, never by a path from the request, to whoever
    may read its forward (audited, like a recording's download)."""
    try:
        attachment_id = int(request.match_info["attachment_id"])
    except ValueError:
        return _bad(request, "no such attachment", 404)
    service = _service(request)
    found = await db(service.attachment, attachment_id)
    if found is None:
        return _bad(request, "no such attachment", 404)
    attachment, forward = found
    if not scope_of(request).sees_forward(forward.unit_code, forward.hotline_id):
        return await refuse(request, "attachment_refused", f"attachment {attachment_id}")
    path = service.attachment_path(attachment)
    if path is None:
        return _bad(request, "no such attachment", 404)
    await audit(request, "download", f"attachment {attachment_id}",
                detail=f"forward {forward.id}")  # fmt: skip
    return web.FileResponse(
        path,
        headers={
            "Cache-Control": "no-store",
            # Always a download: a file from outside is never rendered in the console.
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{path.name}"',
        },
    )


# --- the periodic job -------------------------------------------------------------


def start_due_checks(app: web.Application) -> ForwardingSchedule:
    """Reminders and escalations for the process running the console: the
    units and supervisors are emailed, the wallboard shows the overdue count
    of each hotline (:meth:`LiveHub.set_overdue_forwards`)."""
    hub: LiveHub = app[STATE].hub

    def on_run(run: DueRun) -> None:
        hub.set_overdue_forwards(run.overdue_by_hotline, run.escalations)

    schedule = ForwardingSchedule(app[FORWARDING], app[NOTIFIER], on_run)  # type: ignore[arg-type]
    schedule.start()
    return schedule


async def email_outbox(app: web.Application) -> AsyncIterator[None]:
    """The console's process retries the email outbox (mail the SMTP server
    could not take at once), as it runs retention: once per deployment."""
    notifier = app[NOTIFIER]
    sender = notifier.sender if isinstance(notifier, EmailSenderNotifier) else None
    if sender is not None:
        sender.start()
    yield
    if sender is not None:
        await sender.close()


def default_notifier(config: HotlineConfig) -> Notifier | None:
    """The SMTP sender of ``ivr/notify/email.py`` when ``email.enabled``;
    None: the emails are logged, not sent."""
    sender = sender_from_config(config)
    return EmailSenderNotifier(sender) if sender is not None else None


ROUTES = [
    Route("POST", "/cases/{code}/forwards", forward_case, STAFF, "forward_case"),
    Route("POST", "/cases/{code}/final-answer", approve_final_answer, WATCHERS,
          "approve_final_answer"),
    Route("POST", "/api/v1/cases/{code}/forwards", forward_case, STAFF, "forward_case_api"),
    Route("GET", "/api/v1/cases/{code}/forwards", case_forwards, STAFF, "case_forwards_api"),
    Route("GET", "/api/v1/cases/{code}/final-answer", final_answer_draft, STAFF,
          "final_answer_draft_api"),
    Route("POST", "/api/v1/cases/{code}/final-answer", approve_final_answer, WATCHERS,
          "approve_final_answer_api"),
    Route("GET", "/api/v1/forwards", my_forwards, UNITS, "my_forwards_api"),
    Route("GET", "/api/v1/forwards/{forward_id}", forward_detail, FORWARD_READERS,
          "forward_api"),
    Route("POST", "/api/v1/forwards/{forward_id}/extension/{decision}", decide_extension,
          WATCHERS, "extension_api"),
    Route("POST", "/api/v1/forwards/{forward_id}/attachments", upload_attachment,
          FORWARD_ACTORS, "upload_api"),
    Route("GET", "/api/v1/attachments/{attachment_id}", download_attachment, FORWARD_READERS,
          "forward_attachment_api"),
    Route("POST", "/api/v1/forwards/{forward_id}/{action}", unit_action, FORWARD_ACTORS,
          "forward_action_api"),
]  # fmt: skip
