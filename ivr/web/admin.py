"""Administration: users (add, enable, disable), the audit log (page, JSON,
CSV) and the config (tables, and the file in an editor when this process
owns it: checked, saved and applied)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.config.loader import ConfigError, ConfigProblem
from ivr.config.schema import iter_areas
from ivr.config_applier import AppliedConfig, ConfigApplier, StaleConfigError
from ivr.web import audit_store, config_changes, store
from ivr.web.exports import csv_file
from ivr.web.i18n import N_, translator
from ivr.web.payloads import iso
from ivr.web.rendering import done, error_page, form_or_json, is_api, render
from ivr.web.state import ADMINS, LANGUAGE, Route, audit, db, state_of

logger = logging.getLogger(__name__)

STALE_EDITOR = N_(
    "Someone else changed the configuration after you opened the editor, so your text was "
    "not saved; nothing was changed. Copy your changes, reload the page and make them again."
)


async def users_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    users = await db(state.users.all)
    if request.path.startswith("/api/"):
        return web.json_response(
            [{"id": u.id, "username": u.username, "role": u.role, "agent_id": u.agent_id,
              "hotline_id": u.hotline_id, "unit_code": u.unit_code,
              "active": u.active} for u in users]
        )  # fmt: skip
    return render(request, "admin_users.html", users=users, agents=state.config.agents,
                  error=request.query.get("error", ""))  # fmt: skip


async def add_user(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await form_or_json(request)
    agent_id = form.get("agent_id") or None
    if agent_id and agent_id not in {a.id for a in state.config.agents}:
        return error_page(request, 400, "Bad request", f"unknown agent {agent_id}")
    hotline_id = form.get("hotline_id") or None
    if hotline_id and state.config.hotline(hotline_id) is None:
        return error_page(request, 400, "Bad request", f"unknown hotline {hotline_id}")
    unit_code = form.get("unit_code") or None
    if unit_code and state.config.unit(unit_code) is None:
        return error_page(request, 400, "Bad request", f"unknown unit {unit_code}")
    try:
        user = await db(
            state.users.add, form.get("username", ""), form.get("password", ""),
            form.get("role", ""), agent_id=agent_id, display_name=form.get("display_name", ""),
            hotline_id=hotline_id, unit_code=unit_code,
        )  # fmt: skip
    except store.UserError as exc:
        if is_api(request):
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        raise web.HTTPSeeOther("/admin/users?" + urlencode({"error": str(exc)})) from None
    await audit(request, "user_add", user.username, detail=user.role)
    return done(request, "/admin/users", id=user.id)


async def user_active(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await form_or_json(request)
    active = form.get("active") == "1"
    try:
        user = await db(state.users.set_active, int(request.match_info["user_id"]), active)
    except (store.UserError, ValueError):
        return error_page(request, 404, "Not found")
    if not active:
        await db(state.web_sessions.close_all, user.id)
    await audit(request, "user_enable" if active else "user_disable", user.username)
    return done(request, "/admin/users")


async def audit_page(request: web.Request) -> web.StreamResponse:
    """The audit log with filters (actor, action, days); ``.csv`` exports it
    (audited like every export)."""
    state = state_of(request)
    filters = audit_store.AuditFilters.parse(request.query)
    export = request.path.endswith(".csv")
    entries = await db(
        audit_store.audit_entries, state.sessions,
        audit_store.AUDIT_EXPORT_ROWS if export else store.MAX_ROWS, filters, state.zone,
    )  # fmt: skip
    rows = [{"at": iso(e.at), "actor": e.actor, "action": e.action, "target": e.target,
             "detail": e.detail, "address": e.address} for e in entries]  # fmt: skip
    if export:
        return await csv_file(request, "audit", rows)
    if request.path.startswith("/api/"):
        return web.json_response(rows)
    actions = await db(audit_store.audit_actions, state.sessions)
    return render(request, "admin_audit.html", entries=entries, zone=state.zone,
                  filters=filters, actions=actions)  # fmt: skip


async def config_page(request: web.Request) -> web.Response:
    """The config as tables, and the file in an editor when this process owns it."""
    state = state_of(request)
    # Secrets are masked; applying the text keeps them (ivr/config/secret_mask.py).
    text = await asyncio.to_thread(state.applier.masked_text) if state.applier else ""
    # The version the editor starts from: saving over someone else's change is refused.
    base = await _base(state.applier)
    if request.path.startswith("/api/"):
        return web.json_response(
            {"source": str(state.config.source or ""), "text": text,
             "editable": state.applier is not None, "base": base}
        )  # fmt: skip
    return _config_view(request, text, base=base)


async def _base(applier: ConfigApplier | None) -> str:
    if applier is None:
        return ""
    return config_changes.text_hash(await asyncio.to_thread(applier.current_text))


def _config_view(
    request: web.Request, text: str, *, status: int = 200, problems: Any = (),
    applied: AppliedConfig | None = None, base: str = "",
) -> web.Response:  # fmt: skip
    state = state_of(request)
    return render(
        request, "admin_config.html", status=status, areas=iter_areas(state.config.areas),
        text=text, editable=state.applier is not None, problems=list(problems),
        applied=applied, base=base,
    )  # fmt: skip


async def config_apply(request: web.Request) -> web.StreamResponse:
    """Check, save and apply an edited config. An error names file, line and
    field, and the edited text comes back in the editor: nothing is lost."""
    state = state_of(request)
    if state.applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    form = await form_or_json(request)
    text = form.get("text", "").replace("\r\n", "\n")
    base = form.get("base") or None  # absent (older API clients): no check
    try:
        applied = await state.applier.apply_text(text, base_sha256=base)
    except StaleConfigError:
        await audit(request, "config_refused", str(state.config.source), detail="changed meanwhile")
        message = translator(request.get(LANGUAGE, "vi"))(STALE_EDITOR)
        if is_api(request):
            return web.json_response({"ok": False, "stale": True, "message": message}, status=409)
        stale = ConfigProblem(state.applier.source, None, "", message)
        return _config_view(request, text, status=409, problems=[stale], base=base or "")
    except ConfigError as exc:
        await audit(request, "config_refused", str(state.config.source), detail=str(exc)[:500])
        if is_api(request):
            return web.json_response(
                {"ok": False, "problems": [
                    {"file": str(p.file), "line": p.line, "field": p.field,
                     "message": p.message} for p in exc.problems]},
                status=422,
            )  # fmt: skip
        return _config_view(request, text, status=422, problems=exc.problems, base=base or "")
    await audit(request, "config_apply", str(state.config.source),
                detail=(f"backup {applied.backup}; {len(applied.prompts)} prompts built"
                        + "".join(f"; {w}" for w in applied.warnings))[:500])  # fmt: skip
    # In the change history too, so that an expert's edit can be undone in one step.
    await config_changes.journal_editor_change(request, applied)
    if is_api(request):
        return web.json_response(
            {"ok": True, "backup": str(applied.backup or ""),
             "rendered": [str(p) for p in applied.rendered], "reloaded": applied.reloaded,
             "prompts": [str(p) for p in applied.prompts],
             "restart_needed": applied.restart_needed, "warnings": applied.warnings}
        )  # fmt: skip
    return _config_view(request, await asyncio.to_thread(state.applier.masked_text),
                        applied=applied, base=await _base(state.applier))  # fmt: skip


ROUTES = [
    Route("GET", "/admin/users", users_page, ADMINS, "users"),
    Route("GET", "/api/v1/users", users_page, ADMINS, "users_api"),
    Route("POST", "/admin/users", add_user, ADMINS, "add_user"),
    Route("POST", "/api/v1/users", add_user, ADMINS, "add_user_api"),
    Route("POST", "/admin/users/{user_id}/active", user_active, ADMINS, "user_active"),
    Route("GET", "/admin/audit", audit_page, ADMINS, "audit"),
    Route("GET", "/admin/audit.csv", audit_page, ADMINS, "audit_csv"),
    Route("GET", "/api/v1/audit", audit_page, ADMINS, "audit_api"),
    Route("GET", "/admin/config", config_page, ADMINS, "config"),
    Route("POST", "/admin/config", config_apply, ADMINS, "config_apply"),
    Route("GET", "/api/v1/config", config_page, ADMINS, "config_api"),
    Route("POST", "/api/v1/config", config_apply, ADMINS, "config_apply_api"),
]
