"""Callbacks that keep the caller's place in the queue.

A waiting caller who presses 1 leaves the queue; the FastAGI server opens a case
and writes a :class:`CallbackRequest` with the time the caller joined. This
dispatcher calls them back when they would have reached the head of the queue —
no caller still waiting joined earlier — and an agent is free, one call back per
free agent, retrying a configurable number of times.

Several queue managers may run: a request is claimed with a conditional UPDATE,
so only one of them dials it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.config.destinations import Destination, DestinationKind
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts import channel_variables as v
from ivr.db.executor import DbExecutor
from ivr.db.models import utc_now
from ivr.flow.routing import RoutingTable
from ivr.flow.schedule import OpeningHours
from ivr.queue_records.callbacks import DIALING, FAILED, PENDING
from ivr.queue_records.models import CallbackRequest
from queue_manager.model import IDLE, LiveModel

logger = logging.getLogger(__name__)

RING_SECONDS = 30  # how long the citizen's phone rings per attempt


def national(e164: str) -> str:
    return "0" + e164[3:] if e164.startswith("+84") else e164.lstrip("+")


class CallbackDispatcher:
    def __init__(
        self,
        config: HotlineConfig | ConfigSource,
        sessions: sessionmaker[Session],
        models: dict[str, LiveModel],
        send: Callable[[dict[str, str]], object],
        clock: Callable[[], datetime] = utc_now,
        interval: float = 0.5,
        db: DbExecutor | None = None,
        send_for: Callable[[str], Callable[[dict[str, str]], object]] | None = None,
    ) -> None:
        self.config_source = ConfigSource.of(config)
        # The queue manager's executor; a dispatcher built alone has its own thread.
        self.db = db or DbExecutor("queue-callbacks", 1)
        self.sessions = sessions
        self.models = models
        self.send = send  # an AMI action sender (AmiLink.send of the node)
        # hotline id → the sender of a node serving it that is up (several
        # nodes, issue 15); absent: ``send`` for every hotline.
        self.send_for = send_for
        self.clock = clock
        self.interval = interval
        # Routing table and opening hours of one config, rebuilt when it changes.
        self._views: tuple[HotlineConfig, RoutingTable, OpeningHours] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    def _views_of_current(self) -> tuple[HotlineConfig, RoutingTable, OpeningHours]:
        config = self.config_source.current
        if self._views is None or self._views[0] is not config:
            self._views = (config, RoutingTable(config), OpeningHours(config))
        return self._views

    @property
    def routing(self) -> RoutingTable:
        """The routing table of the current config (built once per config)."""
        return self._views_of_current()[1]

    @property
    def hours(self) -> OpeningHours:
        """The opening hours of the current config (built once per config)."""
        return self._views_of_current()[2]

    def _queue_open(self, queue_id: str, now: datetime) -> bool:
        """A queue outside its hours is not called back from, even with an agent
        still logged in: the caller was promised a call "when the office opens"
        (after hours, at lunch), and an agent may be idle for other work."""
        queue = self.config.queue(queue_id)
        return queue is None or self.hours.is_open(queue.schedule, now)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="queue-callbacks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("callback dispatcher tick failed")
            await asyncio.sleep(self.interval)

    async def tick(self) -> list[int]:
        """One round: expire unanswered attempts, then dial whoever is due."""
        now = self.clock()
        await self.db.run(self._expire_attempts, now)
        due = await self.db.run(self._due, now)
        dialled = []
        dialing: dict[str, int] = {}  # queue → call backs ringing, read once per tick
        for request in due:
            if request.queue not in dialing:
                dialing[request.queue] = await self.db.run(self._dialing, request.queue)
            if not self._queue_open(request.queue, now):
                continue
            if not self._may_call_back(request, dialing[request.queue]):
                continue
            if await self.db.run(self._claim, request.id, now):
                dialing[request.queue] += 1
                await self._originate(request)
                dialled.append(request.id)
        return dialled

    def _may_call_back(self, request: CallbackRequest, dialing: int) -> bool:
        """At the head of the queue, with a free agent not already promised to
        another call back (``dialing``: call backs of this queue ringing now).

        Runs on the event loop, so it only reads the live model: the database
        count is taken off the loop by the caller."""
        # Summed over the nodes serving the queue (owner and standby): a caller
        # waiting on either comes first; an agent (a member on both) is free
        # when idle on a node and busy on none.
        now = time.time()
        found = False
        idle: set[str] = set()
        busy: set[str] = set()
        for model in self.models.values():
            if model.stale:
                continue  # a node that is down: its picture is out of date
            queue = model.queues.get(request.queue)
            if queue is None:
                continue
            found = True
            if any(caller.joined_at < request.joined_at for caller in queue.callers.values()):
                return False
            for member in queue.members.values():
                (idle if member.state(now) == IDLE else busy).add(member.interface)
        return found and len(idle - busy) > dialing

    def _dialing(self, queue: str) -> int:
        """Call backs of ``queue`` ringing now (a query: call it off the loop)."""
        with self.sessions() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        CallbackRequest.queue == queue, CallbackRequest.status == DIALING
                    )
                )
                or 0
            )

    def _due(self, now: datetime) -> list[CallbackRequest]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(CallbackRequest)
                    .where(CallbackRequest.status == PENDING)
                    .where(CallbackRequest.next_attempt_at <= now)
                    .order_by(CallbackRequest.joined_at)
                )
            )

    def _claim(self, request_id: int, now: datetime) -> bool:
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == request_id, CallbackRequest.status == PENDING)
                .values(
                    status=DIALING,
                    attempts=CallbackRequest.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=RING_SECONDS + 15),
                )
            )
            return bool(cast(CursorResult[Any], claimed).rowcount)

    def _expire_attempts(self, now: datetime) -> None:
        """A dialled call back nobody answered goes back to pending, or fails."""
        with self.sessions.begin() as session:
            stale = session.scalars(
                select(CallbackRequest).where(
                    CallbackRequest.status == DIALING, CallbackRequest.next_attempt_at <= now
                )
            )
            for request in stale:
                queue = self.config.queue(request.queue)
                attempts = queue.callback_attempts if queue else 3
                retry = queue.callback_retry_seconds if queue else 120
                request.last_result = "no answer"
                if request.attempts >= attempts:
                    request.status = FAILED
                    logger.warning("callback %s failed after %s attempts", request.id, attempts)
                else:
                    request.status = PENDING
                    request.next_attempt_at = now + timedelta(seconds=retry)

    async def _originate(self, request: CallbackRequest) -> None:
        # The request's hotline, else its queue's owner; never another hotline's
        # number and caller id on the citizen's phone.
        hotline = self.config.hotline_or_sole(request.hotline_id) or self.config.hotline_or_sole(
            self.config.queue_owner(request.queue)
        )
        if hotline is None:
            logger.error("callback %s: unknown hotline %r; not called", request.id,
                         request.hotline_id)  # fmt: skip
            await self.db.run(self._give_up, request.id, "unknown hotline")
            return
        target = self.routing.route_for(
            Destination(DestinationKind.TEL, national(request.caller_number)), hotline
        ).targets[0]
        variables = ",".join(
            [
                f"{v.QUEUE}={request.queue}",
                f"{v.CALLBACK_ID}={request.id}",
                f"{v.CALLBACK_NUMBER}={national(request.caller_number)}",
                f"{v.HOTLINE}={hotline.id}",
                f"{v.FAILURE_QUEUE}={hotline.failure_destination.argument}",
                f"CHANNEL(language)={hotline.language}",
            ]
        )
        action = {
            "Action": "Originate",
            "Channel": target.dial_string,
            "Context": "hotline-callback",
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(RING_SECONDS * 1000),
            "CallerID": f'"{hotline.name[:40]}" <{hotline.numbers[0]}>',
            "Variable": variables,
            "Async": "true",
        }
        logger.info("calling back %s for queue %s", request.caller_number, request.queue)
        try:
            send = self.send if self.send_for is None else self.send_for(hotline.id)
            result = send(action)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        except Exception as exc:
            logger.warning("originate for callback %s failed: %s", request.id, exc)
            await self.db.run(self._release, request.id, str(exc)[:64])

    def _give_up(self, request_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == request_id)
                .values(status=FAILED, last_result=reason)
            )

    def _release(self, request_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == request_id)
                .values(status=PENDING, last_result=reason)
            )
