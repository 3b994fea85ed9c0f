"""The queue manager: AMI links, live models, statistics, roster and the agents' API.

Membership is declarative. Who should be in which queue is a pure function of
the config (the roster), the clock and the overrides table (manual logins and
logouts until the next shift boundary); :func:`plan_membership` compares that
with what the node reports and yields only the differences. Running it twice,
after a restart mid-shift, or from two managers at once, converges on the same
membership; see docs/queue_manager.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.config.schema import Agent, HotlineConfig
from ivr.config.source import ConfigSource
from ivr.db.executor import DbExecutor
from ivr.queue_records.models import MemberOverride
from queue_manager.ami import AmiError, AmiLink
from queue_manager.listen_in import SPY_OPTIONS, originate_spy
from queue_manager.model import TALKING, Change, LiveModel
from queue_manager.roster import (
    current_shift_end,
    next_boundary,
    rostered_agents,
    shift_windows_at,
)
from queue_manager.stats import StatsRecorder
from queue_manager.trial_call import originate_trial_call

if TYPE_CHECKING:
    from queue_manager.callbacks import CallbackDispatcher

logger = logging.getLogger(__name__)

# Threads for the queue manager's database work (overrides, statistics,
# call-back claims): a slow database holds these, never the event loop.
QUEUE_DB_THREADS = 4

Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    return datetime.now(UTC)


def agent_interface(agent: Agent) -> str:
    return f"PJSIP/{agent.phone}"


class UnknownPauseReason(ValueError):
    """A pause reason that is not one of the config's codes; nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__("unknown pause reason: choose one of the configured codes")
        self.reason = reason


@dataclass(frozen=True)
class MemberAction:
    """One membership change to make on a node."""

    kind: str  # "add" or "remove"
    queue: str
    interface: str
    member_name: str
    pause_reason: str | None = None  # add paused (a pause Asterisk lost in a restart)

    def ami(self) -> dict[str, str]:
        if self.kind == "add":
            action = {
                "Action": "QueueAdd",
                "Queue": self.queue,
                "Interface": self.interface,
                "MemberName": self.member_name,
                "StateInterface": self.interface,
                "Paused": "false" if self.pause_reason is None else "true",
            }
            if self.pause_reason:
                action["Reason"] = self.pause_reason
            return action
        return {"Action": "QueueRemove", "Queue": self.queue, "Interface": self.interface}


@dataclass(frozen=True)
class Override:
    agent_id: str
    queue: str
    present: bool
    until: datetime


def desired_members(
    config: HotlineConfig, moment: datetime, overrides: Iterable[Override] = ()
) -> dict[str, set[str]]:
    """Queue id → agent ids that should be members at ``moment``."""
    wanted = rostered_agents(config, moment)
    for override in overrides:
        if override.until <= moment or override.queue not in wanted:
            continue
        if override.present:
            wanted[override.queue].add(override.agent_id)
        else:
            wanted[override.queue].discard(override.agent_id)
    return wanted


def served_queues(config: HotlineConfig, node: str) -> set[str] | None:
    """The queues whose hotline ``node`` serves (``cluster.serving``: its owner
    and the standby), so the roster puts agents there before a failover; None
    without ``cluster.nodes`` (the node serves every queue)."""
    if not config.cluster.nodes:
        return None
    return {
        queue.id
        for queue in config.queues
        if any(n.id == node for n in config.cluster.serving(config.queue_owner(queue.id) or ""))
    }


def plan_membership(
    config: HotlineConfig,
    wanted: dict[str, set[str]],
    model: LiveModel,
    queues: set[str] | None = None,
) -> list[MemberAction]:
    """The adds and removes that turn the node's membership into ``wanted``,
    in ``queues`` (None: every queue of the config; see :func:`served_queues`).

    Only dynamic members that are configured agents are touched: static
    members (queues.conf) and interfaces someone else added are left alone.
    """
    agents = {agent.id: agent for agent in config.agents}
    managed = {agent_interface(agent): agent for agent in config.agents}
    actions: list[MemberAction] = []
    for queue in config.queues:
        if queues is not None and queue.id not in queues:
            continue
        state = model.queues.get(queue.id)
        present = state.members if state else {}
        want = {
            agent_interface(agents[a]): agents[a] for a in wanted.get(queue.id, ()) if a in agents
        }
        for interface, agent in sorted(want.items()):
            if interface not in present:
                actions.append(MemberAction("add", queue.id, interface, agent.name))
        for interface, member in sorted(present.items()):
            if interface in managed and interface not in want and member.membership != "static":
                actions.append(MemberAction("remove", queue.id, interface, member.name))
    return actions


class QueueManager:
    """Everything the queue manager does, for every node in the config."""

    def __init__(
        self,
        config: HotlineConfig | ConfigSource,
        sessions: sessionmaker[Session] | None = None,
        *,
        clock: Clock = utc_clock,
        record: IO[str] | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        ping_interval: float = 10.0,
    ) -> None:
        # Queues, agents and the roster are read from the process's config source
        # when used; _config_changed re-applies them when a new config is applied.
        self.config_source = ConfigSource.of(config)
        self.config_source.subscribe(self._config_changed, "QueueManager")
        config = self.config_source.current
        self.sessions = sessions
        self.clock = clock
        # Overrides, statistics and call-back claims, off the event loop.
        self.db = DbExecutor("queue-db", QUEUE_DB_THREADS)
        settings = {q.id: (q.service_level_seconds, q.wrapup_seconds) for q in config.queues}
        ami = config.asterisk.ami
        self.models: dict[str, LiveModel] = {}
        self.links: dict[str, AmiLink] = {}
        # One link per node: cluster.nodes when set (same AMI user and secret).
        for node in config.ami_nodes():
            # The model measures waits and wrap-up against Asterisk's event times,
            # so it keeps real time; only the roster follows the injectable clock.
            model = LiveModel(
                node.id,
                timezone=config.timezone,
                queue_settings=settings,
            )
            self.models[node.id] = model
            self.links[node.id] = AmiLink(
                node.id,
                node.host,
                node.port,
                ami.username,
                ami.secret,
                model,
                on_synced=self._on_synced,
                backoff=backoff,
                ping_interval=ping_interval,
                record=record,
            )
        self.recorder: StatsRecorder | None = None
        if sessions is not None:
            self.recorder = StatsRecorder(
                sessions,
                {agent_interface(a): a.id for a in config.agents},
                # The shift by the manager's clock, the one that applies the roster.
                shift_of=lambda _at: self._shift_at(self.clock()),
                db=self.db,
            )
            for model in self.models.values():
                model.subscribe(self.recorder.record)
        # (node, queue, interface) → pause reason. Asterisk forgets dynamic members
        # and their pauses when it restarts; a paused agent the roster puts back
        # is added paused with the same reason, so no call rings an empty desk.
        self._pauses: dict[tuple[str, str, str], str] = {}
        for model in self.models.values():
            model.subscribe(self._remember_pause)
        self._overrides: dict[tuple[str, str], Override] = {}
        self._roster_lock = asyncio.Lock()
        self._roster_task: asyncio.Task[None] | None = None
        self.callbacks: CallbackDispatcher | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._load_overrides()
        if self.recorder is not None:
            self.recorder.start()
        for link in self.links.values():
            link.start()
        self._roster_task = asyncio.create_task(self._roster_loop(), name="shift-roster")
        if self.sessions is not None and self.links:
            from queue_manager.callbacks import CallbackDispatcher

            # Call backs are originated on a node serving the hotline that is up
            # (one dialler per manager; claims in the database keep several
            # managers from dialling twice).
            first = next(iter(self.links.values()))
            self.callbacks = CallbackDispatcher(
                self.config_source, self.sessions, self.models, first.send, db=self.db,
                send_for=self.sender_for, clock=self.clock,
            )  # fmt: skip
            self.callbacks.start()

    async def close(self) -> None:
        if self._roster_task is not None:
            self._roster_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._roster_task
        if self.callbacks is not None:
            await self.callbacks.close()
        for link in self.links.values():
            await link.close()
        if self.recorder is not None:
            await self.recorder.close()
        # The last statistics are written (awaited above); nothing waits on the loop.
        self.db.close(wait=False)

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    @property
    def agents(self) -> dict[str, Agent]:
        return {agent.id: agent for agent in self.config.agents}

    async def _config_changed(self, config: HotlineConfig) -> None:
        """Queues, agents and the roster of a config applied while running: the
        picture is rebuilt from Asterisk (queues may have been added) and the
        roster applied at once. AMI nodes and credentials need a restart."""
        settings = {q.id: (q.service_level_seconds, q.wrapup_seconds) for q in config.queues}
        for model in self.models.values():
            model.queue_settings = dict(settings)
        if self.recorder is not None:
            self.recorder.agent_of = {agent_interface(a): a.id for a in config.agents}
        for link in self.links.values():
            if link.synced.is_set():
                await link.resync()
        await self.apply_roster()

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Changes of every node (for the web console)."""
        undo = [model.subscribe(callback) for model in self.models.values()]

        def unsubscribe() -> None:
            for step in undo:
                step()

        return unsubscribe

    def snapshot(self) -> dict[str, Any]:
        """Each node's picture with its AMI link's state (``up``, ``since``),
        its role and the hotlines it owns (cluster.nodes; empty otherwise)."""
        cluster = self.config.cluster
        pictures: dict[str, Any] = {}
        for node, model in self.models.items():
            link = self.links.get(node)
            member = cluster.node(node)
            pictures[node] = {
                **model.snapshot(),
                "up": link.up if link is not None else model.synced,
                "since": link.since if link is not None else 0.0,
                "role": member.role.value if member is not None else "",
                "hotlines": list(member.hotlines) if member is not None else [],
            }
        return pictures

    def serving_links(self, hotline_id: str) -> list[AmiLink]:
        """The links of the nodes serving a hotline, owner first (every link
        without cluster.nodes)."""
        cluster = self.config.cluster
        if not cluster.nodes:
            return list(self.links.values())
        return [self.links[n.id] for n in cluster.serving(hotline_id) if n.id in self.links]

    def sender_for(self, hotline_id: str) -> Callable[[dict[str, str]], Any]:
        """The AMI sender of the first node serving the hotline that is up (the
        owner, else the standby after a failover); AmiError when none is."""
        link = next((k for k in self.serving_links(hotline_id) if k.connected.is_set()), None)
        if link is None:
            raise AmiError(f"no node serving hotline {hotline_id!r} is connected")
        return link.send

    def _remember_pause(self, change: Change) -> None:
        interface = change.data.get("interface")
        if not interface:
            return
        key = (change.node, change.queue, interface)
        if change.kind == "member_paused":
            self._pauses[key] = str(change.data.get("reason") or "")
        elif change.kind == "member_unpaused" or (
            change.kind == "member_removed" and not change.data.get("unseen")
        ):
            self._pauses.pop(key, None)

    def _shift_at(self, at: datetime) -> str | None:
        windows = shift_windows_at(self.config, at)
        return windows[0].shift_id if windows else None

    # -- roster -----------------------------------------------------------------------

    async def _roster_loop(self) -> None:
        """Apply the roster at every shift boundary (checked at least each 30 s, so a
        clock change or a missed wake-up is caught up)."""
        while True:
            now = self.clock()
            boundary = next_boundary(self.config, now)
            wait = 30.0 if boundary is None else (boundary - now).total_seconds() + 0.2
            await asyncio.sleep(min(max(wait, 0.2), 30.0))
            try:
                await self.apply_roster()
            except Exception:
                logger.exception("applying the shift roster failed; retrying at the next check")

    async def _on_synced(self, link: AmiLink) -> None:
        await self._load_overrides()
        await self._apply_on(link, self.clock())

    async def apply_roster(self) -> list[MemberAction]:
        """Bring every connected node's membership to what it should be now."""
        await self._load_overrides()
        done: list[MemberAction] = []
        for link in self.links.values():
            if link.synced.is_set():
                done += await self._apply_on(link, self.clock())
        return done

    async def _apply_on(self, link: AmiLink, moment: datetime) -> list[MemberAction]:
        async with self._roster_lock:
            wanted = desired_members(self.config, moment, self._overrides.values())
            served = served_queues(self.config, link.node)
            actions = [
                replace(action, pause_reason=self._pauses.get((link.node, action.queue,
                                                               action.interface)))
                if action.kind == "add" else action
                for action in plan_membership(self.config, wanted, link.model, served)
            ]  # fmt: skip
            for action in actions:
                logger.info(
                    "%s: %s %s (%s) %s queue %s",
                    link.node,
                    action.kind,
                    action.member_name,
                    action.interface,
                    "to" if action.kind == "add" else "from",
                    action.queue,
                )
                try:
                    await link.send(action.ami())
                except AmiError:
                    logger.exception("%s: %s failed", link.node, action.kind)
            return actions

    # -- agents' API (used by the web console; a supervisor passes by=its name) ----

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise KeyError(f"unknown agent {agent_id!r}")
        return agent

    def _queues_of(self, agent_id: str, queues: Iterable[str] | None) -> list[str]:
        if queues is not None:
            chosen = list(queues)
        else:
            rostered = {
                entry.queue for entry in self.config.roster.assignments if agent_id in entry.agents
            }
            chosen = sorted(rostered) or [q.id for q in self.config.queues]
        unknown = [q for q in chosen if self.config.queue(q) is None]
        if unknown:
            raise KeyError(f"unknown queue(s) {unknown}")
        return chosen

    async def login(
        self, agent_id: str, queues: Iterable[str] | None = None, by: str = ""
    ) -> list[MemberAction]:
        """Put the agent in ``queues`` (default: the agent's rostered queues) until
        the next shift boundary, whatever the roster says."""
        self._agent(agent_id)
        await self._set_overrides(agent_id, self._queues_of(agent_id, queues), True, by)
        return await self.apply_roster()

    async def logout(
        self, agent_id: str, queues: Iterable[str] | None = None, by: str = ""
    ) -> list[MemberAction]:
        """Take the agent out of ``queues`` (default: every queue) until the next boundary."""
        self._agent(agent_id)
        chosen = list(queues) if queues is not None else [q.id for q in self.config.queues]
        await self._set_overrides(agent_id, chosen, False, by)
        return await self.apply_roster()

    async def pause(self, agent_id: str, reason: str, queue: str | None = None) -> None:
        """Pause the agent (in one queue, or all) with a reason shown to supervisors.

        ``reason`` is one of the config's pause reason codes, never free text:
        it goes into an AMI header (:class:`UnknownPauseReason` otherwise)."""
        if self.config.pause_reason(reason) is None:
            raise UnknownPauseReason(reason)
        await self._pause(agent_id, True, reason, queue)

    async def unpause(self, agent_id: str, queue: str | None = None) -> None:
        await self._pause(agent_id, False, "", queue)

    async def _pause(self, agent_id: str, paused: bool, reason: str, queue: str | None) -> None:
        interface = agent_interface(self._agent(agent_id))
        action = {"Action": "QueuePause", "Interface": interface, "Paused": str(paused).lower()}
        if reason:
            action["Reason"] = reason
        if queue:
            action["Queue"] = queue
        # Every node where the agent is a member: with cluster.nodes the roster
        # puts them on each serving node (owner and standby), so the pause holds
        # after a failover. A node that is down gets it when its Asterisk comes
        # back without its members (the roster re-adds them paused); one link
        # failing does not keep the others from pausing.
        failures: list[AmiError] = []
        sent = 0
        for link in self.links.values():
            member_of = [
                name
                for name, state in link.model.queues.items()
                if interface in state.members and (queue is None or name == queue)
            ]
            if not member_of:
                continue  # not a member there: nothing to pause
            if not link.connected.is_set():
                for name in member_of:
                    key = (link.node, name, interface)
                    if paused:
                        self._pauses[key] = reason
                    else:
                        self._pauses.pop(key, None)
                continue
            try:
                await link.send(action)
                sent += 1
            except AmiError as exc:
                logger.warning("%s: %s of %s failed: %s", link.node,
                               action["Action"], agent_id, exc)  # fmt: skip
                failures.append(exc)
        if failures and not sent:
            raise failures[0]

    async def spy(self, agent_id: str, phone: str, mode: str) -> str | None:
        """Listen, whisper or barge in on the agent's call from ``phone`` (a phone
        of the config): Asterisk rings ``phone`` and, when answered, runs ChanSpy
        on the agent's live channel (context ``hotline-spy`` in the rendered
        dialplan). Returns that channel, or None when the agent is on no call
        (then nothing is originated)."""
        agent = self._agent(agent_id)
        if mode not in SPY_OPTIONS:
            raise ValueError(f"unknown listen-in mode {mode!r}")
        if phone not in {p.id for p in self.config.phones}:
            raise KeyError(f"unknown phone {phone!r}")  # never free text in an AMI header
        interface = agent_interface(agent)
        # The node where the agent is on a call (members are on owner and
        # standby alike), else one where they are a member, else the first.
        now = time.time()
        up = [link for link in self.links.values() if link.connected.is_set()]
        link = next(
            (
                link
                for link in up
                if any(
                    interface in q.members and q.members[interface].state(now) == TALKING
                    for q in link.model.queues.values()
                )
            ),
            None,
        ) or next(
            (
                link
                for link in up
                if any(interface in q.members for q in link.model.queues.values())
            ),
            next(iter(self.links.values())),
        )
        return await originate_spy(link, agent.phone, phone, mode)

    async def trial_call(
        self, hotline_id: str, dial_string: str, prompt: str, caller_number: str,
        ring_seconds: int,
    ) -> None:  # fmt: skip
        """The console's test call: ring ``dial_string`` (built by the routing
        from a checked config) from a node serving the hotline and play
        ``prompt`` when answered (queue_manager/trial_call.py)."""
        await originate_trial_call(
            self.sender_for(hotline_id), dial_string, prompt, caller_number, ring_seconds
        )

    async def _set_overrides(
        self, agent_id: str, queues: list[str], present: bool, by: str
    ) -> None:
        now = self.clock()
        until = current_shift_end(self.config, now)
        for queue in queues:
            self._overrides[(agent_id, queue)] = Override(agent_id, queue, present, until)
        if self.sessions is not None:
            await self.db.run(self._store_overrides, agent_id, queues, present, until, by, now)

    def _store_overrides(
        self,
        agent_id: str,
        queues: list[str],
        present: bool,
        until: datetime,
        by: str,
        now: datetime,
    ) -> None:
        assert self.sessions is not None
        with self.sessions.begin() as session:
            session.execute(
                delete(MemberOverride).where(
                    MemberOverride.agent_id == agent_id, MemberOverride.queue.in_(queues)
                )
            )
            for queue in queues:
                session.add(
                    MemberOverride(
                        agent_id=agent_id,
                        queue=queue,
                        present=present,
                        until=until,
                        set_by=by or agent_id,
                        set_at=now,
                    )
                )

    async def _load_overrides(self) -> None:
        """Overrides still running (another manager or a previous run set them)."""
        if self.sessions is None:
            return
        now = self.clock()

        def load() -> list[MemberOverride]:
            assert self.sessions is not None
            with self.sessions() as session:
                return list(
                    session.scalars(select(MemberOverride).where(MemberOverride.until > now))
                )

        rows = await self.db.run(load)
        self._overrides = {}
        for row in rows:
            self._overrides[(row.agent_id, row.queue)] = Override(
                row.agent_id, row.queue, row.present, row.until
            )
