"""The office's everyday settings for clerks: departments and their
extensions, office hours (schedules: days, spans, the lunch break between
them, holidays) and the complaints message's referral text.

Each form builds the new config text from the current one with
:mod:`ivr.config.yaml_edit` and hands it to
:func:`ivr.web.config_changes.preview_change` (checked as ``check-config``
checks, shown as a difference, applied live, audited, reversible).

Who may change what is what the change pipeline accepts (``path_owner`` in
ivr/web/config_changes.py): administrators everything; a supervisor tied to a
hotline its own referral text, and the departments and office hours of a
single-hotline deployment (in a file with several hotlines they are shared and
stay with the administrators). Pages show only what the user may change; the
rest is refused (403, audited).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ivr.config import yaml_edit
from ivr.config.schema import WEEKDAYS, HotlineConfig, Schedule
from ivr.config.yaml_lines import FieldPath
from ivr.knowledge.folding import fold
from ivr.prompt_setup import CATALOG
from ivr.prompts import load_catalog
from ivr.web.admin_wards import (
    applied_notice,
    describe,
    form_destination,
    form_rows,
    may_edit,
    preview_change,
)
from ivr.web.i18n import translator
from ivr.web.models import ADMIN, SUPERVISOR
from ivr.web.rendering import error_page, form_or_json, refuse, render
from ivr.web.state import LANGUAGE, WATCHERS, Route, scope_of, state_of

logger = logging.getLogger(__name__)

REFERRAL_PROMPT = "out_of_scope"  # key 8: where complaints and denunciations go
REFERRAL_MAX = 1000  # characters: a spoken message of about a minute
DEPARTMENT_KINDS = ("phone", "tel", "queue")
SPAN_ROWS = 2  # morning and afternoon; a day written with more shows them all


def _language(request: web.Request) -> str:
    return request.get(LANGUAGE, "vi")


async def _current_text(request: web.Request) -> str | web.Response:
    applier = state_of(request).applier
    if applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    return await asyncio.to_thread(applier.current_text)


# --- departments ---------------------------------------------------------------------


def department_code(name: str, taken: Iterable[str]) -> str:
    """A code for a new department from its name ("Phòng Y tế" → ``phong-y-te``),
    made unique; the clerk never types one."""
    base = "-".join(fold(name).split())[:56].strip("-") or "phong-ban"
    used = set(taken)
    code, n = base, 2
    while code in used:
        code, n = f"{base}-{n}", n + 1
    return code


def _department_index(config: HotlineConfig, code: str) -> int | None:
    return next((i for i, d in enumerate(config.departments) if d.code == code), None)


async def departments_page(request: web.Request) -> web.StreamResponse:
    config, scope = state_of(request).config, scope_of(request)
    language = _language(request)
    rows = [
        {"department": d, "target": form_rows(d.target),
         "words": describe(d.target, config, language)}
        for index, d in enumerate(config.departments)
        if may_edit(scope, config, ("departments", index))
    ]  # fmt: skip
    return render(
        request,
        "admin_departments.html",
        rows=rows,
        notice=applied_notice(request),
        kinds=DEPARTMENT_KINDS,
        default_trunk=config.trunks[0].id if config.trunks else "",
        may_add=may_edit(scope, config, ("departments",)),
    )


def _target(form: dict[str, str]) -> str | None:
    kind = form.get("target_kind", "")
    if kind not in DEPARTMENT_KINDS:
        return None
    return form_destination(kind, form.get("target_value", ""), form.get("target_trunk", ""))


async def change_department(request: web.Request) -> web.StreamResponse:
    """A department's name, extension or phone, or its removal."""
    state = state_of(request)
    config = state.config
    code = request.match_info["code"]
    index = _department_index(config, code)
    if index is None:
        return error_page(request, 404, "Not found")
    if not may_edit(scope_of(request), config, ("departments", index)):
        return await refuse(request, "department_refused", f"department:{code}")
    text = await _current_text(request)
    if isinstance(text, web.Response):
        return text
    form = await form_or_json(request)
    _ = translator(_language(request))
    department = config.departments[index]
    path: FieldPath = ("departments", index)
    try:
        if form.get("remove") == "1":
            new_text = yaml_edit.remove_item(text, path)
            summary = _("Department removed: {name} (extension {extension})",
                        name=department.name, extension=department.extension)  # fmt: skip
        else:
            new_text = text
            name = form.get("name", department.name).strip()
            extension = form.get("extension", department.extension).strip()
            target = _target(form) or ""
            if name != department.name:
                new_text = yaml_edit.set_value(new_text, (*path, "name"), name)
            if extension != department.extension:
                new_text = yaml_edit.set_value(new_text, (*path, "extension"), extension)
            if target != str(department.target):
                new_text = yaml_edit.set_value(new_text, (*path, "target"), target)
            summary = _("Department {name}: extension {extension}", name=name,
                        extension=extension)  # fmt: skip
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    return await preview_change(
        request, new_text=new_text, summary=summary, back="/admin/departments"
    )


async def add_department(request: web.Request) -> web.StreamResponse:
    """A new department, with a code made from its name."""
    state = state_of(request)
    if not may_edit(scope_of(request), state.config, ("departments",)):
        return await refuse(request, "department_refused", "department:new")
    text = await _current_text(request)
    if isinstance(text, web.Response):
        return text
    form = await form_or_json(request)
    _ = translator(_language(request))
    name = form.get("name", "").strip()
    extension = form.get("extension", "").strip()
    item = {
        "code": department_code(name, (d.code for d in state.config.departments)),
        "name": name,
        "extension": extension,
        "target": _target(form) or "",
    }
    try:
        new_text = yaml_edit.append_item(text, ("departments",), item)
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    summary = _("New department: {name} (extension {extension})", name=name, extension=extension)
    return await preview_change(
        request, new_text=new_text, summary=summary, back="/admin/departments"
    )


# --- office hours --------------------------------------------------------------------


def _users_of(config: HotlineConfig, schedule_id: str) -> list[str]:
    used = [h.name for h in config.hotlines if h.schedule == schedule_id]
    return used + [q.title for q in config.queues if q.schedule == schedule_id]


def _span_rows(schedule: Schedule) -> dict[str, list[tuple[str, str]]]:
    rows: dict[str, list[tuple[str, str]]] = {}
    for index, day in enumerate(WEEKDAYS):
        spans = [(s.start.strftime("%H:%M"), s.end.strftime("%H:%M"))
                 for s in schedule.weekly.spans_on(index)]  # fmt: skip
        rows[day] = spans + [("", "")] * max(0, SPAN_ROWS - len(spans))
    return rows


async def schedules_page(request: web.Request) -> web.StreamResponse:
    config, scope = state_of(request).config, scope_of(request)
    rows = [
        {"id": sid, "schedule": s, "used_by": _users_of(config, sid)}
        for sid, s in config.schedules.items()
        if may_edit(scope, config, ("schedules", sid))
    ]
    return render(request, "admin_schedules.html", rows=rows, weekdays=WEEKDAYS)


async def _schedule_or_refusal(request: web.Request) -> tuple[str, Schedule] | web.Response:
    config = state_of(request).config
    schedule_id = request.match_info["schedule_id"]
    schedule = config.schedules.get(schedule_id)
    if schedule is None:
        return error_page(request, 404, "Not found")
    if not may_edit(scope_of(request), config, ("schedules", schedule_id)):
        return await refuse(request, "schedule_refused", f"schedule:{schedule_id}")
    return schedule_id, schedule


async def schedule_page(request: web.Request) -> web.StreamResponse:
    found = await _schedule_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    schedule_id, schedule = found
    return render(
        request,
        "admin_schedule.html",
        schedule_id=schedule_id,
        schedule=schedule,
        rows=_span_rows(schedule),
        weekdays=WEEKDAYS,
        used_by=_users_of(state_of(request).config, schedule_id),
        notice=applied_notice(request),
    )


def spans_from_form(form: dict[str, str], day: str) -> list[str]:
    """The day's spans as the config writes them ("08:00-12:00"); a row with
    one side only is kept half-written so check-config names it."""
    spans = []
    for index in range(8):
        start = form.get(f"{day}_{index}_start")
        end = form.get(f"{day}_{index}_end")
        if start is None and end is None:
            break
        start, end = (start or "").strip(), (end or "").strip()
        if start or end:
            spans.append(f"{start}-{end}")
    return spans


def with_schedule(text: str, schedule_id: str, schedule: Schedule, form: dict[str, str]) -> str:
    """The config text with the schedule's days and switches as the form has
    them; only what differs is written."""
    path: FieldPath = ("schedules", schedule_id)
    always = form.get("always") == "1"
    holidays = form.get("closed_on_holidays") == "1"
    if always != schedule.always:
        text = yaml_edit.set_value(text, (*path, "always"), always)
    if holidays != schedule.closed_on_holidays:
        text = yaml_edit.set_value(text, (*path, "closed_on_holidays"), holidays)
    written = yaml_edit.get_value(text, path) or {}
    weekly = written.get("weekly") if isinstance(written, dict) else None
    for index, day in enumerate(WEEKDAYS):
        new = spans_from_form(form, day)
        old = [f"{s.start.strftime('%H:%M')}-{s.end.strftime('%H:%M')}"
               for s in schedule.weekly.spans_on(index)]  # fmt: skip
        if new == old:
            continue
        if not new and not (isinstance(weekly, dict) and day in weekly):
            continue
        text = yaml_edit.set_value(text, (*path, "weekly", day), new)
    return text


async def change_schedule(request: web.Request) -> web.StreamResponse:
    found = await _schedule_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    schedule_id, schedule = found
    text = await _current_text(request)
    if isinstance(text, web.Response):
        return text
    form = await form_or_json(request)
    _ = translator(_language(request))
    try:
        new_text = with_schedule(text, schedule_id, schedule, form)
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    users = ", ".join(_users_of(state_of(request).config, schedule_id)) or schedule_id
    summary = _("Office hours of {users}", users=users)
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/schedules/{schedule_id}"
    )


# --- the complaints message's referral text ------------------------------------------


def _catalog_text(language: str) -> str:
    try:
        return load_catalog(CATALOG).text(REFERRAL_PROMPT, language)
    except Exception:  # a broken catalog shows an empty default, the form still works
        logger.exception("cannot read the prompt catalog's %s text", REFERRAL_PROMPT)
        return ""


async def _hotline_or_refusal(request: web.Request) -> tuple[int, Any] | web.Response:
    config = state_of(request).config
    hotline_id = request.match_info["hotline_id"]
    index = next((i for i, h in enumerate(config.hotlines) if h.id == hotline_id), None)
    if index is None:
        return error_page(request, 404, "Not found")
    scope = scope_of(request)
    if not (scope.role == ADMIN or (scope.role == SUPERVISOR and scope.hotline_id == hotline_id)):
        return await refuse(request, "referral_refused", f"hotline:{hotline_id}")
    return index, config.hotlines[index]


async def referral_page(request: web.Request) -> web.StreamResponse:
    found = await _hotline_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    _, hotline = found
    own = hotline.prompts.get(REFERRAL_PROMPT, {})
    texts = {}
    for language in ("vi", "en"):
        texts[language] = own.get(language) or await asyncio.to_thread(_catalog_text, language)
    return render(
        request,
        "admin_referral.html",
        hotline=hotline,
        texts=texts,
        own=sorted(own),
        limit=REFERRAL_MAX,
        notice=applied_notice(request),
    )


async def change_referral(request: web.Request) -> web.StreamResponse:
    """The hotline's own referral text (key 8), per language; a text equal to
    the shared one is not written, so later improvements of the catalog reach
    this hotline."""
    found = await _hotline_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    index, hotline = found
    text = await _current_text(request)
    if isinstance(text, web.Response):
        return text
    form = await form_or_json(request)
    _ = translator(_language(request))
    own = hotline.prompts.get(REFERRAL_PROMPT, {})
    new_text = text
    try:
        for language in ("vi", "en"):
            typed = " ".join(form.get(f"text_{language}", "").split())[: REFERRAL_MAX + 1]
            default = " ".join((await asyncio.to_thread(_catalog_text, language)).split())
            current = " ".join(own.get(language, "").split()) or default
            if typed == current or (not typed and language not in own):
                continue
            where = ("hotlines", index, "prompts", REFERRAL_PROMPT, language)
            if len(typed) > REFERRAL_MAX:
                return error_page(request, 400, "Bad request",
                                  _("The text is longer than {limit} characters.",
                                    limit=REFERRAL_MAX))  # fmt: skip
            new_text = yaml_edit.set_value(new_text, where, typed)
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    summary = _("Complaints message (key 8) of {hotline}", hotline=hotline.name)
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/hotlines/{hotline.id}/referral"
    )


ROUTES = [
    Route("GET", "/admin/departments", departments_page, WATCHERS, "departments"),
    Route("POST", "/admin/departments", add_department, WATCHERS, "department_add"),
    Route("POST", "/admin/departments/{code}", change_department, WATCHERS, "department_change"),
    Route("GET", "/admin/schedules", schedules_page, WATCHERS, "schedules"),
    Route("GET", "/admin/schedules/{schedule_id}", schedule_page, WATCHERS, "schedule"),
    Route("POST", "/admin/schedules/{schedule_id}", change_schedule, WATCHERS, "schedule_change"),
    Route("GET", "/admin/hotlines/{hotline_id}/referral", referral_page, WATCHERS, "referral"),
    Route("POST", "/admin/hotlines/{hotline_id}/referral", change_referral, WATCHERS,
          "referral_change"),
]  # fmt: skip
