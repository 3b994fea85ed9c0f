"""Cases: the searchable list (page, JSON, CSV and XLSX from one query), one
case with its history, recordings and transcript, opening a case from a call,
its workflow and summary, and the legal hold. Changes go through the case
service; every read is scoped and audited."""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.cases.models import STATUSES
from ivr.cases.service import SEVERITIES, TRANSITIONS, CaseError, CaseNotFound
from ivr.config.schema import iter_areas
from ivr.contracts.channels import Channel
from ivr.phone import normalise_caller
from ivr.transcription.recognizer import turns_from_json
from ivr.web import store
from ivr.web.exports import export, is_export
from ivr.web.forwarding import case_forwarding
from ivr.web.payloads import case_json
from ivr.web.reads import may_read_call, visible_case
from ivr.web.rendering import done, error_page, form_or_json, refuse, render, wants_json
from ivr.web.state import STAFF, WATCHERS, Route, audit, db, scope_of, state_of, user_of
from ivr.web.written_work import case_thread

logger = logging.getLogger(__name__)


async def cases_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    filters = store.Filters.parse(request.query)
    cases = await db(store.search_cases, state.sessions, filters, state.zone,
                     scope=scope_of(request))  # fmt: skip
    if is_export(request):
        return await export(request, "cases", [case_json(c) for c in cases])
    await audit(request, "list_cases", request.path,
                detail=f"{len(cases)} rows; {request.query_string}"[:500])  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response([case_json(c) for c in cases])
    return render(
        request, "cases.html", cases=cases, filters=filters, zone=state.zone,
        areas=iter_areas(state.config.areas), topics=state.config.cases.topics,
        statuses=STATUSES, agents=scope_of(request).agents(state.config),
    )  # fmt: skip


async def case_page(request: web.Request) -> web.Response:
    state = state_of(request)
    case = await visible_case(request, "read_case_refused")
    if isinstance(case, web.Response):
        return case
    code = case.code
    await audit(request, "read_case", f"case {code}")
    if request.path.startswith("/api/"):
        if case.transcript:
            await audit(request, "read_transcript", f"case {code}")
        return web.json_response(case_json(case, history=True))
    recordings = await db(store.recordings_of_case, state.sessions, case)
    transcript = await db(store.transcript_of_case, state.sessions, case)
    if case.transcript or transcript is not None:
        await audit(request, "read_transcript", f"case {code}")
    forwarding = await case_forwarding(request, case)  # the forwards and their forms
    thread = await case_thread(request, case)  # the written channels' messages and files
    return render(
        request, "case.html", case=case, zone=state.zone, recordings=recordings, **forwarding,
        **thread,
        next_statuses=sorted(TRANSITIONS[case.status]), topics=state.config.cases.topics,
        units=state.config.departments, severities=SEVERITIES,
        turns=turns_from_json(transcript.dialogue) if transcript else [],
        transcript_text=case.transcript or (transcript.text if transcript else ""),
    )  # fmt: skip


async def open_case(request: web.Request) -> web.StreamResponse:
    """Open a case (agent's screen-pop form, or the API)."""
    state = state_of(request)
    user = user_of(request)
    form = await form_or_json(request)
    caller = normalise_caller(form.get("caller_number", ""))
    scope = scope_of(request)
    # The case's hotline: the call's when linked (below), else the user's
    # (a hotline's supervisor or agent), else the one named in the form, else
    # the only one; never a guess among several.
    sole = state.config.sole_hotline()
    hotline = scope.hotline_id or form.get("hotline_id") or (sole.id if sole else None)
    uniqueid = form.get("call_uniqueid", "").strip()[:64] or None
    # Linking a case to a call shows the call's recordings and transcript on
    # the case page: an agent may link only a call it is serving or handled.
    if uniqueid and not await may_read_call(request, scope_of(request), uniqueid):
        return await refuse(request, "open_case_refused", f"call {uniqueid}")
    if uniqueid:
        detail = await db(store.call_detail, state.sessions, uniqueid)
        if detail is not None:
            hotline = detail.call.hotline_id
    if hotline is None or state.config.hotline(hotline) is None:
        message = "Which hotline is this case for? This deployment has several: give hotline_id."
        return (
            web.json_response({"ok": False, "error": message}, status=400)
            if wants_json(request)
            else error_page(request, 400, "Bad request", message)
        )
    if not scope.sees_hotline(hotline):
        return await refuse(request, "open_case_refused", f"hotline {hotline}")
    topic = form.get("topic") or None
    area = form.get("area_code") or None
    if area is not None and state.config.area(area) is None:
        area = None
    # A case recorded by hand came by phone unless the form says how (a letter
    # retyped from an email, a text read out at the desk); one of the channels.
    # Never Open311 by hand: the Open311 API lists its cases publicly (the
    # app's user was told so, a citizen who phoned or wrote was not).
    by_hand = [c for c in Channel if c is not Channel.OPEN311]
    try:
        channel = Channel(form.get("channel") or Channel.PHONE)
        if channel not in by_hand:
            raise ValueError(channel)
    except ValueError:
        message = f"unknown channel; use one of {', '.join(by_hand)}"
        return (
            web.json_response({"ok": False, "error": message}, status=400)
            if wants_json(request)
            else error_page(request, 400, "Bad request", message)
        )
    try:
        case = await db(
            state.cases.open_case,
            channel=channel.value,
            hotline_id=hotline,
            caller_number=caller.e164,
            caller_name=form.get("caller_name", "").strip()[:128],
            area_code=area,
            topic=topic,
            summary=form.get("summary", "").strip()[:4000],
            call_uniqueid=uniqueid,
            actor=user.username,
            severity=form.get("severity") or "normal",
        )
    except CaseError as exc:
        return (
            web.json_response({"ok": False, "error": str(exc)}, status=400)
            if wants_json(request)
            else error_page(request, 400, "Bad request", str(exc))
        )
    if wants_json(request):
        return web.json_response({"ok": True, "code": case.code, "case": case_json(case)})
    raise web.HTTPSeeOther(f"/cases/{case.code}")


async def update_case(request: web.Request) -> web.StreamResponse:
    """Status workflow, classification, assignment and the written summary."""
    state = state_of(request)
    user = user_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "update_case_refused", f"case {code}")
    form = await form_or_json(request)
    try:
        if form.get("topic"):
            await db(state.cases.classify, code, topic=form["topic"],
                     severity=form.get("severity") or "normal", actor=user.username)  # fmt: skip
        if form.get("unit"):
            await db(state.cases.assign, code, form["unit"][:64], user.username)
        if form.get("status"):
            await db(state.cases.change_status, code, form["status"], user.username,
                     form.get("note", "")[:4000])  # fmt: skip
        if "summary" in form:
            await db(state.cases.set_summary, code, form["summary"][:4000], user.username)
    except CaseError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    return done(request, f"/cases/{code}", code=code)


async def case_hold(request: web.Request) -> web.StreamResponse:
    """Supervisors and admins put a case under legal hold (a reason is
    required) or release it; retention then spares everything linked to it.
    Audited, and a case history event."""
    state = state_of(request)
    user = user_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "legal_hold_refused", f"case {code}")
    form = await form_or_json(request)
    hold = str(form.get("hold", "")).lower() in ("1", "true", "on", "yes")
    reason = str(form.get("reason", "")).strip()[:1000]
    try:
        await db(state.cases.set_legal_hold, code, hold=hold, reason=reason, actor=user.username)
    except CaseNotFound:
        return error_page(request, 404, "Not found")
    except CaseError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    await audit(request, "legal_hold" if hold else "legal_hold_released", f"case {code}",
                detail=reason)  # fmt: skip
    return done(request, f"/cases/{code}", code=code, legal_hold=hold)


ROUTES = [
    Route("GET", "/cases", cases_page, STAFF, "cases"),
    Route("GET", "/api/v1/cases", cases_page, STAFF, "cases_api"),
    Route("GET", "/cases.csv", cases_page, WATCHERS, "cases_csv"),
    Route("GET", "/cases.xlsx", cases_page, WATCHERS, "cases_xlsx"),
    Route("POST", "/cases", open_case, STAFF, "open_case"),
    Route("POST", "/api/v1/cases", open_case, STAFF, "open_case_api"),
    Route("GET", "/cases/{code}", case_page, STAFF, "case"),
    Route("GET", "/api/v1/cases/{code}", case_page, STAFF, "case_api"),
    Route("POST", "/cases/{code}", update_case, STAFF, "update_case"),
    Route("POST", "/api/v1/cases/{code}", update_case, STAFF, "update_case_api"),
    Route("POST", "/cases/{code}/hold", case_hold, WATCHERS, "case_hold"),
    Route("POST", "/api/v1/cases/{code}/hold", case_hold, WATCHERS, "case_hold_api"),
]
