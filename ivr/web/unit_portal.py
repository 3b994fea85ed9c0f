"""The units' portal (issue 13): the pages a clerk of a responsible unit works
in, and the supervisor's forms and wallboard list that go with them.

A unit user's home is the list of the cases forwarded to their unit (status,
deadline with the days left, overdue ones marked, the date it arrived; filters
by status); a case's page shows what the hotline chose to share — the
summary, and the transcript and the recording only when the forward grants
them — with the forms to mark it received or in progress, answer it (text and
files), ask for more time, or return it as not the unit's. Every check is the
JSON API's (:mod:`ivr.web.forwarding`): a forward of another unit is a 403,
audited. The supervisor grants or refuses an extension from the case page,
and the wallboard lists the overdue forwards of their hotline.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from ivr.cases.forwarding import (
    MAX_ATTACHMENT_BYTES,
    TRANSITIONS,
    ForwardError,
    ForwardNotFound,
)
from ivr.contracts.statuses import OPEN_FORWARD_STATUSES, ForwardStatus
from ivr.web.forwarding import (
    FORWARDING,
    _forward_in_scope,
    decide_extension,
    unit_action,
)
from ivr.web.portal_store import (
    PortalRow,
    escalated_forwards,
    forward_attachments,
    shared_recordings,
    unit_rows,
)
from ivr.web.rendering import error_page, refuse, render
from ivr.web.state import (
    FORWARD_ACTORS,
    FORWARD_READERS,
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

# The list's filters: a status, or every forward still owing an answer, or
# those past their deadline.
FILTERS = ("open", "overdue", *(s.value for s in ForwardStatus))


def _today(request: web.Request) -> date:
    return datetime.now(state_of(request).zone).date()


# --- the unit's pages -------------------------------------------------------------


async def portal_home(request: web.Request) -> web.StreamResponse:
    """A unit user's home: the cases forwarded to their unit."""
    scope = scope_of(request)
    status = request.query.get("status", "")
    if status not in FILTERS:
        status = ""
    rows: list[PortalRow] = []
    if scope.unit_code is not None:
        rows = await db(unit_rows, state_of(request).sessions, scope.unit_code,
                        _today(request), status)  # fmt: skip
        await audit(request, "list_forwards", f"unit {scope.unit_code}",
                    detail=f"{len(rows)} rows")  # fmt: skip
    unit = state_of(request).config.unit(scope.unit_code) if scope.unit_code else None
    return render(request, "unit_forwards.html", rows=rows, chosen=status, filters=FILTERS,
                  unit=unit)  # fmt: skip


async def forward_page(request: web.Request) -> web.StreamResponse:
    """One forwarded case as the unit sees it, with its forms."""
    forward, refused = await _forward_in_scope(request, "read_forward_refused")
    if forward is None:
        assert refused is not None
        return refused
    state = state_of(request)
    case = await db(request.app[FORWARDING].case_for_unit, forward)
    if case is None:
        return error_page(request, 404, "Not found")
    recordings = await db(shared_recordings, state.sessions, forward)
    attachments = await db(forward_attachments, state.sessions, forward.id)
    await audit(request, "read_forward", f"forward {forward.id}")
    if case["transcript"]:
        await audit(request, "read_transcript", f"case {case['code']}")
    unit = state.config.unit(forward.unit_code)
    allowed = {s.value for s in TRANSITIONS[ForwardStatus(forward.status)]}
    return render(
        request, "unit_forward.html", forward=forward, case=case, recordings=recordings,
        attachments=attachments, unit=unit, allowed=allowed,
        topic_names={t.code: t.name for t in state.config.cases.topics},
        days_left=(forward.due_date - _today(request)).days,
        is_open=forward.status in OPEN_FORWARD_STATUSES,
    )  # fmt: skip


async def portal_action(request: web.Request) -> web.StreamResponse:
    """The forms received, in_progress, extension and return: the API's
    action, then back to the case's page."""
    answer = await unit_action(request)
    if answer.status != 200:
        return answer  # the error page (or the audited 403) the API made
    raise web.HTTPSeeOther(f"/forwards/{request.match_info['forward_id']}")


async def portal_answer(request: web.Request) -> web.StreamResponse:
    """The answer form: the text and any files (multipart fields ``file``),
    stored as the forward's attachments and sent with the answer."""
    forward, refused = await _forward_in_scope(request, "forward_action_refused")
    if forward is None:
        assert refused is not None
        return refused
    # The CSRF check already read the form (aiohttp caches it).
    form = await request.post()
    service = request.app[FORWARDING]
    actor = user_of(request).username
    unit = scope_of(request).unit_code
    ids: list[int] = []
    try:
        for part in form.getall("file", []):
            if isinstance(part, web.FileField) and part.filename:
                content = part.file.read()
                if not content:
                    continue  # the browser sends an empty part when no file is chosen
                # A name sent as RFC 5987 ``filename*=utf-8''…`` arrives
                # percent-encoded; the unit should see the name it chose.
                name = unquote(part.filename)
                attachment = await db(service.store_attachment, forward.id, name, content,
                                      part.content_type, actor, unit)  # fmt: skip
                ids.append(attachment.id)
                await audit(request, "attachment_upload", f"forward {forward.id}",
                            detail=f"attachment {attachment.id}")  # fmt: skip
        await db(service.answer, forward.id, str(form.get("answer", ""))[:4000], actor, unit,
                 ids)  # fmt: skip
    except ForwardNotFound:
        return error_page(request, 404, "Not found")
    except ForwardError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    await audit(request, "forward_answer", f"forward {forward.id}")
    raise web.HTTPSeeOther(f"/forwards/{forward.id}")


async def shared_recording(request: web.Request) -> web.StreamResponse:
    """A recording of a forwarded case, to the unit the forward shares it with
    (and the hotline's staff): by id, inside the recordings folder, audited."""
    forward, refused = await _forward_in_scope(request, "listen_refused")
    if forward is None:
        assert refused is not None
        return refused
    state = state_of(request)
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError:
        return error_page(request, 404, "Not found")
    shared = await db(shared_recordings, state.sessions, forward)
    found = next((r for r in shared if r.id == recording_id), None)
    if found is None:
        # Not shared with this forward, or not the case's: the same refusal.
        return await refuse(request, "listen_refused", f"recording {recording_id}")
    path = Path(found.path).resolve()
    if not path.is_relative_to(state.recordings_root) or not path.is_file():
        logger.warning("recording %s points outside %s: %s", found.id, state.recordings_root, path)
        return error_page(request, 404, "Not found")
    await audit(request, "listen", f"recording {found.id}", detail=f"forward {forward.id}")
    response = web.FileResponse(path, headers={"Cache-Control": "no-store"})
    response.content_type = "audio/wav"
    return response


# --- the hotline's side -----------------------------------------------------------


async def extension_form(request: web.Request) -> web.StreamResponse:
    """Grant or refuse an extension from the case page, then back to it."""
    answer = await decide_extension(request)
    if answer.status != 200:
        return answer
    code = await db(request.app[FORWARDING].case_code_of, int(request.match_info["forward_id"]))
    raise web.HTTPSeeOther(f"/cases/{code}#forwards")


async def overdue_forwards(request: web.Request) -> web.StreamResponse:
    """The wallboard's list of escalated forwards, the user's hotlines only."""
    rows = await db(escalated_forwards, state_of(request).sessions, scope_of(request))
    names = {unit.code: unit.name for unit in state_of(request).config.units}
    return web.json_response(
        [{**row, "unit_name": names.get(row["unit_code"], row["unit_code"])} for row in rows]
    )


ROUTES = [
    Route("GET", "/forwards", portal_home, UNITS, "unit_home"),
    Route("GET", r"/forwards/{forward_id:\d+}", forward_page, FORWARD_READERS, "unit_forward"),
    Route("GET", r"/forwards/{forward_id:\d+}/recordings/{recording_id:\d+}", shared_recording,
          FORWARD_READERS, "unit_recording"),
    Route("POST", r"/forwards/{forward_id:\d+}/extension/{decision}", extension_form, WATCHERS,
          "extension_form"),
    Route("POST", r"/forwards/{forward_id:\d+}/answer", portal_answer, FORWARD_ACTORS,
          "unit_answer"),
    Route("POST", r"/forwards/{forward_id:\d+}/{action:received|in_progress|extension|return}",
          portal_action, FORWARD_ACTORS, "unit_action"),
    Route("GET", "/api/v1/wallboard/overdue-forwards", overdue_forwards, WATCHERS,
          "overdue_forwards_api"),
]  # fmt: skip

# The answer form carries up to three files of the largest size a forward's
# attachment may have (the API takes one file per request, streamed).
ANSWER_FORM_FILES = 3
BODY_LIMITS = {"unit_answer": ANSWER_FORM_FILES * MAX_ATTACHMENT_BYTES + 2**20}
