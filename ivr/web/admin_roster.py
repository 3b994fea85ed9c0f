"""The shift roster as a week calendar (issue 16): days × shifts × queues with
the agents of each cell, a pick to add or take out an agent for one day, a
swap of two agents' duties on a day, and a warning where a shift has fewer
agents than its minimum (``Shift.min_agents``).

A change made here is a day override in the config (``roster.overrides``: for
that date, shift and queue, these agents instead of the weekly assignment); the
weekly pattern itself stays in the expert editor. Setting a cell back to its
weekly agents removes the override. Like every form of the console, the new
text is built from the file as saved now with :mod:`ivr.config.yaml_edit` and
handed to :func:`ivr.web.config_changes.preview_change` (check-config's checks,
the difference in words, a reason, Apply). Once applied, the queue manager
applies the roster at once and at each shift boundary, as for any config.

Who may use it: administrators, and supervisors for their own hotline's queues
and agents (``web_users.hotline_id``, :mod:`ivr.web.access`); a supervisor's
request naming another hotline's queue or agent is refused (403, audited).
Shifts are shared by every hotline of the file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import web

from ivr.config import yaml_edit
from ivr.config.edit import check_config_text
from ivr.config.loader import ConfigError
from ivr.config.schema import WEEKDAYS, HotlineConfig, Queue, Shift
from ivr.web.i18n import N_, translator
from ivr.web.rendering import error_page, form_or_json, refuse, render
from ivr.web.state import LANGUAGE, WATCHERS, Route, scope_of, state_of

logger = logging.getLogger(__name__)

WEEK_PAGE = "/admin/roster"
OVERRIDES: tuple[str, ...] = ("roster", "overrides")

# -- the week as the roster makes it -----------------------------------------------------


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_agents(config: HotlineConfig, day: date, shift_id: str, queue_id: str) -> list[str]:
    """The agents the weekly assignments put in (day, shift, queue), in order."""
    weekday = WEEKDAYS[day.weekday()]
    found: list[str] = []
    for entry in config.roster.assignments:
        if entry.shift == shift_id and entry.queue == queue_id and weekday in entry.weekdays:
            found += [a for a in entry.agents if a not in found]
    return found


def cell_agents(
    config: HotlineConfig, day: date, shift_id: str, queue_id: str
) -> tuple[list[str], bool]:
    """The agents of one cell and whether a day override sets them: the same
    rule as :func:`queue_manager.roster.rostered_agents` (the last override for
    the date, shift and queue replaces the weekly assignments)."""
    chosen: list[str] | None = None
    for override in config.roster.overrides:
        if (override.date, override.shift, override.queue) == (day, shift_id, queue_id):
            chosen = list(override.agents)
    if chosen is not None:
        return chosen, True
    return weekly_agents(config, day, shift_id, queue_id), False


@dataclass(frozen=True)
class Shortfall:
    """A shift with fewer agents on a day than its minimum."""

    day: date
    shift: Shift
    staffed: int


def shortfalls(config: HotlineConfig, days: list[date], queues: list[Queue]) -> list[Shortfall]:
    """Every (day, shift) whose distinct agents over ``queues`` are below the
    shift's ``min_agents``."""
    found = []
    for day in days:
        for shift in config.roster.shifts:
            if not shift.min_agents:
                continue
            staffed = {a for q in queues for a in cell_agents(config, day, shift.id, q.id)[0]}
            if len(staffed) < shift.min_agents:
                found.append(Shortfall(day, shift, len(staffed)))
    return found


def agent_duties(
    config: HotlineConfig, days: list[date], queues: list[Queue]
) -> dict[str, dict[date, list[tuple[Shift, Queue]]]]:
    """Agent id → day → the (shift, queue) cells the agent is in: the calendar
    read by agent, where a swap shows on both agents' rows."""
    duties: dict[str, dict[date, list[tuple[Shift, Queue]]]] = {}
    for day in days:
        for shift in config.roster.shifts:
            for queue in queues:
                for agent_id in cell_agents(config, day, shift.id, queue.id)[0]:
                    duties.setdefault(agent_id, {}).setdefault(day, []).append((shift, queue))
    return duties


# -- building the new text ---------------------------------------------------------------


def _override_indexes(text: str, day: date, shift_id: str, queue_id: str) -> list[int]:
    """Where the file writes an override for (day, shift, queue)."""
    data = yaml.safe_load(text)
    roster = data.get("roster") if isinstance(data, dict) else None
    written = roster.get("overrides") if isinstance(roster, dict) else None
    return [
        index
        for index, entry in enumerate(written or [])
        if isinstance(entry, dict)
        and str(entry.get("date")) == day.isoformat()
        and entry.get("shift") == shift_id
        and entry.get("queue") == queue_id
    ]


def set_cell(
    text: str, config: HotlineConfig, day: date, shift_id: str, queue_id: str, agents: list[str]
) -> str:
    """``text`` with the cell (day, shift, queue) holding ``agents``: a day
    override written or changed, or removed when ``agents`` are the weekly ones."""
    agents = list(dict.fromkeys(agents))
    indexes = _override_indexes(text, day, shift_id, queue_id)
    weekly = weekly_agents(config, day, shift_id, queue_id)
    if sorted(agents) == sorted(weekly):
        for index in reversed(indexes):  # from the end: earlier indexes stay valid
            text = yaml_edit.remove_item(text, (*OVERRIDES, index))
        return text
    if indexes:
        # The last one is the one the roster uses; earlier copies would only confuse.
        for index in reversed(indexes[:-1]):
            text = yaml_edit.remove_item(text, (*OVERRIDES, index))
        return yaml_edit.set_value(text, (*OVERRIDES, indexes[-1] - len(indexes) + 1, "agents"),
                                   agents)  # fmt: skip
    item = {"date": day, "shift": shift_id, "queue": queue_id, "agents": agents}
    return yaml_edit.append_item(text, OVERRIDES, item)


def swap_agents(
    text: str, config: HotlineConfig, day: date, first: str, second: str,
    queues: list[Queue], shift_id: str | None = None,
) -> str:  # fmt: skip
    """``text`` with ``first`` and ``second`` exchanging their cells on ``day``
    (one shift, or every shift): each takes the other's place in each queue."""
    for shift in config.roster.shifts:
        if shift_id is not None and shift.id != shift_id:
            continue
        for queue in queues:
            agents, _ = cell_agents(config, day, shift.id, queue.id)
            if first not in agents and second not in agents:
                continue
            swapped = [second if a == first else first if a == second else a for a in agents]
            text = set_cell(text, config, day, shift.id, queue.id, swapped)
    return text


# -- handlers ----------------------------------------------------------------------------


async def preview_change(
    request: web.Request, *, new_text: str, summary: str, back: str
) -> web.StreamResponse:
    """The pipeline's preview (ivr/web/config_changes.py)."""
    from ivr.web import config_changes

    return await config_changes.preview_change(
        request, new_text=new_text, summary=summary, back=back
    )


def _visible_queues(request: web.Request, hotline_id: str | None) -> list[Queue]:
    """The queues of the chosen hotline (or all) that this user may see."""
    config, scope = state_of(request).config, scope_of(request)
    return [
        q
        for q in config.queues
        if scope.sees_hotline(config.queue_owner(q.id))
        and (hotline_id is None or config.queue_owner(q.id) == hotline_id)
    ]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _today(request: web.Request) -> date:
    state = state_of(request)
    return datetime.now(state.zone).date()


async def week_page(request: web.Request) -> web.StreamResponse:
    """The week grid and the same week by agent."""
    state = state_of(request)
    config = state.config
    start = monday_of(_day(request.query.get("week", "")) or _today(request))
    days = [start + timedelta(days=i) for i in range(7)]
    hotline_id = request.query.get("hotline") or None
    if hotline_id is not None and config.hotline(hotline_id) is None:
        return error_page(request, 404, "Not found")
    queues = _visible_queues(request, hotline_id)
    scope = scope_of(request)
    agents = [a for a in config.agents if scope.sees_hotline(config.agent_owner(a.id))]
    cells = {
        (day, shift.id, queue.id): cell_agents(config, day, shift.id, queue.id)
        for day in days
        for shift in config.roster.shifts
        for queue in queues
    }
    short = shortfalls(config, days, queues)
    # A queue's cells offer its own hotline's agents (check-config refuses others).
    queue_agents = {
        q.id: [a for a in agents if config.agent_owner(a.id) == config.queue_owner(q.id)]
        for q in queues
    }
    return render(
        request, "admin_roster.html", days=days, queues=queues, cells=cells,
        shifts=config.roster.shifts, agents=agents, queue_agents=queue_agents,
        names={a.id: a.name for a in config.agents},
        duties=agent_duties(config, days, queues), shortfalls=short,
        short_keys={(s.day, s.shift.id) for s in short}, hotline_id=hotline_id or "",
        hotlines=[h for h in config.hotlines if scope.sees_hotline(h.id)],
        previous_week=(start - timedelta(days=7)).isoformat(),
        next_week=(start + timedelta(days=7)).isoformat(), week=start.isoformat(),
        weekdays=WEEKDAYS, back=_back(start, hotline_id),
    )  # fmt: skip


def _back(start: date, hotline_id: str | None) -> str:
    query = {"week": start.isoformat(), **({"hotline": hotline_id} if hotline_id else {})}
    return f"{WEEK_PAGE}?{urlencode(query)}"


async def _current_text(request: web.Request) -> str:
    applier = state_of(request).applier
    if applier is None:
        raise web.HTTPServiceUnavailable(text="This process does not own the config.")
    return await asyncio.to_thread(applier.current_text)


async def _checked_form(
    request: web.Request, form: dict[str, str], agent_fields: tuple[str, ...]
) -> tuple[date, Shift | None, Queue | None, list[str]] | web.StreamResponse:
    """The date, shift, queue and agents a roster form names, each known to the
    config and within the user's hotline; else the refusal to answer with."""
    config, scope = state_of(request).config, scope_of(request)
    day = _day(form.get("date", ""))
    if day is None:
        return error_page(request, 400, "Bad request", N_("expected a date YYYY-MM-DD"))
    shift = None
    if form.get("shift"):
        shift = next((s for s in config.roster.shifts if s.id == form["shift"]), None)
        if shift is None:
            return error_page(request, 400, "Bad request", N_("unknown shift"))
    queue = None
    if form.get("queue"):
        queue = config.queue(form["queue"])
        if queue is None:
            return error_page(request, 400, "Bad request", N_("unknown queue"))
        if not scope.sees_hotline(config.queue_owner(queue.id)):
            return await refuse(request, "roster_refused", f"queue {queue.id}")
    agents = []
    known = {a.id for a in config.agents}
    for name in agent_fields:
        agent_id = form.get(name, "")
        if agent_id not in known:
            return error_page(request, 400, "Bad request", N_("unknown agent"))
        if not scope.sees_hotline(config.agent_owner(agent_id)):
            return await refuse(request, "roster_refused", f"agent {agent_id}")
        agents.append(agent_id)
    return day, shift, queue, agents


def _warning(config: HotlineConfig, text: str, day: date, queues: list[Queue], _: Any) -> str:
    """The under-minimum warning of the day the change touches, for the summary."""
    if config.source is None:
        return ""
    try:
        changed = check_config_text(config.source, text)
    except ConfigError:  # the preview shows the problems itself
        return ""
    notes = [
        _("Warning: shift {shift} on {day} has {staffed} agents, fewer than its minimum {minimum}",
          shift=s.shift.title or s.shift.id, day=s.day.strftime("%d/%m/%Y"),
          staffed=s.staffed, minimum=s.shift.min_agents)
        for s in shortfalls(changed, [day], queues)
    ]  # fmt: skip
    return "".join(f" — {n}" for n in notes)


async def cell_change(request: web.Request) -> web.StreamResponse:
    """Add an agent to, or take one out of, one cell for one day."""
    state = state_of(request)
    config = state.config
    form = await form_or_json(request)
    op = form.get("op", "")
    if op not in ("add", "remove", "reset"):
        return error_page(request, 400, "Bad request", N_("unknown change"))
    checked = await _checked_form(request, form, () if op == "reset" else ("agent",))
    if not isinstance(checked, tuple):
        return checked
    day, shift, queue, agents = checked
    if shift is None or queue is None:
        return error_page(request, 400, "Bad request", N_("a shift and a queue are needed"))
    current, _overridden = cell_agents(config, day, shift.id, queue.id)
    _ = translator(request.get(LANGUAGE, "vi"))
    names = {a.id: a.name for a in config.agents}
    where = {"shift": shift.title or shift.id, "queue": queue.title,
             "day": day.strftime("%d/%m/%Y")}  # fmt: skip
    if op == "add":
        new = [*current, agents[0]]
        summary = _("Roster: {agent} joins {shift}, {queue}, on {day}",
                    agent=names[agents[0]], **where)  # fmt: skip
    elif op == "remove":
        new = [a for a in current if a != agents[0]]
        summary = _("Roster: {agent} leaves {shift}, {queue}, on {day}",
                    agent=names[agents[0]], **where)  # fmt: skip
    else:
        new = weekly_agents(config, day, shift.id, queue.id)
        summary = _("Roster: {shift}, {queue}, on {day} back to the weekly roster", **where)
    text = await _current_text(request)
    new_text = set_cell(text, config, day, shift.id, queue.id, new)
    hotline_id = config.queue_owner(queue.id)
    summary += _warning(config, new_text, day, _visible_queues(request, hotline_id), _)
    back = _back(monday_of(day), form.get("hotline") or None)
    return await preview_change(request, new_text=new_text, summary=summary, back=back)


async def swap(request: web.Request) -> web.StreamResponse:
    """Two agents exchange their duties on a day (one shift, or all)."""
    config = state_of(request).config
    form = await form_or_json(request)
    checked = await _checked_form(request, {**form, "queue": ""}, ("first", "second"))
    if not isinstance(checked, tuple):
        return checked
    day, shift, _queue, (first, second) = checked
    if first == second:
        return error_page(request, 400, "Bad request", N_("choose two different agents"))
    _ = translator(request.get(LANGUAGE, "vi"))
    names = {a.id: a.name for a in config.agents}
    hotline_id = config.agent_owner(first)
    queues = _visible_queues(request, None)
    text = await _current_text(request)
    new_text = swap_agents(text, config, day, first, second, queues,
                           shift.id if shift else None)  # fmt: skip
    if new_text == text:
        return error_page(request, 400, "Bad request", N_("neither agent works that day"))
    summary = _("Roster: {first} and {second} swap their shifts on {day}",
                first=names[first], second=names[second], day=day.strftime("%d/%m/%Y"))  # fmt: skip
    if shift is not None:
        summary += f" ({shift.title or shift.id})"
    summary += _warning(config, new_text, day, _visible_queues(request, hotline_id), _)
    back = _back(monday_of(day), form.get("hotline") or None)
    return await preview_change(request, new_text=new_text, summary=summary, back=back)


ROUTES = [
    Route("GET", WEEK_PAGE, week_page, WATCHERS, "roster_week"),
    Route("POST", WEEK_PAGE + "/cell", cell_change, WATCHERS, "roster_cell"),
    Route("POST", WEEK_PAGE + "/swap", swap, WATCHERS, "roster_swap"),
]
