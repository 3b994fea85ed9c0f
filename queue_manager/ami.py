"""One AMI connection per Asterisk node, kept alive and resynchronised.

panoramisk's :class:`Manager` matches responses to actions; the reader that
turns bytes into messages is ours (:mod:`ivr.asterisk.ami_protocol`: whole
UTF-8 characters, bad input counted and skipped), and so is the supervision:
panoramisk reconnects at a fixed interval and its keep-alive never notices a
silent peer, so :class:`AmiLink`
connects itself, backs off exponentially, pings with a deadline, and after
every login asks ``QueueStatus`` and hands the answer to the live model before
anything else (roster, pauses) is done on that node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

from panoramisk import Manager
from panoramisk.message import Message

from ivr.asterisk.ami_gate import GatedManager, UnsafeAmiAction
from ivr.asterisk.ami_protocol import AmiMessage, AmiProtocol, AmiStreamCounters
from queue_manager.model import LiveModel

logger = logging.getLogger(__name__)

# Responses Asterisk gives when the wanted state already holds: success for us.
ALREADY_DONE = ("already there", "not there", "not a member")


class AmiError(RuntimeError):
    """An action failed, or the node is not connected."""


class _Manager(GatedManager):
    """panoramisk's Manager without its own reconnect timer: the link decides.
    Every action passes the AMI gate (:mod:`ivr.asterisk.ami_gate`)."""

    def __init__(self, on_lost: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._on_lost()


class AmiLink:
    """Keeps one node's AMI session and its :class:`LiveModel` true.

    ``on_synced`` runs after each resync (the queue manager applies the roster
    there). ``record`` receives every event as one JSON line (for fixtures and
    the benchmark).
    """

    def __init__(
        self,
        node: str,
        host: str,
        port: int,
        username: str,
        secret: str,
        model: LiveModel,
        *,
        on_synced: Callable[[AmiLink], Awaitable[None]] | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        ping_interval: float = 10.0,
        action_timeout: float = 10.0,
        record: IO[str] | None = None,
    ) -> None:
        self.node, self.host, self.port = node, host, port
        self._username, self._secret = username, secret
        self.model = model
        self.on_synced = on_synced
        self.backoff = backoff
        self.ping_interval = ping_interval
        self.action_timeout = action_timeout
        self.record = record
        self.connected = asyncio.Event()
        # Whether the node is logged in, and since when (epoch s): the wallboard
        # shows a node down and since when, and its hotlines on the standby.
        self.up = False
        self.since = time.time()
        self.synced = asyncio.Event()
        self.sync_count = 0  # how many times the model was rebuilt from QueueStatus
        self.logins = 0  # sessions that logged in; /metrics counts those after the first
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._buffer: list[dict[str, Any]] | None = None  # events held during a resync
        # What the reader received and skipped, over every session of this link.
        self.counters = AmiStreamCounters()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-{self.node}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop()

    def cut(self) -> None:
        """Drop the socket as a network fault would (tests); the link reconnects."""
        if self._manager is not None and self._manager.protocol is not None:
            self._manager.protocol.transport.abort()

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            try:
                await self._session()
                delay = self.backoff[0]  # a session that got going resets the backoff
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("AMI %s (%s:%s): %s", self.node, self.host, self.port, exc)
            self._drop()
            wait = delay * (0.8 + 0.4 * random.random())
            logger.info("AMI %s: reconnecting in %.1f s", self.node, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        manager = _Manager(
            self._lost.set,
            host=self.host,
            port=self.port,
            username=self._username,
            secret=self._secret,
            ping_delay=10**6,  # our own keep-alive below
            loop=loop,
            forgetable_actions=(),
        )
        manager.counters = self.counters
        manager.register_event("*", self._on_event)
        transport_protocol = await asyncio.wait_for(
            loop.create_connection(AmiProtocol, self.host, self.port), self.action_timeout
        )
        made: asyncio.Future[Any] = loop.create_future()
        made.set_result(transport_protocol)
        self._manager = manager
        manager.connection_made(made)
        login = await asyncio.wait_for(manager.authenticated_future, self.action_timeout)
        if not login.success:
            raise AmiError(f"login refused: {login.get('Message', '')}")
        self.logins += 1
        self.connected.set()
        self._set_up(True)
        logger.info("AMI %s: logged in at %s:%s", self.node, self.host, self.port)
        await self.resync()
        if self.on_synced is not None:
            await self.on_synced(self)
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                break
            await self.send({"Action": "Ping"})  # raises when the peer went silent
        raise AmiError("connection lost")

    def _set_up(self, up: bool) -> None:
        if up != self.up:
            self.up, self.since = up, time.time()

    def _drop(self) -> None:
        self.connected.clear()
        self.synced.clear()
        self._set_up(False)
        # The picture is no longer current (a dead node's callers are gone):
        # readers that sum nodes leave it out until the next resync.
        self.model.stale = True
        manager, self._manager = self._manager, None
        if manager is None:
            return
        # Actions in flight will never be answered on this socket: fail them now
        # instead of letting panoramisk replay them on a later connection.
        for action in list(manager.awaiting_actions):
            if not action.future.done():
                action.future.set_exception(AmiError("AMI connection lost"))
        manager.awaiting_actions.clear()
        if manager.protocol is not None:
            for action in list(manager.protocol.responses.values()):
                if not action.future.done():
                    action.future.set_exception(AmiError("AMI connection lost"))
            manager.protocol.responses.clear()
        manager.close()

    # -- events and actions -----------------------------------------------------------

    def _on_event(self, _manager: Manager, message: Message) -> None:
        # A plain dict: the model reads Asterisk's header names. Our reader's
        # messages carry it already (the edge's hot path).
        event = message.fields if isinstance(message, AmiMessage) else dict(message.items())
        if self.record is not None:
            self.record.write(json.dumps(event, ensure_ascii=False) + "\n")
        if self._buffer is not None:
            self._buffer.append(event)
        else:
            self.model.apply(event)

    async def resync(self) -> None:
        """Rebuild the model from ``QueueStatus``; events that arrive meanwhile are
        applied after it (they are as new as the answer or newer)."""
        self._buffer = []
        try:
            answer = await self.send({"Action": "QueueStatus"}, as_list=True)
            events = [dict(m.items()) for m in answer if m.get("Event")]
            if self.record is not None:
                for event in events:
                    self.record.write(json.dumps(event, ensure_ascii=False) + "\n")
            self.model.resync(events)
        finally:
            held, self._buffer = self._buffer, None
        for event in held:
            self.model.apply(event)
        self.sync_count += 1
        self.synced.set()
        logger.info(
            "AMI %s: resynced (%d queues, %d events held during the resync)",
            self.node,
            len(self.model.queues),
            len(held),
        )

    async def send(self, action: Mapping[str, Any], as_list: bool = False) -> Any:
        """Send an action and wait for its answer; :class:`AmiError` on failure
        (except answers meaning "already so", see :data:`ALREADY_DONE`)."""
        manager = self._manager
        if manager is None or not self.connected.is_set():
            raise AmiError(f"AMI node {self.node} is not connected")
        # as_list explicit: panoramisk guesses from the text and takes QueueAdd's
        # "Added interface to queue" for the start of a list that never ends.
        try:
            future = manager.send_action(dict(action), as_list=as_list)
        except UnsafeAmiAction as exc:
            raise AmiError(f"{exc} (nothing sent to {self.node})") from None
        try:
            answer = await asyncio.wait_for(future, self.action_timeout)
        except TimeoutError:
            self._lost.set()
            raise AmiError(f"{action.get('Action')} unanswered on {self.node}") from None
        first = answer[0] if isinstance(answer, list) else answer
        if first.get("Response") == "Error":
            text = str(first.get("Message", ""))
            if any(phrase in text.lower() for phrase in ALREADY_DONE):
                logger.debug("%s on %s: %s (already so)", action.get("Action"), self.node, text)
                return answer
            raise AmiError(f"{action.get('Action')} on {self.node}: {text}")
        return answer
