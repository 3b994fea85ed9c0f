"""Calls: the searchable list (page, JSON, CSV and XLSX from one query), one
call with its recordings and transcript, a caller's history, listening to a
recording, and the transcription jobs. Every read is scoped and audited."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from ivr.config.schema import iter_areas
from ivr.transcription.recognizer import turns_from_json
from ivr.web import store
from ivr.web.exports import export, is_export
from ivr.web.models import AGENT
from ivr.web.payloads import call_json, case_json, iso
from ivr.web.reads import may_read_call, readable_history, serving
from ivr.web.rendering import error_page, refuse, refused, render
from ivr.web.state import STAFF, WATCHERS, Route, audit, db, scope_of, state_of, user_of

logger = logging.getLogger(__name__)


async def calls_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    filters = store.Filters.parse(request.query)
    calls = await db(store.search_calls, state.sessions, filters, state.zone,
                     scope=scope_of(request))  # fmt: skip
    if is_export(request):
        return await export(request, "calls", [call_json(c) for c in calls])
    await audit(request, "list_calls", request.path,
                detail=f"{len(calls)} rows; {request.query_string}"[:500])  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response([call_json(c) for c in calls])
    return render(
        request, "calls.html", calls=calls, filters=filters, zone=state.zone,
        areas=iter_areas(state.config.areas), agents=scope_of(request).agents(state.config),
    )  # fmt: skip


async def call_page(request: web.Request) -> web.Response:
    state = state_of(request)
    uniqueid = request.match_info["uniqueid"][:64]
    # Scope before existence: an agent learns nothing about others' call ids.
    if not await may_read_call(request, scope_of(request), uniqueid):
        return await refuse(request, "read_call_refused", f"call {uniqueid}")
    detail = await db(store.call_detail, state.sessions, uniqueid)
    if detail is None:
        return error_page(request, 404, "Not found")
    await audit(request, "read_call", f"call {uniqueid}",
                detail=f"{len(detail.recordings)} recordings")  # fmt: skip
    if detail.transcript is not None:
        await audit(request, "read_transcript", f"call {uniqueid}")
    if request.path.startswith("/api/"):
        return web.json_response(
            {
                **call_json(detail.call),
                "recordings": [{"id": r.id, "kind": r.kind, "url": f"/recordings/{r.id}"}
                               for r in detail.recordings],
                "transcript": detail.transcript.text if detail.transcript else "",
                "cases": [c.code for c in detail.cases],
                "agent_id": detail.queue_call.agent_id if detail.queue_call else None,
            }
        )  # fmt: skip
    transcript = detail.transcript
    return render(
        request, "call.html", detail=detail, zone=state.zone,
        turns=turns_from_json(transcript.dialogue) if transcript else [],
        transcript_text=transcript.text if transcript else "",
    )  # fmt: skip


async def caller_api(request: web.Request) -> web.Response:
    """A caller's earlier calls and open cases; what the user may not read
    shows only that it exists, with the number masked."""
    scope = scope_of(request)
    history = await readable_history(
        request, request.match_info["number"][:64], request.query.get("uniqueid", "")[:64]
    )
    if history is None:
        return refused(request)
    return web.json_response(
        {
            "number": history.number,
            "e164": history.e164,
            "earlier_calls": [
                call_json(c) if c.uniqueid in history.readable_calls
                else {**call_json(c), "caller_number": scope.number(c.caller_number, own=False),
                      "readable": False}
                for c in history.earlier_calls
            ],
            "open_cases": [
                case_json(c) if c.code in history.readable_cases
                else {"code": c.code, "status": c.status, "topic": c.topic,
                      "received_at": iso(c.received_at),
                      "caller_number": scope.number(c.caller_number, own=False),
                      "readable": False}
                for c in history.open_cases
            ],
        }
    )  # fmt: skip


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """Serve one recording by its id, never by a path from the request; the
    file must lie inside the recordings folder. Every listen and download is
    audited; agents hear only the calls they answered (unless allowed)."""
    state = state_of(request)
    user = user_of(request)
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError:
        return error_page(request, 404, "Not found")
    found = await db(store.recording, state.sessions, recording_id)
    if found is None:
        return error_page(request, 404, "Not found")
    scope = scope_of(request)
    # ``agents_hear_all_recordings`` widens an agent's ears, never a
    # supervisor's hotline.
    agent_hears_all = user.role == AGENT and state.config.web.agents_hear_all_recordings
    if not scope.sees_everything and not agent_hears_all:
        allowed = serving(request, scope, found.call_uniqueid) or await db(
            store.recording_visible, state.sessions, scope, found
        )
        if not allowed:
            return await refuse(request, "listen_refused", f"recording {found.id}")
    path = Path(found.path).resolve()
    if not path.is_relative_to(state.recordings_root) or not path.is_file():
        logger.warning("recording %s points outside %s: %s", found.id, state.recordings_root, path)
        return error_page(request, 404, "Not found")
    download = request.query.get("download") == "1"
    await audit(request, "download" if download else "listen", f"recording {found.id}",
                detail=f"call {found.call_uniqueid} {found.kind}")  # fmt: skip
    response = web.FileResponse(path, headers={"Cache-Control": "no-store"})
    response.content_type = "audio/wav"
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response


async def jobs_page(request: web.Request) -> web.StreamResponse:
    """Transcription jobs for supervisors: a failed one shows its reason."""
    jobs = await db(store.transcription_jobs, state_of(request).sessions,
                    scope=scope_of(request))  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response(
            [{"call": j.call_uniqueid, "status": j.status, "attempts": j.attempts,
              "error": j.error, "created": iso(j.created_at), "worker": j.worker}
             for j in jobs]
        )  # fmt: skip
    return render(request, "jobs.html", jobs=jobs)


ROUTES = [
    Route("GET", "/calls", calls_page, STAFF, "calls"),
    Route("GET", "/api/v1/calls", calls_page, STAFF, "calls_api"),
    Route("GET", "/calls.csv", calls_page, WATCHERS, "calls_csv"),
    Route("GET", "/calls.xlsx", calls_page, WATCHERS, "calls_xlsx"),
    Route("GET", "/calls/{uniqueid}", call_page, STAFF, "call"),
    Route("GET", "/api/v1/calls/{uniqueid}", call_page, STAFF, "call_api"),
    Route("GET", "/api/v1/callers/{number}", caller_api, STAFF, "caller_api"),
    Route("GET", "/recordings/{recording_id}", recording_audio, STAFF, "recording"),
    Route("GET", "/jobs", jobs_page, WATCHERS, "jobs"),
    Route("GET", "/api/v1/jobs", jobs_page, WATCHERS, "jobs_api"),
]
