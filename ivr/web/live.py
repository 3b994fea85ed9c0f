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
        shown = client.scope.board(self.config, board) if client.scope is not None else board
        if client.kind == "agent":
            shown = agent_board(shown)
        return json.dumps({"type": "wallboard", "board": shown})

    # -- the picture ---------------------------------------------------------------

    def board(self) -> dict[str, Any]:
        """The wallboard: per queue its callers, agents with time in state, today's
        figures and alerts; merged over nodes (a queue may live on several)."""
        now = time.time()
        snapshot = self.source.snapshot() if self.source is not None else {}
        titles = {q.id: q.title for q in self.config.queues}
        agents_by_iface = {f"PJSIP/{a.phone}": a for a in self.config.agents}
        web_cfg = self.config.web
        queues: dict[str, Any] = {}
        synced = bool(snapshot) and all(n.get("synced") for n in snapshot.values())
        seen: set[tuple[str, str]] = set()
        for node in snapshot.values():
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
                    },
                )
                entry["callers"].extend(state["callers"])
                today = state["today"]
                entry["today"]["answered"] += today["answered"]
                entry["today"]["abandoned"] += today["abandoned"]
                entry["longest_wait_seconds"] = max(
                    entry["longest_wait_seconds"],
                    today["longest_wait_seconds"],
                    *(c["wait_seconds"] for c in state["callers"]),
                )
                entry["service_level_percent"] = today["service_level_percent"]
                entry["current_longest_wait"] = max(
                    [c["wait_seconds"] for c in entry["callers"]], default=0.0
                )
                for member in state["members"]:
                    key = (name, member["interface"])
                    seen.add(key)
                    previous = self._since.get(key)
                    if previous is None or previous[0] != member["state"]:
                        self._since[key] = (member["state"], now)
                    agent = agents_by_iface.get(member["interface"])
                    entry["agents"].append(
                        {
                            **member,
                            "agent_id": agent.id if agent else None,
                            "seconds_in_state": round(now - self._since[key][1]),
                        }
                    )
        for key in set(self._since) - seen:
            del self._since[key]
        for entry in queues.values():
            answered, abandoned = entry["today"]["answered"], entry["today"]["abandoned"]
            total = answered + abandoned
            entry["today"]["abandon_percent"] = round(100.0 * abandoned / total, 1) if total else 0
            if entry.get("current_longest_wait", 0) >= web_cfg.alert_longest_wait_seconds:
                entry["alerts"].append("longest_wait")
            if total and entry["today"]["abandon_percent"] > web_cfg.alert_abandon_percent:
                entry["alerts"].append("abandon_rate")
        return {
            "at": now,
            "event_at": self.last_event_at,
            "synced": synced,
            "queues": [queues[k] for k in sorted(queues)],
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


def _hotline_of(client: Client) -> str | None:
    """The hotline a client's board is limited to; None: every hotline."""
    scope = client.scope
    return None if scope is None or scope.sees_everything else scope.hotline_id or ""
