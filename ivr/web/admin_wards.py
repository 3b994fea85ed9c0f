"""Wards for the clerks who run a hotline: the list (search by name, code or
key), and a ward's page with its chairman, its fallback chain and a "test
call" that rings the number typed in the form through Asterisk.

Every change builds the new config text from the current one with
:mod:`ivr.config.yaml_edit` (one node changed, the rest of the file byte for
byte) and goes through :func:`ivr.web.config_changes.preview_change`: checked
as ``check-config`` checks, shown as a difference, applied live, audited and
reversible from the history page.

Who may change a ward is what the change pipeline accepts (``path_owner``):
administrators any ward; a supervisor tied to a hotline the wards of a
single-hotline deployment (they can only be that hotline's). In a file with
several hotlines the area tree is shared, so its wards stay with the
administrators: one hotline's clerk never rewires another's calls. The list
shows only the wards the user may change; any other ward's page, form or test
call is refused (403, audited).

The test call rings before anything is applied, so the clerk hears the new
number work first: the candidate config (the form's value in the current
file) is checked like the change itself, the routing of that config gives the
dial string a citizen's call would ring, and the queue manager originates it
(queue_manager/trial_call.py) playing the hotline's greeting. A phone the
running Asterisk does not know yet cannot ring: the clerk is told to apply
first.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from ivr.config import yaml_edit
from ivr.config.destinations import Destination, DestinationKind
from ivr.config.edit import check_config_text
from ivr.config.loader import ConfigError, ConfigProblem
from ivr.config.schema import Area, Hotline, HotlineConfig
from ivr.config.yaml_lines import FieldPath
from ivr.flow.routing import RoutingTable
from ivr.knowledge.folding import fold
from ivr.prompts import prompt_path
from ivr.web.access import AccessScope
from ivr.web.config_changes import describe_field, parse_field, path_owner, preview_change
from ivr.web.i18n import translator
from ivr.web.models import ADMIN, SUPERVISOR
from ivr.web.rendering import error_page, form_or_json, refuse, render
from ivr.web.security import LoginRateLimiter
from ivr.web.state import LANGUAGE, WATCHERS, Route, audit, scope_of, state_of

logger = logging.getLogger(__name__)

# What a clerk may put in a chairman's place or in the fallback chain, in the
# order the form offers them (the config's Destination vocabulary, restricted
# to what rings a person or ends a call sensibly).
CHAIRMAN_KINDS = ("tel", "phone", "none")
FALLBACK_KINDS = ("tel", "phone", "queue", "department", "area", "voicemail", "hangup")
# Blank rows the fallback form offers for additions.
BLANK_FALLBACK_ROWS = 2
# The prompt the test call plays: every hotline has its greeting.
TRIAL_PROMPT = "greeting"
# Test calls per user and window: a test call may ring any number over the
# trunk, so a stolen or careless session must not become a toll dialler.
TRIAL_CALLS = 6
TRIAL_WINDOW_SECONDS = 600.0
TRIAL_LIMITER = web.AppKey("hotline_ward_trial_limiter", LoginRateLimiter)


def trial_limiter() -> LoginRateLimiter:
    """The test calls' budget per user (one per app, in memory)."""
    return LoginRateLimiter(TRIAL_CALLS, TRIAL_WINDOW_SECONDS)


_SPACES = re.compile(r"[\s.()-]+")


# --- the area tree -------------------------------------------------------------------


@dataclass(frozen=True)
class WardEntry:
    """A unit of the tree as the list shows it."""

    area: Area
    path: FieldPath  # where it sits in the file: ("areas", 0, "children", 2, ...)
    parent: Area | None


def ward_entries(config: HotlineConfig) -> list[WardEntry]:
    """Every unit that takes calls (a chairman, a shortcut) or could (no
    children), depth first, with its place in the file."""
    found: list[WardEntry] = []

    def walk(areas: list[Area], path: FieldPath, parent: Area | None) -> None:
        for index, area in enumerate(areas):
            here = (*path, index)
            if area.chairman is not None or area.shortcut or not area.children:
                found.append(WardEntry(area, here, parent))
            walk(area.children, (*here, "children"), area)

    walk(config.areas, ("areas",), None)
    return found


def ward_entry(config: HotlineConfig, code: str) -> WardEntry | None:
    return next((w for w in ward_entries(config) if w.area.code == code), None)


def ward_owners(config: HotlineConfig, entry: WardEntry) -> set[str]:
    """The hotlines whose menus reach this ward."""
    owners: set[str] = set()
    for hotline in config.hotlines:
        for menu in hotline.menus.values():
            under = entry.parent is not None and menu.areas_under == entry.parent.code
            named = any(
                d.kind is DestinationKind.AREA and d.argument == entry.area.code
                for d in menu.options.values()
            )
            if under or named:
                owners.add(hotline.id)
    return owners


def may_edit(scope: AccessScope, config: HotlineConfig, path: FieldPath) -> bool:
    """May this user change the config field at ``path``? The change pipeline
    decides for every form (ivr/web/config_changes.py, ``path_owner``):
    administrators anything, a supervisor tied to a hotline only what belongs
    to it; the forms offer exactly that, so no clerk fills in a form only to
    be refused at the preview."""
    if scope.role == ADMIN:
        return True
    if scope.role != SUPERVISOR or not scope.hotline_id:
        return False
    return path_owner(config, {}, path) == scope.hotline_id


def may_change(scope: AccessScope, config: HotlineConfig, entry: WardEntry) -> bool:
    """May this user change the ward's chairman and fallbacks?"""
    return may_edit(scope, config, (*entry.path, "chairman"))


def ward_hotline(scope: AccessScope, config: HotlineConfig, entry: WardEntry) -> Hotline | None:
    """The hotline the ward's test call is placed for (its own, else the first)."""
    owners = sorted(ward_owners(config, entry))
    seen = [h for h in owners if scope.sees_hotline(h)]
    chosen = seen[0] if seen else (owners[0] if owners else None)
    return config.hotline_or_sole(chosen)


def matches(entry: WardEntry, query: str) -> bool:
    """Does the search text match the ward's name, aliases, code or key?
    Accents do not matter ("dong ngac" finds "Đông Ngạc")."""
    wanted = fold(query)
    if not wanted:
        return True
    area = entry.area
    words = [area.name, *area.aliases, area.code, area.shortcut or "", area.official_code or ""]
    return any(wanted in fold(w) for w in words)


# --- destinations in the clerk's words -----------------------------------------------


def describe(destination: Destination | None, config: HotlineConfig, language: str) -> str:
    """A destination as a clerk reads it."""
    _ = translator(language)
    if destination is None:
        return _("Nobody (the caller goes to an operator)")
    kind, argument = destination.kind, destination.argument
    if kind is DestinationKind.TEL:
        return _("Phone number {number}", number=destination.tel_number)
    if kind is DestinationKind.PHONE:
        phone = next((p for p in config.phones if p.id == argument), None)
        return _("Desk phone {name}", name=(phone.name if phone and phone.name else argument))
    if kind is DestinationKind.QUEUE:
        queue = config.queue(argument)
        return _("Operators: {title}", title=queue.title if queue else argument)
    if kind is DestinationKind.DEPARTMENT:
        department = next((d for d in config.departments if d.code == argument), None)
        return _("Department {name}", name=department.name if department else argument)
    if kind is DestinationKind.AREA:
        area = config.area(argument)
        return _("Chairman of {name}", name=area.name if area else argument)
    if kind is DestinationKind.VOICEMAIL:
        return _("Leave a message (it becomes a case)")
    if kind is DestinationKind.HANGUP:
        return _("End the call")
    return str(destination)


def form_destination(kind: str, value: str, trunk: str = "") -> str | None:
    """The config's destination text for a form row; None for an empty row.
    A number may be typed with spaces, dots or dashes ("0900 000 199")."""
    value = value.strip()
    if kind in ("", "none"):
        return None
    if kind == "tel":
        number = _SPACES.sub("", value)
        if not number:
            return None
        return f"tel:{number}@{trunk}" if trunk else f"tel:{number}"
    if kind in ("voicemail", "hangup"):
        return kind
    if not value:
        return None
    return f"{kind}:{value}"


def form_rows(destination: Destination | None) -> dict[str, str]:
    """A destination as the form's kind, value and trunk."""
    if destination is None:
        return {"kind": "none", "value": "", "trunk": ""}
    if destination.kind is DestinationKind.TEL:
        return {"kind": "tel", "value": destination.tel_number,
                "trunk": destination.tel_trunk or ""}  # fmt: skip
    return {"kind": destination.kind.value, "value": destination.argument, "trunk": ""}


# --- building the new text -----------------------------------------------------------


def with_chairman(text: str, path: FieldPath, chairman: str | None) -> str:
    """The config text with the ward at ``path`` given ``chairman`` (None: none)."""
    return yaml_edit.set_value(text, (*path, "chairman"), chairman)


def with_list(text: str, path: FieldPath, old: list[str], new: list[str]) -> str:
    """The config text with the list at ``path`` turned from ``old`` into
    ``new`` by the fewest item edits, so the items that stay keep their
    comments ("# Phó Chủ tịch"); a list that did not exist is written whole."""
    if old == new:
        return text
    if not old:
        return yaml_edit.set_value(text, path, new)
    if not new:
        return yaml_edit.set_value(text, path, [])
    opcodes = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    # From the end backwards, so earlier indexes stay valid.
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for offset in range(i2 - i1):
                text = yaml_edit.set_value(text, (*path, i1 + offset), new[j1 + offset])
            continue
        for index in reversed(range(i1, i2)):  # delete, or the first half of a replace
            text = yaml_edit.remove_item(text, (*path, index))
        for offset, item in enumerate(new[j1:j2]):  # insert, or the second half
            text = yaml_edit.insert_item(text, path, i1 + offset, item)
    return text


def problem_lines(problems: list[ConfigProblem], data: Any, language: str) -> list[str]:
    """Check-config's problems with the field named in the clerk's words, as
    the change preview names them ("Chủ tịch phường Đông Ngạc: …")."""
    lines = []
    for problem in problems:
        path = parse_field(problem.field)
        label = describe_field(data, path, language) if path else ""
        lines.append(f"{label}: {problem.message}" if label else problem.message)
    return lines


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return {}


# --- pages ---------------------------------------------------------------------------


def _language(request: web.Request) -> str:
    return request.get(LANGUAGE, "vi")


def applied_notice(request: web.Request) -> str:
    """The pipeline's Apply comes back with ``?notice=applied``."""
    if request.query.get("notice") != "applied":
        return ""
    return translator(_language(request))("The change is applied.")


async def _entry_or_refusal(request: web.Request) -> WardEntry | web.Response:
    """The ward the URL names, if this user may change it (else 404, or the
    audited 403)."""
    config = state_of(request).config
    code = request.match_info["code"]
    entry = ward_entry(config, code)
    if entry is None:
        return error_page(request, 404, "Not found")
    if not may_change(scope_of(request), config, entry):
        return await refuse(request, "ward_refused", f"area:{code}")
    return entry


async def wards_page(request: web.Request) -> web.StreamResponse:
    """The wards this user may change, searched by name, code or key."""
    state = state_of(request)
    config, scope = state.config, scope_of(request)
    query = request.query.get("q", "")[:100]
    wards = [w for w in ward_entries(config) if may_change(scope, config, w) and matches(w, query)]
    language = _language(request)
    return render(
        request, "admin_wards.html", wards=wards, query=query,
        hotlines=[h for h in config.hotlines if scope.sees_hotline(h.id)],
        chairman_of={w.area.code: describe(w.area.chairman, config, language) for w in wards},
    )  # fmt: skip


def _ward_view(
    request: web.Request, entry: WardEntry, *, status: int = 200,
    chairman_form: dict[str, str] | None = None, notice: str = "",
    problems: list[str] | None = None,
) -> web.Response:  # fmt: skip
    config = state_of(request).config
    language = _language(request)
    area = entry.area
    fallbacks = [form_rows(d) for d in area.fallbacks]
    fallbacks += [{"kind": "", "value": "", "trunk": ""}] * BLANK_FALLBACK_ROWS
    return render(
        request, "admin_ward.html", status=status, ward=area, parent=entry.parent,
        chairman=chairman_form or form_rows(area.chairman),
        chairman_words=describe(area.chairman, config, language),
        fallbacks=fallbacks,
        fallback_words=[describe(d, config, language) for d in area.fallbacks],
        chairman_kinds=CHAIRMAN_KINDS, fallback_kinds=FALLBACK_KINDS,
        default_trunk=config.trunks[0].id if config.trunks else "",
        notice=notice or applied_notice(request), problems=problems or [],
    )  # fmt: skip


async def ward_page(request: web.Request) -> web.StreamResponse:
    found = await _entry_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    return _ward_view(request, found)


def _chairman_from(form: dict[str, str]) -> str | None:
    return form_destination(
        form.get("chairman_kind", ""),
        form.get("chairman_phone", "") if form.get("chairman_kind") == "phone"
        else form.get("chairman_number", ""),
        form.get("chairman_trunk", ""),
    )  # fmt: skip


def _chairman_form(form: dict[str, str]) -> dict[str, str]:
    kind = form.get("chairman_kind", "none")
    value = form.get("chairman_phone" if kind == "phone" else "chairman_number", "")
    return {"kind": kind, "value": value[:64], "trunk": form.get("chairman_trunk", "")[:64]}


async def change_chairman(request: web.Request) -> web.StreamResponse:
    """The new chairman, previewed as a difference before it is applied."""
    found = await _entry_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    state = state_of(request)
    if state.applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    form = await form_or_json(request)
    if form.get("chairman_kind", "none") not in CHAIRMAN_KINDS:
        return error_page(request, 400, "Bad request")
    chairman = _chairman_from(form)
    text = await asyncio.to_thread(state.applier.current_text)
    try:
        new_text = with_chairman(text, found.path, chairman)
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    language = _language(request)
    _ = translator(language)
    old_words = describe(found.area.chairman, state.config, language)
    summary = _(
        "Chairman of {ward}: {old} → {new}",
        ward=found.area.name,
        old=old_words,
        new=_words(chairman, state.config, language),
    )
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/wards/{found.area.code}"
    )


def _words(text: str | None, config: HotlineConfig, language: str) -> str:
    """A destination typed in a form in the clerk's words; as typed when it
    does not parse (the preview then shows check-config's error for it)."""
    if text is None:
        return describe(None, config, language)
    try:
        return describe(Destination.parse(text), config, language)
    except ValueError:
        return text


async def change_fallbacks(request: web.Request) -> web.StreamResponse:
    """The fallback chain as the form lists it: rows in their "order" number's
    order, empty rows dropped (that is how a step is removed), new rows added."""
    found = await _entry_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    state = state_of(request)
    if state.applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    form = await form_or_json(request)
    rows: list[tuple[float, int, str]] = []
    for index in range(64):
        kind = form.get(f"kind_{index}")
        if kind is None:
            break
        if kind and kind not in FALLBACK_KINDS:
            return error_page(request, 400, "Bad request")
        destination = form_destination(
            kind, form.get(f"value_{index}", ""), form.get(f"trunk_{index}", "")
        )
        if destination is None:
            continue
        try:
            order = float(form.get(f"order_{index}", "") or index + 1)
        except ValueError:
            order = float(index + 1)
        rows.append((order, index, destination))
    new = [destination for _, _, destination in sorted(rows)]
    old = [str(d) for d in found.area.fallbacks]
    text = await asyncio.to_thread(state.applier.current_text)
    try:
        new_text = with_list(text, (*found.path, "fallbacks"), old, new)
    except yaml_edit.YamlEditError as exc:
        return error_page(request, 400, "Bad request", str(exc))
    language = _language(request)
    _ = translator(language)
    config = state.config
    words = [_words(d, config, language) for d in new]
    summary = _("Fallbacks of {ward}: {chain}", ward=found.area.name,
                chain=" → ".join(words) or _("none"))  # fmt: skip
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/wards/{found.area.code}"
    )


async def trial_call(request: web.Request) -> web.StreamResponse:
    """Ring the chairman typed in the form (not yet applied) the way a
    citizen's call would, and play the hotline's greeting when answered."""
    found = await _entry_or_refusal(request)
    if isinstance(found, web.Response):
        return found
    state = state_of(request)
    form = await form_or_json(request)
    language = _language(request)
    _ = translator(language)
    shown = _chairman_form(form)
    chairman = _chairman_from(form)
    if state.applier is None or state.queue_manager is None:
        return _ward_view(request, found, status=503, chairman_form=shown,
                          problems=[_("Test calls need the telephone system: this process "
                                      "does not run it.")])  # fmt: skip
    if chairman is None:
        return _ward_view(request, found, status=422, chairman_form=shown,
                          problems=[_("Type the number or choose the phone to call.")])  # fmt: skip
    config = state.config
    text = await asyncio.to_thread(state.applier.current_text)
    try:
        candidate_text = with_chairman(text, found.path, chairman)
        candidate = await asyncio.to_thread(
            check_config_text, state.applier.source, candidate_text, config
        )
    except yaml_edit.YamlEditError as exc:
        return _ward_view(request, found, status=422, chairman_form=shown, problems=[str(exc)])
    except ConfigError as exc:
        problems = problem_lines(exc.problems, _yaml(candidate_text), language)
        return _ward_view(request, found, status=422, chairman_form=shown, problems=problems)
    destination = Destination.parse(chairman)
    if destination.kind is DestinationKind.PHONE and destination.argument not in {
        p.id for p in config.phones
    }:
        return _ward_view(request, found, status=409, chairman_form=shown, problems=[
            _("This phone is not in the telephone system yet: apply the change first, "
              "then test it.")])  # fmt: skip
    hotline = ward_hotline(scope_of(request), candidate, found)
    if hotline is None:
        problem = _("No hotline reaches this ward: nothing to test.")
        return _ward_view(request, found, status=409, chairman_form=shown, problems=[problem])
    ward = Destination(DestinationKind.AREA, found.area.code)
    route = RoutingTable(candidate).route_for(ward, hotline)
    target = route.targets[0]
    prompts = candidate.resolve_path(candidate.paths.prompts)
    prompt = prompt_path(prompts, hotline.id, hotline.language, TRIAL_PROMPT)
    words = describe(destination, config, language)
    budget, caller = request.app[TRIAL_LIMITER], [scope_of(request).username]
    wait = budget.blocked(caller)
    if wait > 0:
        problem = _("Too many test calls: try again in {minutes} minutes.",
                    minutes=max(1, math.ceil(wait / 60)))  # fmt: skip
        return _ward_view(request, found, status=429, chairman_form=shown, problems=[problem])
    budget.failed(caller)  # every call placed counts
    await audit(request, "ward_test_call", f"area:{found.area.code}", detail=chairman)
    try:
        await state.queue_manager.trial_call(
            hotline.id, target.dial_string, prompt, hotline.numbers[0], target.ring_seconds
        )
    except Exception:  # an AMI link down, a refused action: said, and logged
        logger.exception("test call to %s failed", target.dial_string)
        return _ward_view(request, found, status=502, chairman_form=shown, problems=[
            _("The telephone system did not place the test call; try again in a moment.")
        ])  # fmt: skip
    return _ward_view(request, found, chairman_form=shown, notice=_(
        "Calling {who} now. Answer it to hear the hotline's greeting; if it does not "
        "ring, check the number before applying.", who=words))  # fmt: skip


ROUTES = [
    Route("GET", "/admin/wards", wards_page, WATCHERS, "wards"),
    Route("GET", "/admin/wards/{code}", ward_page, WATCHERS, "ward"),
    Route("POST", "/admin/wards/{code}/chairman", change_chairman, WATCHERS, "ward_chairman"),
    Route("POST", "/admin/wards/{code}/fallbacks", change_fallbacks, WATCHERS, "ward_fallbacks"),
    Route("POST", "/admin/wards/{code}/test-call", trial_call, WATCHERS, "ward_test_call"),
]
