"""The live feed: queue-manager changes → wallboard and agent websockets.

Changes arrive synchronously from the live model (inside the AMI reader). The
hub only marks the picture dirty and schedules one flush on the loop, so a
burst of events (a resync emits dozens) becomes one frame; each frame is
serialised once and handed to every client's own sender task. A slow client
cannot hold up the others: when its queue is full it is dropped, and its page
reconnects and starts again from a fresh snapshot.

Agents' pages get screen-pops: when a queue call rings (or is answered by) the
agent's phone, the agent's sockets receive the caller's number and the call's
uniqueid; the page then fetches the caller's history. That is the only number
an agent's socket ever carries: agents get the board without the waiting
callers' numbers (:func:`agent_board`), and the hub remembers each phone's
current call (:meth:`LiveHub.current_call`) so the console can let an agent read
the history of the caller they are serving and nobody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.web.access import AccessScope
from queue_manager.model import Change

logger = logging.getLogger(__name__)

SEND_QUEUE = 64  # frames a client may lag behind before it is dropped


class LiveSource(Protocol):
    """What the hub needs of the queue manager (a fake in unit tests)."""

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]: ...

    def snapshot(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CurrentCall:
    """The queue call ringing or answered at a phone (kept after hang-up until
    the next one, so the agent can still write the case)."""

    uniqueid: str
    number: str
    state: str  # ringing, answered


_AGENT_CALLER_FIELDS = ("position", "wait_seconds")


def agent_board(board: dict[str, Any]) -> dict[str, Any]:
    """The board as an agent may see it: how many wait and how long, not who."""
    return {
        **board,
        "queues": [
            {
                **queue,
                "callers": [
                    {k: caller[k] for k in _AGENT_CALLER_FIELDS if k in caller}
                    for caller in queue["callers"]
                ],
            }
            for queue in board["queues"]
        ],
    }


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    kind: str  # "wallboard" or "agent"
    interface: str = ""  # an agent's PJSIP/phone
    # Whose board this client gets (ivr/web/access.py): a hotline's supervisor
    # or agent sees only that hotline's queues and agents; None: everything.
    scope: AccessScope | None = None
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    task: asyncio.Task[None] | None = None


class LiveHub:
    def __init__(self, config: HotlineConfig | ConfigSource, source: LiveSource | None) -> None:
        # Titles, agents and wallboard settings are read at each frame from the
        # process's config source, so a config applied while running shows at once.
        self.config_source = ConfigSource.of(config)
        self.source = source
        self.clients: set[Client] = set()
        self._dirty = False
        self._unsubscribe: Callable[[], None] | None = None
        self._callers: dict[str, str] = {}  # uniqueid → caller number (for screen-pops)
        self._current: dict[str, CurrentCall] = {}  # agent's interface → its call
        self._since: dict[tuple[str, str], tuple[str, float]] = {}  # (queue, iface) → state
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_event_at = 0.0  # time.time() of the change behind the latest frame
        self.frames_sent = 0
        self._closing: set[asyncio.Future[bool]] = set()
        # Open forwards past their due date per hotline (issue 13), as the
        # forwarding job last counted them; shown on each hotline's wallboard.
        self.overdue_forwards: dict[str, int] = {}

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.source is not None:
            self._unsubscribe = self.source.subscribe(self._on_change)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self.clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restart")
            self._drop(client)

    # -- changes -------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind == "caller_joined":
            self._callers[change.data["uniqueid"]] = str(change.data.get("caller_id", ""))
            # Kept after the caller leaves the queue (AgentConnect comes after the
            # leave); the oldest entries go once there are many.
            while len(self._callers) > 1000:
                del self._callers[next(iter(self._callers))]
        if change.kind in ("agent_ringing", "call_answered"):
            self._screen_pop(change)
        if change.kind in ("agent_ring_no_answer", "call_answered", "caller_abandoned"):
            self._forget_ringing(change)
        self.last_event_at = time.time()
        if not self._dirty and self._loop is not None:
            self._dirty = True
            self._loop.call_soon(self._flush)

    def _screen_pop(self, change: Change) -> None:
        interface = change.data.get("interface", "")
        uniqueid = change.data.get("uniqueid", "")
        number = self._callers.get(uniqueid) or self._caller_from_model(change.queue, uniqueid)
        state = "ringing" if change.kind == "agent_ringing" else "answered"
        if interface:
            self._current[interface] = CurrentCall(uniqueid, number, state)
        frame = json.dumps(
            {
                "type": "screen_pop",
                "state": state,
                "queue": change.queue,
                "uniqueid": uniqueid,
                "number": number,
            }
        )
        for client in list(self.clients):
            if client.kind == "agent" and client.interface == interface:
                self._send(client, frame)

    def _forget_ringing(self, change: Change) -> None:
        """A phone that only rang no longer holds the caller once it stops
        ringing, another phone answers (ring-all) or the caller hangs up."""
        uniqueid = change.data.get("uniqueid")
        interface = change.data.get("interface", "")
        if change.kind == "agent_ring_no_answer":
            stale = [interface]
        else:  # call_answered elsewhere, caller_abandoned
            stale = [
                other
                for other, current in self._current.items()
                if current.state == "ringing" and other != interface
            ]
        for other in stale:
            current = self._current.get(other)
            if current is not None and current.uniqueid == uniqueid:
                del self._current[other]

    def set_overdue_forwards(
        self, counts: dict[str, int], escalations: Sequence[tuple[str, str, str]] = ()
    ) -> None:
        """The forwarding job's latest count of overdue forwards per hotline;
        each new escalation goes to its hotline's wallboards as an event."""
        changed = counts != self.overdue_forwards
        self.overdue_forwards = dict(counts)
        for hotline_id, case_code, unit_code in escalations:
            frame = json.dumps(
                {"type": "forward_escalation", "hotline_id": hotline_id,
                 "case_code": case_code, "unit_code": unit_code}
            )  # fmt: skip
            for client in list(self.clients):
                scope = client.scope
                if client.kind == "wallboard" and (scope is None or scope.sees_hotline(hotline_id)):
                    self._send(client, frame)
        if changed and not self._dirty and self._loop is not None:
            self._dirty = True
            self._loop.call_soon(self._flush)

    def current_call(self, interface: str) -> CurrentCall | None:
        """The call ringing or last answered at this phone, if the hub saw it."""
        return self._current.get(interface) if interface else None

    def _caller_from_model(self, queue: str, uniqueid: str) -> str:
        if self.source is None:
            return ""
        for node in self.source.snapshot().values():
            for caller in node.get("queues", {}).get(queue, {}).get("callers", []):
                if caller["uniqueid"] == uniqueid:
                    return str(caller["caller_id"])
        return ""

    def _flush(self) -> None:
        self._dirty = False
        if not self.clients:
            return
        board = self.board()
        # One frame per kind of client and hotline, serialised once.
        frames: dict[tuple[str, str | None], str] = {}
        for client in list(self.clients):
            key = (client.kind, _hotline_of(client))
            if key not in frames:
                frames[key] = self._frame_for(client, board)
            self._send(client, frames[key])
        self.frames_sent += 1

    def _frame_for(self, client: Client, board: dict[str, Any]) -> str:
        """One client's board frame: only the queues and agents of the client's
        hotline; agents never get the waiting callers' numbers."""
        shown = scoped_board(client.scope, self.config, board)
        if client.kind == "agent":
            shown = agent_board(shown)
        return json.dumps({"type": "wallboard", "board": shown})

    # -- the picture ---------------------------------------------------------------

    def board(self) -> dict[str, Any]:
        """The wallboard: per queue its callers, agents with time in state, today's
        figures and alerts, summed over the nodes serving it (a hotline's queue on
        its owner and, after a failover, on the standby), and each node's AMI
        link: up or down since when, and the hotlines on standby while their
        owner is down."""
        now = time.time()
        snapshot = self.source.snapshot() if self.source is not None else {}
        config = self.config
        titles = {q.id: q.title for q in config.queues}
        agents_by_iface = {f"PJSIP/{a.phone}": a for a in config.agents}
        web_cfg = config.web
        several = len(snapshot) > 1
        # A node that is down shows no callers or agents (its calls are lost, its
        # picture is stale); today's figures it counted still count.
        live_nodes = {
            node_id
            for node_id, node in snapshot.items()
            if not several or (node.get("up", True) and not node.get("stale"))
        }
        synced = bool(live_nodes) and all(snapshot[n].get("synced") for n in live_nodes)
        queues: dict[str, Any] = {}
        members: dict[str, dict[str, dict[str, Any]]] = {}  # queue → interface → merged
        sums: dict[str, dict[str, float]] = {}
        for node_id, node in snapshot.items():
            live = node_id in live_nodes
            for name, state in node.get("queues", {}).items():
                entry = queues.setdefault(
                    name,
                    {
                        "id": name,
                        "title": titles.get(name, name),
                        "callers": [],
                        "agents": [],
                        "today": {"answered": 0, "abandoned": 0},
                        "longest_wait_seconds": 0.0,
                        "service_level_percent": 100.0,
                        "alerts": [],
                        "nodes": [],
                    },
                )
                today = state["today"]
                entry["today"]["answered"] += today["answered"]
                entry["today"]["abandoned"] += today["abandoned"]
                total = sums.setdefault(name, {"in_sl": 0.0, "wait": 0.0})
                # Older snapshots without the raw figures: rebuilt from the percent.
                total["in_sl"] += today.get(
                    "answered_in_sl", today["answered"] * today["service_level_percent"] / 100
                )
                total["wait"] += today.get(
                    "total_wait_answered_seconds",
                    today["answered"] * today.get("average_wait_seconds", 0.0),
                )
                entry["longest_wait_seconds"] = max(
                    entry["longest_wait_seconds"], today["longest_wait_seconds"]
                )
                if not live:
                    continue
                entry["nodes"].append(node_id)
                for caller in state["callers"]:
                    entry["callers"].append({**caller, "node": node_id})
                for member in state["members"]:
                    _merge_member(members.setdefault(name, {}), member, node_id)
        seen: set[tuple[str, str]] = set()
        for name, entry in queues.items():
            callers = entry["callers"]
            if len(entry["nodes"]) > 1:
                # Callers on two nodes (the owner's, then the standby's after a
                # failover) in one line: the longest waiting first.
                callers.sort(key=lambda c: -c["wait_seconds"])
                for position, caller in enumerate(callers, start=1):
                    caller["position"] = position
            entry["longest_wait_seconds"] = max(
                [entry["longest_wait_seconds"], *(c["wait_seconds"] for c in callers)]
            )
            entry["current_longest_wait"] = max([c["wait_seconds"] for c in callers], default=0.0)
            answered = entry["today"]["answered"]
            if answered:
                entry["service_level_percent"] = round(100.0 * sums[name]["in_sl"] / answered, 1)
                entry["today"]["average_wait_seconds"] = round(sums[name]["wait"] / answered, 1)
            else:
                entry["today"]["average_wait_seconds"] = 0.0
            for interface, member in sorted(members.get(name, {}).items()):
                key = (name, interface)
                seen.add(key)
                previous = self._since.get(key)
                if previous is None or previous[0] != member["state"]:
                    self._since[key] = (member["state"], now)
                agent = agents_by_iface.get(interface)
                entry["agents"].append(
                    {
                        **member,
                        "agent_id": agent.id if agent else None,
                        "seconds_in_state": round(now - self._since[key][1]),
                    }
                )
        for key in set(self._since) - seen:
            del self._since[key]
        nodes, on_standby = _node_states(config, snapshot)
        for entry in queues.values():
            answered, abandoned = entry["today"]["answered"], entry["today"]["abandoned"]
            total = answered + abandoned
            entry["today"]["abandon_percent"] = round(100.0 * abandoned / total, 1) if total else 0
            if entry.get("current_longest_wait", 0) >= web_cfg.alert_longest_wait_seconds:
                entry["alerts"].append("longest_wait")
            if total and entry["today"]["abandon_percent"] > web_cfg.alert_abandon_percent:
                entry["alerts"].append("abandon_rate")
            entry["on_standby"] = config.queue_owner(entry["id"]) in on_standby
        return {
            "at": now,
            "event_at": self.last_event_at,
            "synced": synced,
            "queues": [queues[k] for k in sorted(queues)],
            "nodes": nodes,
            "on_standby": sorted(on_standby),
            "overdue_forwards": dict(self.overdue_forwards),
        }

    # -- clients -------------------------------------------------------------------

    def _send(self, client: Client, frame: str) -> None:
        try:
            client.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            logger.warning("dropping a %s websocket that fell behind", client.kind)
            self._drop(client)
            if not client.ws.closed:
                closing = asyncio.ensure_future(client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    def _drop(self, client: Client) -> None:
        self.clients.discard(client)
        if client.task is not None:
            client.task.cancel()

    async def _writer(self, client: Client) -> None:
        while True:
            frame = await client.outbox.get()
            await client.ws.send_str(frame)

    async def serve(
        self,
        request: web.Request,
        kind: str,
        interface: str = "",
        scope: AccessScope | None = None,
    ) -> web.WebSocketResponse:
        """Run one websocket until it closes: first the whole board (as
        ``scope`` may see it), then changes."""
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        client = Client(ws, kind, interface, scope)
        client.task = asyncio.create_task(self._writer(client))
        self.clients.add(client)
        self._send(client, self._frame_for(client, self.board()))
        try:
            async for _message in ws:
                pass  # the page only listens; actions go through POST with CSRF
        finally:
            self._drop(client)
            if client.task is not None:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await client.task
        return ws


def scoped_board(
    scope: AccessScope | None, config: HotlineConfig, board: dict[str, Any]
) -> dict[str, Any]:
    """The board as ``scope`` may see it (:meth:`AccessScope.board`), and of the
    nodes only those serving the user's hotline, naming no other hotline."""
    if scope is None or scope.sees_everything:
        return board
    shown = scope.board(config, board)
    serving = {n.id for h in config.hotlines if scope.sees_hotline(h.id)
               for n in config.cluster.serving(h.id)}  # fmt: skip
    nodes = [
        {**node, "hotlines": [h for h in node["hotlines"] if scope.sees_hotline(h)]}
        for node in board.get("nodes", [])
        if not config.cluster.nodes or node["id"] in serving
    ]
    standby = [h for h in board.get("on_standby", []) if scope.sees_hotline(h)]
    return {**shown, "nodes": nodes, "on_standby": standby}


def _hotline_of(client: Client) -> str | None:
    """The hotline a client's board is limited to; None: every hotline."""
    scope = client.scope
    return None if scope is None or scope.sees_everything else scope.hotline_id or ""


# When one agent is a member of a queue on two nodes (owner and standby), the
# board shows them once, in the state of the node where they are most engaged.
_STATE_RANK = {"talking": 0, "ringing": 1, "wrapup": 2, "paused": 3, "idle": 4, "unavailable": 5}


def _merge_member(merged: dict[str, dict[str, Any]], member: dict[str, Any], node: str) -> None:
    interface = member["interface"]
    previous = merged.get(interface)
    if previous is None:
        merged[interface] = {**member, "nodes": [node]}
        return
    calls = previous["calls_taken"] + member.get("calls_taken", 0)
    nodes = [*previous["nodes"], node]
    if _STATE_RANK.get(member["state"], 9) < _STATE_RANK.get(previous["state"], 9):
        merged[interface] = {**member}
    merged[interface]["calls_taken"] = calls
    merged[interface]["nodes"] = nodes


def _node_states(
    config: HotlineConfig, snapshot: dict[str, Any]
) -> tuple[list[dict[str, Any]], set[str]]:
    """Each node's AMI link (up or down, since when, role, hotlines owned) and
    the hotlines on standby: those whose owner node is down."""
    nodes = [
        {
            "id": node_id,
            "up": bool(node.get("up", node.get("synced"))),
            "since": node.get("since", 0.0),
            "role": node.get("role", ""),
            "hotlines": list(node.get("hotlines", [])),
        }
        for node_id, node in sorted(snapshot.items())
    ]
    on_standby: set[str] = set()
    if config.cluster.nodes:
        up = {n["id"] for n in nodes if n["up"]}
        for hotline in config.hotlines:
            owner = config.cluster.owner_of(hotline.id)
            if owner is not None and owner.id not in up:
                on_standby.add(hotline.id)
    return nodes, on_standby
