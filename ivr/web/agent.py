"""The agents' console: the agent's own state in the queues (page, websocket,
JSON), their log in, log off and pauses, and the screen-pop with the caller's
history when a call rings."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ivr.cases.service import SEVERITIES
from ivr.config.schema import Agent, iter_areas
from ivr.web.reads import readable_history
from ivr.web.rendering import (
    done,
    error_page,
    form_or_json,
    refused,
    render,
    unknown_pause_reason,
)
from ivr.web.state import AGENTS, Route, audit, manager_of, scope_of, state_of, user_of
from ivr.web.written_work import citizen_of_caller, written_panel

logger = logging.getLogger(__name__)


def agent_of(request: web.Request) -> Agent:
    """The config's agent this user is linked to (403 without one)."""
    user = user_of(request)
    agent = next((a for a in state_of(request).config.agents if a.id == user.agent_id), None)
    if agent is None:
        raise web.HTTPForbidden(text="this user is linked to no agent of the config")
    return agent


def agent_state(request: web.Request) -> dict[str, Any]:
    """The agent's membership, state and pause in each queue, from the live board."""
    agent = agent_of(request)
    interface = f"PJSIP/{agent.phone}"
    queues = []
    for queue in state_of(request).hub.board()["queues"]:
        for member in queue["agents"]:
            if member["interface"] == interface:
                queues.append(
                    {"queue": queue["id"], "title": queue["title"], "state": member["state"],
                     "paused": member["paused"], "reason": member["paused_reason"]}
                )  # fmt: skip
    return {"agent_id": agent.id, "name": agent.name, "interface": interface, "queues": queues}


async def agent_page(request: web.Request) -> web.Response:
    state = state_of(request)
    return render(
        request, "agent.html", me=agent_state(request), reasons=state.config.pause_reasons,
        topics=state.config.cases.topics, areas=iter_areas(state.config.areas),
        severities=SEVERITIES, written=await written_panel(request),
    )  # fmt: skip


async def agent_socket(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    return await state_of(request).hub.serve(
        request, "agent", f"PJSIP/{agent.phone}", scope=scope_of(request)
    )


async def agent_state_api(request: web.Request) -> web.Response:
    return web.json_response(agent_state(request))


async def agent_action(request: web.Request) -> web.StreamResponse:
    """The agent's own login/logout/pause/unpause (``action`` in the path)."""
    state = state_of(request)
    agent = agent_of(request)
    manager = manager_of(request)
    action = request.match_info["action"]
    form = await form_or_json(request)
    if action == "login":
        await manager.login(agent.id, by=agent.id)
    elif action == "logout":
        await manager.logout(agent.id, by=agent.id)
    elif action == "pause":
        reason = form.get("reason") or state.config.pause_reasons[0].code
        if state.config.pause_reason(reason) is None:
            return unknown_pause_reason(request)
        await manager.pause(agent.id, reason)
    elif action == "unpause":
        await manager.unpause(agent.id)
    else:
        return error_page(request, 404, "Not found")
    await audit(request, f"self_{action}", agent.id,
                detail=form.get("reason", "") if action == "pause" else "")  # fmt: skip
    return done(request, "/agent", action=action)


async def screen_pop(request: web.Request) -> web.Response:
    """The caller's history for the agent's screen-pop (an HTML fragment)."""
    state = state_of(request)
    number = request.query.get("number", "")[:64]
    uniqueid = request.query.get("uniqueid", "")[:64]
    history = await readable_history(request, number, uniqueid)
    if history is None:
        return refused(request)
    current = history.current_call
    # The same citizen on the written channels (issue 14): other contacts, cases.
    citizen = await citizen_of_caller(request, history, current.hotline_id if current else None)
    return render(
        request, "pop.html", history=history, uniqueid=uniqueid, **citizen,
        queue=request.query.get("queue", ""), topics=state.config.cases.topics,
        areas=iter_areas(state.config.areas), severities=SEVERITIES,
        area_code=current.area_code if current else "",
    )  # fmt: skip


ROUTES = [
    Route("GET", "/agent", agent_page, AGENTS, "agent"),
    Route("GET", "/ws/agent", agent_socket, AGENTS, "agent_ws"),
    Route("GET", "/api/v1/agent", agent_state_api, AGENTS, "agent_api"),
    Route("POST", "/agent/{action}", agent_action, AGENTS, "agent_action"),
    Route("POST", "/api/v1/agent/{action}", agent_action, AGENTS, "agent_action_api"),
    Route("GET", "/agent/pop", screen_pop, AGENTS, "screen_pop"),
]
