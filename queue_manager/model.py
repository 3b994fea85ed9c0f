"""The live picture of one Asterisk node's queues, fed by AMI events.

Pure and synchronous: events are plain ``dict``s with Asterisk's header names,
so the model is tested and benchmarked without a PBX. After every (re)connect
the connection layer calls :meth:`LiveModel.resync` with the ``QueueStatus``
answer, which replaces the whole picture, so an event missed while the socket
was down cannot leave the state wrong.

Subscribers (the statistics recorder, the web console) receive :class:`Change`
objects; a late joiner reads :meth:`LiveModel.snapshot` first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

Event = Mapping[str, Any]

# Asterisk device states (ast_device_state) as QueueMember* events carry them.
DEVICE_UNKNOWN, DEVICE_NOT_INUSE, DEVICE_INUSE, DEVICE_BUSY = 0, 1, 2, 3
DEVICE_INVALID, DEVICE_UNAVAILABLE, DEVICE_RINGING, DEVICE_RINGINUSE, DEVICE_ONHOLD = 4, 5, 6, 7, 8
_TALKING_DEVICE = frozenset({DEVICE_INUSE, DEVICE_BUSY, DEVICE_ONHOLD})
_RINGING_DEVICE = frozenset({DEVICE_RINGING, DEVICE_RINGINUSE})


class AgentState(StrEnum):
    """An agent's state as supervisors see it (the wallboard, the API)."""

    IDLE = "idle"
    RINGING = "ringing"
    TALKING = "talking"
    PAUSED = "paused"
    WRAPUP = "wrapup"
    UNAVAILABLE = "unavailable"


# The names the console and tests have imported from here.
IDLE, RINGING, TALKING = AgentState.IDLE, AgentState.RINGING, AgentState.TALKING
PAUSED, WRAPUP, UNAVAILABLE = AgentState.PAUSED, AgentState.WRAPUP, AgentState.UNAVAILABLE


class ChangeKind(StrEnum):
    """What a :class:`Change` reports. Subscribers dispatch on it (the
    statistics recorder through a table checked to cover every kind)."""

    CALLER_JOINED = "caller_joined"
    CALLER_LEFT = "caller_left"  # left the queue unanswered (timeout, key 1)
    CALLER_ABANDONED = "caller_abandoned"  # hung up while waiting
    CALLER_LOST = "caller_lost"  # gone from the queue at a resync
    AGENT_RINGING = "agent_ringing"
    AGENT_RING_NO_ANSWER = "agent_ring_no_answer"
    CALL_ANSWERED = "call_answered"
    CALL_COMPLETED = "call_completed"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_PAUSED = "member_paused"
    MEMBER_UNPAUSED = "member_unpaused"
    MEMBER_STATE = "member_state"
    RESYNCED = "resynced"  # the whole picture was replaced


class MalformedEvent(ValueError):
    """An event without a header its kind needs, or with an unreadable value."""


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed. ``kind`` names it (``caller_joined``, ``member_paused``…)."""

    kind: ChangeKind
    node: str
    queue: str
    at: float  # epoch seconds (Asterisk's event time when it sent one)
    data: dict[str, Any]


@dataclass(slots=True)
class WaitingCaller:
    uniqueid: str
    channel: str
    caller_id: str
    position: int
    joined_at: float
    original_position: int
    answered: bool = False
    ringing: set[str] = field(default_factory=set)  # member interfaces being rung


@dataclass(slots=True)
class Member:
    interface: str
    name: str
    membership: str = "dynamic"  # static members come from queues.conf
    paused: bool = False
    paused_reason: str = ""
    device: int = DEVICE_UNKNOWN
    in_call: bool = False
    ringing_for: str | None = None  # caller uniqueid
    talking_to: str | None = None
    last_call_end: float | None = None
    calls_taken: int = 0
    wrapup_seconds: int = 0

    def state(self, now: float) -> AgentState:
        if self.ringing_for is not None or self.device in _RINGING_DEVICE:
            return RINGING
        if self.talking_to is not None or self.in_call or self.device in _TALKING_DEVICE:
            return TALKING
        if self.paused:
            return PAUSED
        if self.device in (DEVICE_UNAVAILABLE, DEVICE_INVALID):
            return UNAVAILABLE
        if self.last_call_end is not None and now < self.last_call_end + self.wrapup_seconds:
            return WRAPUP
        return IDLE


@dataclass(slots=True)
class DailyTotals:
    day: date
    answered: int = 0
    abandoned: int = 0
    answered_in_sl: int = 0
    total_wait_answered: float = 0.0
    longest_wait: float = 0.0


@dataclass(slots=True)
class QueueState:
    name: str
    service_level_seconds: int
    wrapup_seconds: int
    totals: DailyTotals
    callers: dict[str, WaitingCaller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)


def _int(event: Event, key: str, default: int | None = None) -> int:
    raw = event.get(key)
    if raw is None or raw == "":
        if default is None:
            raise MalformedEvent(f"missing {key}")
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise MalformedEvent(f"{key}={raw!r} is not a number") from None


def _req(event: Event, key: str) -> str:
    value = event.get(key)
    if not value:
        raise MalformedEvent(f"missing {key}")
    return str(value)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class LiveModel:
    """Queues, waiting callers and members of one node.

    ``clock`` gives epoch seconds (used when an event has no ``Timestamp``);
    ``queue_settings`` maps queue name → (service level s, wrap-up s) from the
    config, so states and service level follow the hotline's definitions.
    """

    def __init__(
        self,
        node: str = "local",
        *,
        clock: Callable[[], float] = time.time,
        timezone: tzinfo | str = "Asia/Ho_Chi_Minh",
        queue_settings: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.node = node
        self.clock = clock
        self.tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self.queue_settings = dict(queue_settings or {})
        self.queues: dict[str, QueueState] = {}
        self.synced = False
        # Set by the AMI link when its connection drops, cleared by the next
        # resync: a stale picture is left out where nodes are summed.
        self.stale = False
        self.events_seen = 0
        self.events_skipped = 0
        self._subscribers: list[Callable[[Change], None]] = []
        self._handlers: dict[str, Callable[[Event, float], None]] = {
            "QueueCallerJoin": self._caller_join,
            "QueueCallerLeave": self._caller_leave,
            "QueueCallerAbandon": self._caller_abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._agent_ring_no_answer,
            "AgentDump": self._agent_ring_no_answer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "QueueMemberAdded": self._member_added,
            "QueueMemberRemoved": self._member_removed,
            "QueueMemberStatus": self._member_status,
            "QueueMemberPause": self._member_pause,
            "QueueMemberPenalty": self._member_update,
            "QueueMemberRinginuse": self._member_update,
        }

    # -- subscribers -------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback`` with every change; returns the unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, kind: ChangeKind, queue: str, at: float, **data: Any) -> None:
        if not self._subscribers:
            return
        change = Change(kind, self.node, queue, at, data)
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                logger.exception("subscriber %r failed on %s", callback, kind)

    # -- events ------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one AMI event; unknown kinds are ignored, malformed ones logged and skipped."""
        self.events_seen += 1
        handler = self._handlers.get(str(event.get("Event", "")))
        if handler is None:
            return
        try:
            stamp = event.get("Timestamp")
            at = float(stamp) if stamp else self.clock()
            handler(event, at)
        except (MalformedEvent, ValueError, TypeError) as exc:
            self.events_skipped += 1
            logger.warning(
                "skipped malformed %s event on %s: %s", event.get("Event"), self.node, exc
            )

    def _queue(self, event: Event) -> QueueState:
        name = _req(event, "Queue")
        queue = self.queues.get(name)
        if queue is None:
            sl, wrapup = self.queue_settings.get(name, (30, 0))
            queue = self.queues[name] = QueueState(name, sl, wrapup, DailyTotals(self._today()))
        return queue

    def _today(self, at: float | None = None) -> date:
        return datetime.fromtimestamp(self.clock() if at is None else at, self.tz).date()

    def _totals(self, queue: QueueState, at: float) -> DailyTotals:
        day = self._today(at)
        if queue.totals.day != day:
            queue.totals = DailyTotals(day)
        return queue.totals

    def _caller_join(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        uniqueid = _req(event, "Uniqueid")
        position = _int(event, "Position", 0)
        queue.callers[uniqueid] = WaitingCaller(
            uniqueid,
            str(event.get("Channel", "")),
            str(event.get("CallerIDNum", "")),
            position,
            at,
            position,
        )
        self._emit(
            ChangeKind.CALLER_JOINED,
            queue.name,
            at,
            uniqueid=uniqueid,
            linkedid=event.get("Linkedid", ""),
            channel=event.get("Channel", ""),
            caller_id=event.get("CallerIDNum", ""),
            position=position,
        )

    def _renumber(self, queue: QueueState) -> None:
        for index, caller in enumerate(
            sorted(queue.callers.values(), key=lambda c: c.position), start=1
        ):
            caller.position = index

    def _caller_leave(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        uniqueid = _req(event, "Uniqueid")
        caller = queue.callers.pop(uniqueid, None)
        for member in queue.members.values():
            if member.ringing_for == uniqueid:
                member.ringing_for = None
        self._renumber(queue)
        if caller is None:
            return
        if not caller.answered:  # timed out, abandoned or sent on: still a wait
            totals = self._totals(queue, at)
            totals.longest_wait = max(totals.longest_wait, at - caller.joined_at)
        self._emit(
            ChangeKind.CALLER_LEFT,
            queue.name,
            at,
            uniqueid=uniqueid,
            waited=at - caller.joined_at,
            position=_int(event, "Position", caller.position),
            original_position=caller.original_position,
        )

    def _caller_abandon(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        uniqueid = _req(event, "Uniqueid")
        waited = float(_int(event, "HoldTime", 0))
        totals = self._totals(queue, at)
        totals.abandoned += 1
        totals.longest_wait = max(totals.longest_wait, waited)
        self._emit(
            ChangeKind.CALLER_ABANDONED,
            queue.name,
            at,
            uniqueid=uniqueid,
            waited=waited,
            position=_int(event, "Position", 0),
            original_position=_int(event, "OriginalPosition", 0),
        )

    def _member_of(self, queue: QueueState, event: Event, keep: bool = True) -> Member:
        """The member an event is about. QueueMember* events carry a member's whole
        state and may introduce one (resync confirms it); Agent* events also come
        for a member removed mid-call, so they never bring it back (``keep=False``)."""
        interface = _req(event, "Interface")
        member = queue.members.get(interface)
        if member is None:
            member = Member(
                interface,
                str(event.get("MemberName", interface)),
                wrapup_seconds=queue.wrapup_seconds,
            )
            if keep:
                queue.members[interface] = member
        return member

    def _agent_called(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event, keep=False)
        uniqueid = _req(event, "Uniqueid")
        member.ringing_for = uniqueid
        caller = queue.callers.get(uniqueid)
        if caller is not None:
            caller.ringing.add(member.interface)
        self._emit(
            ChangeKind.AGENT_RINGING,
            queue.name,
            at,
            interface=member.interface,
            member=member.name,
            uniqueid=uniqueid,
        )

    def _agent_ring_no_answer(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event, keep=False)
        uniqueid = str(event.get("Uniqueid", ""))
        if member.ringing_for == uniqueid or not uniqueid:
            member.ringing_for = None
        caller = queue.callers.get(uniqueid)
        if caller is not None:
            caller.ringing.discard(member.interface)
        if event.get("Event") == "AgentRingNoAnswer":
            self._emit(
                ChangeKind.AGENT_RING_NO_ANSWER,
                queue.name,
                at,
                interface=member.interface,
                member=member.name,
                uniqueid=uniqueid,
                ring_ms=_int(event, "RingTime", 0) * 1000,
            )

    def _agent_connect(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event, keep=False)
        uniqueid = _req(event, "Uniqueid")
        hold = float(_int(event, "HoldTime", 0))
        member.ringing_for = None
        member.talking_to = uniqueid
        caller = queue.callers.get(uniqueid)
        if caller is not None:
            caller.ringing.clear()
            caller.answered = True
        for other in queue.members.values():
            if other.ringing_for == uniqueid:
                other.ringing_for = None
        totals = self._totals(queue, at)
        totals.answered += 1
        totals.total_wait_answered += hold
        totals.longest_wait = max(totals.longest_wait, hold)
        if hold <= queue.service_level_seconds:
            totals.answered_in_sl += 1
        self._emit(
            ChangeKind.CALL_ANSWERED,
            queue.name,
            at,
            interface=member.interface,
            member=member.name,
            uniqueid=uniqueid,
            waited=hold,
            ring_s=_int(event, "RingTime", 0),
            agent_uniqueid=event.get("DestUniqueid", ""),
        )

    def _agent_complete(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event, keep=False)
        uniqueid = _req(event, "Uniqueid")
        if member.talking_to == uniqueid:
            member.talking_to = None
        member.last_call_end = at
        member.calls_taken += 1
        self._emit(
            ChangeKind.CALL_COMPLETED,
            queue.name,
            at,
            interface=member.interface,
            member=member.name,
            uniqueid=uniqueid,
            waited=_int(event, "HoldTime", 0),
            talked=_int(event, "TalkTime", 0),
            reason=event.get("Reason", ""),
        )

    def _fill_member(self, member: Member, event: Event) -> None:
        member.name = str(event.get("MemberName") or event.get("Name") or member.name)
        member.membership = str(event.get("Membership", member.membership))
        member.paused = _flag(event.get("Paused", member.paused))
        member.paused_reason = str(event.get("PausedReason", "")) if member.paused else ""
        member.device = _int(event, "Status", member.device)
        member.in_call = _flag(event.get("InCall", member.in_call))
        member.calls_taken = _int(event, "CallsTaken", member.calls_taken)
        last_call = _int(event, "LastCall", 0)
        if last_call:
            member.last_call_end = float(last_call)
        wrapup = _int(event, "Wrapuptime", 0)
        if wrapup:
            member.wrapup_seconds = wrapup

    def _member_added(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        interface = _req(event, "Interface")
        member = Member(interface, interface, wrapup_seconds=queue.wrapup_seconds)
        self._fill_member(member, event)
        queue.members[interface] = member
        self._emit(
            ChangeKind.MEMBER_ADDED,
            queue.name,
            at,
            interface=interface,
            member=member.name,
            paused=member.paused,
        )
        if member.paused:  # added paused (a pause restored): as the resync reports it
            self._emit(
                ChangeKind.MEMBER_PAUSED,
                queue.name,
                at,
                interface=interface,
                member=member.name,
                reason=member.paused_reason,
            )

    def _member_removed(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        interface = _req(event, "Interface")
        member = queue.members.pop(interface, None)
        self._emit(
            ChangeKind.MEMBER_REMOVED,
            queue.name,
            at,
            interface=interface,
            member=member.name if member else event.get("MemberName", ""),
        )

    def _member_status(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event)
        before = member.state(at)
        self._fill_member(member, event)
        after = member.state(at)
        if after != before:
            self._emit(
                ChangeKind.MEMBER_STATE,
                queue.name,
                at,
                interface=member.interface,
                member=member.name,
                state=after,
            )

    def _member_pause(self, event: Event, at: float) -> None:
        queue = self._queue(event)
        member = self._member_of(queue, event)
        self._fill_member(member, event)
        self._emit(
            ChangeKind.MEMBER_PAUSED if member.paused else ChangeKind.MEMBER_UNPAUSED,
            queue.name,
            at,
            interface=member.interface,
            member=member.name,
            reason=member.paused_reason,
        )

    def _member_update(self, event: Event, at: float) -> None:
        self._fill_member(self._member_of(self._queue(event), event), event)

    # -- resync ------------------------------------------------------------------

    def resync(self, status_events: Iterable[Event]) -> None:
        """Replace the whole picture with a ``QueueStatus`` answer (QueueParams,
        QueueMember and QueueEntry events). Today's totals are kept: Asterisk's
        counters are since its start, ours since local midnight."""
        now = self.clock()
        old = self.queues
        fresh: dict[str, QueueState] = {}
        for event in status_events:
            try:
                kind = event.get("Event")
                if kind not in ("QueueParams", "QueueMember", "QueueEntry"):
                    continue
                name = _req(event, "Queue")
                queue = fresh.get(name)
                if queue is None:
                    sl, wrapup = self.queue_settings.get(name, (30, 0))
                    previous = old.get(name)
                    totals = previous.totals if previous else DailyTotals(self._today(now))
                    queue = fresh[name] = QueueState(name, sl, wrapup, totals)
                if kind == "QueueMember":
                    interface = _req(event, "Location")
                    member = Member(interface, interface, wrapup_seconds=queue.wrapup_seconds)
                    self._fill_member(member, event)
                    queue.members[interface] = member
                elif kind == "QueueEntry":
                    uniqueid = _req(event, "Uniqueid")
                    position = _int(event, "Position", len(queue.callers) + 1)
                    joined = now - _int(event, "Wait", 0)
                    previous_caller = old[name].callers.get(uniqueid) if name in old else None
                    queue.callers[uniqueid] = WaitingCaller(
                        uniqueid,
                        str(event.get("Channel", "")),
                        str(event.get("CallerIDNum", "")),
                        position,
                        previous_caller.joined_at if previous_caller else joined,
                        previous_caller.original_position if previous_caller else position,
                    )
            except MalformedEvent as exc:
                self.events_skipped += 1
                logger.warning(
                    "skipped malformed %s in QueueStatus on %s: %s",
                    event.get("Event"),
                    self.node,
                    exc,
                )
        self.queues = fresh
        self.synced = True
        self.stale = False
        self._emit_resync_differences(old, fresh, now)
        self._emit(ChangeKind.RESYNCED, "", now)

    def _emit_resync_differences(
        self, old: dict[str, QueueState], fresh: dict[str, QueueState], now: float
    ) -> None:
        """What changed while we were not listening, as ordinary changes, so the
        statistics close sessions and calls that ended unseen."""
        for name in sorted(set(old) | set(fresh)):
            before = old.get(name)
            after = fresh.get(name)
            old_members = before.members if before else {}
            new_members = after.members if after else {}
            for interface, member in old_members.items():
                if interface not in new_members:
                    # unseen: gone while we were not listening (an Asterisk restart
                    # loses dynamic members), not removed by anyone's decision
                    self._emit(
                        ChangeKind.MEMBER_REMOVED,
                        name,
                        now,
                        interface=interface,
                        member=member.name,
                        unseen=True,
                    )
            for interface, member in new_members.items():
                previous = old_members.get(interface)
                if previous is None:
                    self._emit(
                        ChangeKind.MEMBER_ADDED,
                        name,
                        now,
                        interface=interface,
                        member=member.name,
                        paused=member.paused,
                    )
                if member.paused and (previous is None or not previous.paused):
                    self._emit(
                        ChangeKind.MEMBER_PAUSED,
                        name,
                        now,
                        interface=interface,
                        member=member.name,
                        reason=member.paused_reason,
                    )
                elif not member.paused and previous is not None and previous.paused:
                    self._emit(
                        ChangeKind.MEMBER_UNPAUSED,
                        name,
                        now,
                        interface=interface,
                        member=member.name,
                        reason="",
                    )
            old_callers = before.callers if before else {}
            new_callers = after.callers if after else {}
            for uniqueid in old_callers:
                if uniqueid not in new_callers:
                    self._emit(ChangeKind.CALLER_LOST, name, now, uniqueid=uniqueid)

    # -- reading -----------------------------------------------------------------

    def member_interfaces(self, queue: str) -> set[str]:
        state = self.queues.get(queue)
        return set(state.members) if state else set()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready picture for a late joiner (the wallboard's first frame)."""
        now = self.clock()
        queues: dict[str, Any] = {}
        for name, queue in sorted(self.queues.items()):
            totals = self._totals(queue, now)
            callers = sorted(queue.callers.values(), key=lambda c: c.position)
            waits = [now - c.joined_at for c in callers]
            queues[name] = {
                "callers": [
                    {
                        "uniqueid": c.uniqueid,
                        "channel": c.channel,
                        "caller_id": c.caller_id,
                        "position": c.position,
                        "wait_seconds": round(now - c.joined_at, 1),
                        "ringing": sorted(c.ringing),
                    }
                    for c in callers
                ],
                "members": [
                    {
                        "interface": m.interface,
                        "name": m.name,
                        "membership": m.membership,
                        "state": m.state(now),
                        "paused": m.paused,
                        "paused_reason": m.paused_reason,
                        "calls_taken": m.calls_taken,
                    }
                    for m in sorted(queue.members.values(), key=lambda m: m.interface)
                ],
                "today": {
                    "answered": totals.answered,
                    "abandoned": totals.abandoned,
                    "average_wait_seconds": round(totals.total_wait_answered / totals.answered, 1)
                    if totals.answered
                    else 0.0,
                    "longest_wait_seconds": round(max([totals.longest_wait, *waits]), 1),
                    "service_level_percent": round(
                        100.0 * totals.answered_in_sl / totals.answered, 1
                    )
                    if totals.answered
                    else 100.0,
                    "service_level_seconds": queue.service_level_seconds,
                    # Raw figures, so a hotline's queue on several nodes is summed.
                    "answered_in_sl": totals.answered_in_sl,
                    "total_wait_answered_seconds": round(totals.total_wait_answered, 1),
                },
            }
        return {
            "node": self.node,
            "synced": self.synced,
            "stale": self.stale,
            "at": now,
            "queues": queues,
        }
