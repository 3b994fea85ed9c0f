"""The supervisors' wallboard: the live board (page, websocket, JSON), and the
actions taken from it on an agent: pause, resume, log off, listen in. The
actions go to the queue manager; every one is audited. A supervisor of one
hotline sees only its queues and agents and may act only on its agents
(ivr/web/access.py)."""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.config.pause_reasons import SUPERVISOR_PAUSE
from ivr.web.live import scoped_board
from ivr.web.rendering import (
    done,
    error_page,
    form_or_json,
    refuse,
    render,
    unknown_pause_reason,
)
from ivr.web.state import WATCHERS, Route, audit, manager_of, scope_of, state_of, user_of
from ivr.web.written_work import written_panel
from queue_manager.listen_in import SPY_OPTIONS

logger = logging.getLogger(__name__)


async def wallboard_page(request: web.Request) -> web.Response:
    config = state_of(request).config
    scope = scope_of(request)
    agents = {a.id: a for a in config.agents if scope.sees_agent(config, a.id)}
    # The phones to listen from: none of another hotline's agents.
    foreign = {a.phone for a in config.agents if a.id not in agents}
    return render(
        request, "wallboard.html", phones=[p.id for p in config.phones if p.id not in foreign],
        agents=agents, written=await written_panel(request),
    )  # fmt: skip


async def wallboard_socket(request: web.Request) -> web.StreamResponse:
    return await state_of(request).hub.serve(request, "wallboard", scope=scope_of(request))


async def wallboard_api(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response(scoped_board(scope_of(request), state.config, state.hub.board()))


async def supervise_agent(request: web.Request) -> web.StreamResponse:
    """Pause, resume or log off an agent from the wallboard (audited)."""
    state = state_of(request)
    user = user_of(request)
    agent_id = request.match_info["agent_id"]
    action = request.match_info["action"]
    if state.config.web and agent_id not in {a.id for a in state.config.agents}:
        return error_page(request, 404, "Not found")
    if not scope_of(request).sees_agent(state.config, agent_id):
        return await refuse(request, "supervise_refused", agent_id)
    manager = manager_of(request)
    form = await form_or_json(request)
    if action == "pause":
        reason = form.get("reason") or SUPERVISOR_PAUSE
        if state.config.pause_reason(reason) is None:
            return unknown_pause_reason(request)
        await manager.pause(agent_id, reason)
    elif action == "unpause":
        await manager.unpause(agent_id)
    elif action == "logout":
        await manager.logout(agent_id, by=user.username)
    else:
        return error_page(request, 404, "Not found")
    await audit(request, f"agent_{action}", agent_id)
    return done(request, "/wallboard", agent=agent_id, action=action)


async def spy(request: web.Request) -> web.StreamResponse:
    """Listen, whisper or barge in on an agent's call: the queue manager has
    Asterisk ring the supervisor's phone and, when answered, spy on the agent's
    live channel. Audited."""
    state = state_of(request)
    form = await form_or_json(request)
    agent = next((a for a in state.config.agents if a.id == form.get("agent_id")), None)
    mode = form.get("mode", "")
    phone = form.get("phone", "")
    if agent is None or mode not in SPY_OPTIONS or phone not in {p.id for p in state.config.phones}:
        return error_page(request, 400, "Bad request")
    scope = scope_of(request)
    # Listening in on another hotline's agent, or from its agent's phone: refused.
    foreign_phone = any(
        a.phone == phone and not scope.sees_agent(state.config, a.id) for a in state.config.agents
    )
    if not scope.sees_agent(state.config, agent.id) or foreign_phone:
        return await refuse(request, "spy_refused", agent.id)
    channel = await manager_of(request).spy(agent.id, phone, mode)
    if channel is None:
        return error_page(request, 409, "Bad request", "The agent is not on a call.")
    await audit(request, f"spy_{mode}", agent.id, detail=f"from phone {phone}")
    return done(request, "/wallboard", agent=agent.id, mode=mode)


ROUTES = [
    Route("GET", "/wallboard", wallboard_page, WATCHERS, "wallboard"),
    Route("GET", "/ws/wallboard", wallboard_socket, WATCHERS, "wallboard_ws"),
    Route("GET", "/api/v1/wallboard", wallboard_api, WATCHERS, "wallboard_api"),
    Route("POST", "/wallboard/agents/{agent_id}/{action}", supervise_agent, WATCHERS, "supervise"),
    Route("POST", "/api/v1/agents/{agent_id}/{action}", supervise_agent, WATCHERS, "supervise_api"),
    Route("POST", "/wallboard/spy", spy, WATCHERS, "spy"),
    Route("POST", "/api/v1/spy", spy, WATCHERS, "spy_api"),
]
