"""The queue of written work (issue 14): the open cases that came by SMS,
email, Zalo, the web form or Open311, for the agents and supervisors who answer
them from the console, with counts per channel (also on the wallboard and the
agent console). Scoped like the case list (ivr/web/access.py): a user of one
hotline never sees another's; every read is audited."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.cases.models import Case
from ivr.contracts.channels import WRITTEN_CHANNELS, Channel, ContactKind
from ivr.db.models import utc_now
from ivr.intake.models import FAILED, PENDING, SENT, CaseAttachment
from ivr.web import store, written_store
from ivr.web.i18n import N_
from ivr.web.intake_state import INTAKE, attachments_root
from ivr.web.payloads import iso
from ivr.web.reads import visible_case
from ivr.web.rendering import done, error_page, form_or_json, refuse, render, wants_json
from ivr.web.state import FORWARD_READERS, STAFF, Route, audit, db, scope_of, state_of, user_of

logger = logging.getLogger(__name__)

# The channels' names in the console (translated by value).
CHANNEL_LABELS: dict[str, str] = {
    Channel.PHONE: N_("Phone call"),
    Channel.VOICEMAIL: N_("Voicemail"),
    Channel.SMS: N_("SMS"),
    Channel.EMAIL: N_("Email"),
    Channel.ZALO: N_("Zalo"),
    Channel.WEB: N_("Web form"),
    Channel.OPEN311: N_("Open311 app"),
}


CONTACT_LABELS: dict[str, str] = {
    ContactKind.PHONE: N_("Phone"),
    ContactKind.EMAIL: N_("Email"),
    ContactKind.ZALO: N_("Zalo"),
}
# An outbound message's delivery (ivr.intake.models: pending, sent, failed).
DELIVERY_LABELS: dict[str, str] = {
    PENDING: N_("Waiting to be sent"),
    SENT: N_("Delivered to the channel"),
    FAILED: N_("Not delivered"),
}


def channel_label(channel: str | None) -> str:
    """The English source text of a channel's name (pass it through ``_``)."""
    return CHANNEL_LABELS.get(channel or "", channel or "")


def _channel(text: str) -> Channel | None:
    """A written channel from the query, or None (all of them)."""
    return next((c for c in WRITTEN_CHANNELS if c.value == text), None)


def written_case_json(case: Any) -> dict[str, Any]:
    return {
        "code": case.code,
        "channel": case.channel,
        "hotline_id": case.hotline_id,
        "status": case.status,
        "received_at": iso(case.received_at),
        "due_date": iso(case.due_date),
        "caller_name": case.caller_name,
        "caller_number": case.caller_number,
        "topic": case.topic,
        "area_code": case.area_code,
        "summary": case.summary[:300],
        "url": f"/cases/{case.code}",
    }


async def written_counts(request: web.Request) -> dict[str, int]:
    """The open written cases per channel this user may read."""
    state = state_of(request)
    return await db(written_store.written_counts, state.sessions, scope_of(request))


async def written_panel(request: web.Request) -> dict[str, Any]:
    """What the counts' panel (``_written_counts.html``) needs, for the
    wallboard and the agent console."""
    return {"counts": await written_counts(request), "labels": CHANNEL_LABELS}


async def written_page(request: web.Request) -> web.StreamResponse:
    """The queue (page and JSON): ``?channel=sms`` keeps one channel,
    ``?order=newest`` puts what just came in first (default: oldest due date)."""
    state = state_of(request)
    scope = scope_of(request)
    channel = _channel(request.query.get("channel", ""))
    order = request.query.get("order", "due")
    order = order if order in written_store.ORDERS else "due"
    cases = await db(written_store.written_queue, state.sessions, scope, channel, order)
    counts = await db(written_store.written_counts, state.sessions, scope)
    await audit(request, "list_written_work", request.path,
                detail=f"{len(cases)} rows; {request.query_string}"[:500])  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response(
            {**written_store.written_counts_json(counts),
             "cases": [written_case_json(c) for c in cases]}
        )  # fmt: skip
    return render(
        request, "written_work.html", cases=cases, counts=counts, channel=channel,
        order=order, channel_label=channel_label, channels=WRITTEN_CHANNELS,
    )  # fmt: skip


async def written_counts_api(request: web.Request) -> web.Response:
    """The counts alone, for the wallboard's and the agent console's refresh."""
    return web.json_response(written_store.written_counts_json(await written_counts(request)))


async def citizen_of_caller(
    request: web.Request, history: store.CallerHistory, hotline_id: str | None
) -> dict[str, Any]:
    """For the screen-pop (the caller's history was already allowed and
    audited): the caller's other contacts and open written cases, of the
    call's hotline and within the user's scope (the ``_pop_citizen.html``
    context)."""
    state = state_of(request)
    found = await db(written_store.citizen_of_caller, state.sessions, history.e164,
                     scope_of(request), hotline_id)  # fmt: skip
    if found.contacts or found.written_cases:
        await audit(request, "read_citizen", f"caller {history.e164}",
                    detail=f"{len(found.contacts)} contacts, "
                           f"{len(found.written_cases)} written cases")  # fmt: skip
    return {"citizen": found, "channel_label": channel_label, "contact_labels": CONTACT_LABELS}


# --- one case's thread and attachments ---------------------------------------------

# What a browser may show inline: images are re-encoded by the intake (nothing
# of the sender's file is left), videos play in a <video> element. Anything
# else (a PDF) is only ever downloaded.
INLINE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4", "video/webm",
     "video/quicktime", "video/3gpp"}
)  # fmt: skip


def message_json(message: Any, attachments: list[CaseAttachment]) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel,
        "purpose": message.purpose,
        "subject": message.subject,
        "text": message.text,
        "at": iso(message.at),
        "to": message.to,
        "status": message.status,
        "attempts": message.attempts,
        "error": message.error,
        "sent_at": iso(message.sent_at),
        "attachments": [attachment_json(a) for a in attachments],
    }


def attachment_json(attachment: CaseAttachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "media_type": attachment.media_type,
        "filename": attachment.filename,
        "size": attachment.size,
        "erased": attachment.erased_at is not None,
    }


async def case_thread(request: web.Request, case: Case) -> dict[str, Any]:
    """The case page's thread and attachments (the template _thread.html);
    reading them is part of reading the case (audited by the case page)."""
    state = state_of(request)
    thread = await db(written_store.case_thread, state.sessions, case)
    return {"thread": thread, "channel_label": channel_label, "contact_labels": CONTACT_LABELS,
            "delivery_labels": DELIVERY_LABELS,
            "written_case": case.channel in WRITTEN_CHANNELS}  # fmt: skip


async def thread_api(request: web.Request) -> web.Response:
    """The thread as JSON (messages with their delivery status, attachments)."""
    state = state_of(request)
    case = await visible_case(request, "read_case_refused")
    if isinstance(case, web.Response):
        return case
    code = case.code
    thread = await db(written_store.case_thread, state.sessions, case)
    await audit(request, "read_thread", f"case {code}")
    return web.json_response(
        {
            "code": case.code,
            "channel": case.channel,
            "contacts": [{"kind": c.kind, "value": c.value} for c in thread.contacts],
            "messages": [message_json(m, thread.by_message.get(m.id, [])) for m in thread.messages],
            "attachments": [attachment_json(a) for a in thread.attachments],
        }
    )


def _inside(root: Path, relative: str | None) -> Path | None:
    """The stored file under ``root`` (the attachments folder beside the
    recordings, where the intake writes them), or None when it is missing or the
    recorded path would lead outside (a row is never trusted with a path)."""
    if not relative:
        return None
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


async def attachment_file(request: web.Request) -> web.StreamResponse:
    """One attachment of one case, by ids (never a path from the request), to
    whoever may read the case: the hotline's staff in their scope, a unit's
    clerk when the case was forwarded to their unit. ``?thumb=1``: the image's
    thumbnail. Refusals are 403 and audited; an id not of this case is 404."""
    state = state_of(request)
    code = request.match_info["code"][:16]
    scope = scope_of(request)
    if not await db(store.case_visible, state.sessions, scope, code):
        return await refuse(request, "attachment_refused", f"case {code}")
    try:
        attachment_id = int(request.match_info["attachment_id"])
    except ValueError:
        return error_page(request, 404, "Not found")
    found = await db(written_store.case_attachment, state.sessions, code, attachment_id)
    if found is None:
        return error_page(request, 404, "Not found")
    thumb = request.query.get("thumb") == "1"
    root = attachments_root(state.recordings_root).resolve()
    path = _inside(root, found.thumbnail_path if thumb else found.path)
    if path is None:
        if found.thumbnail_path if thumb else found.path:
            logger.warning("attachment %s of case %s: file missing or outside %s",
                           found.id, code, root)  # fmt: skip
        return error_page(request, 404, "Not found")
    download = request.query.get("download") == "1"
    await audit(request, "download" if download else "view", f"attachment {found.id}",
                detail=f"case {code} {found.kind}{' thumbnail' if thumb else ''}")  # fmt: skip
    media_type = "image/jpeg" if thumb else found.media_type
    inline = (thumb or media_type in INLINE_TYPES) and not download
    # The citizen's file name is display text only; the header gets a plain one.
    suffix = {"image": ".jpg", "video": ".mp4", "pdf": ".pdf"}.get(found.kind, "")
    name = f"case-{code}-attachment-{found.id}{suffix}"
    return web.FileResponse(
        path,
        headers={
            "Cache-Control": "no-store",
            "Content-Type": media_type if inline else "application/octet-stream",
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
            # Even shown inline, a file from outside runs nothing.
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; "
            "sandbox",
        },
    )


# --- a reply to the citizen ---------------------------------------------------------


async def post_reply(request: web.Request) -> web.StreamResponse:
    """An agent's reply from the case page: queued as an outbound message of
    the case's thread on the case's channel (the reply dispatcher delivers it
    and records the outcome, shown in the thread). Audited."""
    state = state_of(request)
    user = user_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "reply_refused", f"case {code}")
    form = await form_or_json(request)
    try:
        message = await db(written_store.queue_reply, state.sessions, code,
                           form.get("text", ""), user.username, utc_now())  # fmt: skip
    except written_store.ReplyRefused as exc:
        if wants_json(request):
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return error_page(request, 400, "Bad request", str(exc))
    intake = request.app.get(INTAKE)
    wake = getattr(intake, "on_outbound", None)
    if wake is not None:
        wake()  # the dispatcher sends at once instead of at its next round
    await audit(request, "reply", f"case {code}",
                detail=f"message {message.id} by {message.channel}")  # fmt: skip
    return done(request, f"/cases/{code}#thread", code=code, message_id=message.id,
                channel=message.channel, status=message.status)  # fmt: skip


ROUTES = [
    Route("GET", "/written", written_page, STAFF, "written_work"),
    Route("GET", "/api/v1/written-work", written_page, STAFF, "written_work_api"),
    Route("GET", "/api/v1/written-work/counts", written_counts_api, STAFF,
          "written_counts_api"),
    Route("GET", "/api/v1/cases/{code}/thread", thread_api, STAFF, "case_thread_api"),
    Route("POST", "/cases/{code}/replies", post_reply, STAFF, "case_reply"),
    Route("POST", "/api/v1/cases/{code}/replies", post_reply, STAFF, "case_reply_api"),
    Route("GET", "/cases/{code}/attachments/{attachment_id}", attachment_file, FORWARD_READERS,
          "case_attachment"),
]  # fmt: skip
