"""The queue manager against a real Asterisk with SIPp agents and callers.

This module runs its OWN Asterisk (not the session ``stack``): the operator
queue has no static members, so only the roster (via AMI) puts agents in it,
and the queue manager runs on a simulated clock. Calls reach the queue the
citizen's way: dial the hotline number and press 0 (operator) or 3 (field).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.queue_records.models import AgentPause, QueueCall, QueueLogEntry
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import CallResult, Dtmf, Pause, SippAnswerer, SippCaller
from queue_manager.manager import QueueManager
from tests.rig.stack import HOTLINE_NUMBER, REPO, Ports, free_udp_port, start_asterisk, wait_for
from tests.rig.stack import write_test_config as write_config

pytestmark = pytest.mark.asterisk

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# Where a fresh recording of the AMI stream is copied for the benchmark (opt-in).
BENCH_FIXTURE = REPO / "bench" / "fixtures" / "ami_events.jsonl"


class FakeClock:
    def __init__(self, local: datetime) -> None:
        self.now = local.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set_local(self, local: datetime) -> None:
        self.now = local.astimezone(UTC)


@dataclass
class QueueRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    manager: QueueManager
    services: RunningServices
    agents: dict[str, SippAnswerer]
    clock: FakeClock
    workdir: Path
    sessions: Any

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.config.asterisk.sip.port}"

    @property
    def link(self) -> Any:
        return self.manager.links["local"]

    @property
    def model(self) -> Any:
        return self.manager.models["local"]


def _tweak(data: dict[str, Any]) -> None:
    for n in (1, 2, 3, 4):
        data["agents"].append({"id": f"qa{n}", "name": f"QA {n}", "phone": f"qa-{n}"})
    for queue in data["queues"]:
        if queue["id"] == "operator":
            queue.update(members=[], ring_seconds=5, wrapup_seconds=2, strategy="leastrecent")
        if queue["id"] == "field":
            queue.update(members=[], ring_seconds=3, wrapup_seconds=0, auto_pause=True)
    data["roster"]["assignments"] = [
        {"shift": "sang", "queue": "operator", "agents": ["qa1", "qa2"]},
        {"shift": "chieu", "queue": "operator", "agents": ["qa3"]},
        {"shift": "dem", "queue": "operator", "agents": ["qa3"]},
        {"shift": "sang", "queue": "field", "agents": ["qa4"]},
        {"shift": "chieu", "queue": "field", "agents": ["qa4"]},
    ]
    data["roster"]["overrides"] = []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[QueueRig]:
    base = tmp_path_factory.mktemp("queue-manager")
    agents = {
        "qa-1": SippAnswerer(base / "sipp", "qa-1", mode="answer", ring_ms=1500, hold_ms=5000),
        "qa-2": SippAnswerer(base / "sipp", "qa-2", mode="answer", ring_ms=1500, hold_ms=5000),
        "qa-3": SippAnswerer(base / "sipp", "qa-3", mode="answer", ring_ms=500, hold_ms=2000),
        "qa-4": SippAnswerer(base / "sipp", "qa-4", mode="no_answer"),
    }
    for agent in agents.values():
        await agent.start()
    config_path = write_config(
        base,
        Ports(),
        {
            # The rig's standard phones: never called here, but the config names them.
            **{
                p: f"sip:{p}@127.0.0.1:9"
                for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")
            },
            **{name: agent.contact for name, agent in agents.items()},
        },
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=_tweak,
    )
    asterisk, config = start_asterisk(base, config_path)
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=ZONE))  # Monday, morning shift
    services = await start_services(config)  # FastAGI only: the call flow puts calls in queues
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    record = (base / "ami-events.jsonl").open("w", encoding="utf-8")
    manager = QueueManager(
        config, sessions, clock=clock, record=record, backoff=(3.0, 6.0), ping_interval=2.0
    )
    await manager.start()
    rig = QueueRig(asterisk, config, manager, services, agents, clock, base, sessions)
    try:
        await wait_for(lambda: rig.link.synced.is_set(), 20, "the first AMI resync")
        yield rig
    finally:
        await manager.close()
        record.close()
        if BENCH_FIXTURE.parent.is_dir() and not BENCH_FIXTURE.exists():
            shutil.copy(base / "ami-events.jsonl", BENCH_FIXTURE)
        await services.close()
        asterisk.stop()
        engine.dispose()
        for agent in agents.values():
            await agent.stop()


# --- comparing the live model with `queue show` --------------------------------------

_MEMBER = re.compile(r"^\s+(?P<name>.*?) \((?P<iface>(?:PJSIP|Local)/[^)]+)\)(?P<rest>.*)$")
_CALLER = re.compile(r"^\s+\d+\. (?P<channel>\S+) \(wait")


def parse_queue_show(text: str) -> dict[str, Any]:
    members: dict[str, dict[str, Any]] = {}
    callers: list[str] = []
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Members:"):
            section = "members"
            continue
        if stripped.startswith("Callers:") or stripped.startswith("No Callers"):
            section = "callers"
            continue
        if section == "members" and (match := _MEMBER.match(line)):
            rest = match["rest"]
            members[match["iface"]] = {
                "paused": "(paused" in rest,
                "ringing": "(Ringing)" in rest or "(Ring+Inuse)" in rest,
                "in_use": "(In use)" in rest or "(in call)" in rest or "(Busy)" in rest,
            }
        elif section == "callers" and (match := _CALLER.match(line)):
            callers.append(match["channel"])
    return {"members": members, "callers": callers}


def model_view(rig: QueueRig, queue: str) -> dict[str, Any]:
    snap = rig.model.snapshot()["queues"].get(queue, {"members": [], "callers": []})
    return {
        "members": {
            m["interface"]: {
                "paused": m["paused"],
                "ringing": m["state"] == "ringing",
                "in_use": m["state"] == "talking",
            }
            for m in snap["members"]
        },
        "callers": [c["channel"] for c in snap["callers"]],
    }


async def converged(
    rig: QueueRig, queue: str, members: set[str] | None = None, timeout: float = 10
) -> dict[str, Any]:
    """Poll until the live model and Asterisk's `queue show` say the same (and,
    given ``members``, until that is who is in the queue)."""
    last: dict[str, Any] = {}

    async def probe() -> dict[str, Any] | None:
        nonlocal last
        asterisk = parse_queue_show(await rig.asterisk.arx(f"queue show {queue}"))
        mine = model_view(rig, queue)
        last = {"asterisk": asterisk, "model": mine}
        if members is not None and set(mine["members"]) != members:
            return None
        return mine if mine == asterisk else None

    try:
        return await wait_for(probe, timeout, f"queue {queue} to converge", interval=0.1)
    except TimeoutError:
        raise AssertionError(f"model and `queue show {queue}` differ: {last}") from None


async def wait_model(rig: QueueRig, probe: Any, what: str, timeout: float = 15) -> Any:
    return await wait_for(lambda: probe(rig.model.snapshot()["queues"]), timeout, what)


def member(snapshot: dict[str, Any], queue: str, interface: str) -> dict[str, Any] | None:
    return next(
        (m for m in snapshot.get(queue, {}).get("members", []) if m["interface"] == interface),
        None,
    )


def call_queue(rig: QueueRig, caller_id: str, key: str, **kwargs: Any) -> asyncio.Task[CallResult]:
    caller = SippCaller(rig.workdir / "calls")
    return asyncio.create_task(
        caller.call(
            target=rig.target,
            number=HOTLINE_NUMBER,
            caller_id=caller_id,
            steps=[Pause(500), Dtmf(key)],
            timeout_s=kwargs.pop("timeout_s", 40),
            **kwargs,
        )
    )


# --- tests ---------------------------------------------------------------------------


async def test_roster_puts_the_morning_shift_in_the_queue_at_start(rig: QueueRig) -> None:
    await converged(rig, "operator", {"PJSIP/qa-1", "PJSIP/qa-2"})
    await converged(rig, "field", {"PJSIP/qa-4"})
    # Applying the roster again changes nothing: it is idempotent.
    assert await rig.manager.apply_roster() == []


async def test_live_model_follows_waiting_ringing_talking_and_completed_calls(
    rig: QueueRig,
) -> None:
    qa1 = rig.agents["qa-1"]
    qa1.reset()
    # One agent on pause with a reason: the other takes the calls one by one.
    await rig.manager.pause("qa2", "paperwork")
    snap = await wait_model(
        rig,
        lambda q: (m := member(q, "operator", "PJSIP/qa-2")) and m["paused"] and m,
        "qa2 paused",
    )
    assert snap["paused_reason"] == "paperwork" and snap["state"] == "paused"
    await converged(rig, "operator")

    first = call_queue(rig, "0912000101", "0")
    ringing = await wait_model(
        rig, lambda q: member(q, "operator", "PJSIP/qa-1")["state"] == "ringing", "qa1 ringing"
    )
    assert ringing
    await converged(rig, "operator")
    second = call_queue(rig, "0912000102", "0")
    await wait_model(
        rig, lambda q: member(q, "operator", "PJSIP/qa-1")["state"] == "talking", "qa1 talking"
    )
    waiting = await wait_model(
        rig,
        lambda q: len(q["operator"]["callers"]) == 1 and q["operator"]["callers"],
        "the second caller waiting",
    )
    assert waiting[0]["position"] == 1
    assert waiting[0]["caller_id"] == "0912000102"
    await converged(rig, "operator")

    # The first call ends (the agent hangs up after 5 s): wrap-up, then the
    # waiting caller rings the same agent.
    await wait_model(
        rig, lambda q: member(q, "operator", "PJSIP/qa-1")["state"] == "wrapup", "qa1 wrap-up"
    )
    await qa1.wait_rung(2, timeout=20)
    await wait_model(rig, lambda q: not q["operator"]["callers"], "no caller waiting once answered")
    results = await asyncio.gather(first, second)
    assert all(r.answered for r in results), [r.log_text for r in results]
    today = await wait_model(
        rig,
        lambda q: q["operator"]["today"]["answered"] >= 2 and q["operator"]["today"],
        "2 answered",
    )
    assert today["answered"] == 2 and today["abandoned"] == 0
    assert today["longest_wait_seconds"] >= 3  # the second caller waited a whole call
    await rig.manager.unpause("qa2")
    await converged(rig, "operator")

    # Statistics: each call once, with its agent; queue_log in Asterisk's words.
    await rig.manager.recorder.flush()
    with rig.sessions() as session:
        calls = list(session.scalars(select(QueueCall).where(QueueCall.queue == "operator")))
        log = [
            e.event
            for e in session.scalars(
                select(QueueLogEntry).where(QueueLogEntry.queuename == "operator")
            )
        ]
    answered = [c for c in calls if c.caller_id in ("0912000101", "0912000102")]
    assert len(answered) == 2, calls
    assert {c.outcome for c in answered} == {"answered"}
    assert {c.agent_id for c in answered} == {"qa1"}
    assert all(c.shift_id == "sang" for c in answered), [c.shift_id for c in answered]
    assert all(c.talk_seconds and c.talk_seconds >= 4 for c in answered), [
        (c.talk_seconds, c.wait_seconds, c.ended_at) for c in answered
    ]
    assert log.count("CONNECT") >= 2 and "ENTERQUEUE" in log and "PAUSE" in log
    assert {"COMPLETECALLER", "COMPLETEAGENT"} & set(log)


async def test_ring_no_answer_auto_pauses_the_agent_with_a_reason(rig: QueueRig) -> None:
    call = call_queue(rig, "0912000103", "3", hangup_after_ms=4500, timeout_s=20)
    paused = await wait_model(
        rig,
        lambda q: (m := member(q, "field", "PJSIP/qa-4")) and m["paused"] and m,
        "qa4 auto-paused",
    )
    assert paused["paused_reason"]  # Asterisk names it (Auto-Pause)
    await converged(rig, "field")
    result = await call
    assert result.answered  # by the IVR; nobody in the queue answered
    await wait_model(rig, lambda q: q["field"]["today"]["abandoned"] == 1, "the abandon counted")
    await rig.manager.recorder.flush()
    with rig.sessions() as session:
        row = session.scalar(select(QueueCall).where(QueueCall.caller_id == "0912000103"))
        pause = session.scalar(select(AgentPause).where(AgentPause.agent_id == "qa4"))
    assert row is not None and row.outcome == "abandoned" and row.rings_unanswered >= 1
    assert pause is not None and pause.reason == paused["paused_reason"]
    await rig.manager.unpause("qa4")


async def test_shift_boundary_moves_membership_without_dropping_a_call(rig: QueueRig) -> None:
    rig.clock.set_local(datetime(2026, 11, 23, 13, 59, 50, tzinfo=ZONE))
    assert await rig.manager.apply_roster() == []
    for agent in rig.agents.values():
        agent.reset()
    call = call_queue(rig, "0912000104", "0")
    talking = await wait_model(
        rig,
        lambda q: next((m for m in q["operator"]["members"] if m["state"] == "talking"), None),
        "an agent of the morning shift talking",
    )
    rig.clock.set_local(datetime(2026, 11, 23, 14, 0, 5, tzinfo=ZONE))
    actions = await rig.manager.apply_roster()
    assert {(a.kind, a.interface) for a in actions} == {
        ("remove", "PJSIP/qa-1"),
        ("remove", "PJSIP/qa-2"),
        ("add", "PJSIP/qa-3"),
    }
    await converged(rig, "operator", {"PJSIP/qa-3"})
    # The call in progress goes on to its natural end: the agent hangs up after 5 s.
    result = await call
    agent = rig.agents[talking["interface"].removeprefix("PJSIP/")]
    (taken,) = agent.calls
    assert result.answered and result.hung_up_by == "remote"
    assert taken.ended_by == "answerer"
    assert taken.ended_at is not None and taken.answered_at is not None
    assert taken.ended_at - taken.answered_at >= 4.5
    # The next call goes to the afternoon shift.
    rig.agents["qa-3"].reset()
    nxt = call_queue(rig, "0912000105", "0")
    await rig.agents["qa-3"].wait_rung(1, timeout=20)
    assert (await nxt).answered


async def test_ami_cut_and_changes_while_disconnected_converge_after_reconnect(
    rig: QueueRig,
) -> None:
    link = rig.link
    syncs = link.sync_count
    await converged(rig, "operator")
    link.cut()
    await wait_for(lambda: not link.connected.is_set(), 5, "the link to notice the cut")
    # Made behind the manager's back while it is disconnected.
    await rig.asterisk.arx("queue remove member PJSIP/qa-3 from operator")
    await rig.asterisk.arx("queue add member PJSIP/qa-2 to operator")
    await rig.asterisk.arx("queue pause member PJSIP/qa-4 queue field reason lunch")
    assert not link.connected.is_set(), "reconnected too early to prove anything"
    assert rig.model.member_interfaces("operator") == {"PJSIP/qa-3"}  # stale until resync

    await wait_for(lambda: link.sync_count > syncs, 20, "reconnect and resync")
    # The roster is applied again: qa3 (afternoon) back, qa2 (morning) out.
    await converged(rig, "operator", {"PJSIP/qa-3"})
    field = await converged(rig, "field")
    assert field["members"]["PJSIP/qa-4"]["paused"]
    assert member(rig.model.snapshot()["queues"], "field", "PJSIP/qa-4")["paused_reason"] == (
        "lunch"
    )
    await rig.manager.unpause("qa4")
    await converged(rig, "field")


async def test_agent_logs_in_outside_the_roster_until_the_next_boundary(rig: QueueRig) -> None:
    actions = await rig.manager.login("qa1", ["operator"], by="supervisor")
    assert [(a.kind, a.interface) for a in actions] == [("add", "PJSIP/qa-1")]
    assert await converged(rig, "operator", {"PJSIP/qa-1", "PJSIP/qa-3"})
    assert await rig.manager.apply_roster() == []  # the override holds
    await rig.manager.logout("qa3", ["operator"])
    assert await converged(rig, "operator", {"PJSIP/qa-1"})
    # At the next boundary (22:00) the roster rules again.
    rig.clock.set_local(datetime(2026, 11, 23, 22, 0, 1, tzinfo=ZONE))
    await rig.manager.apply_roster()
    assert await converged(rig, "operator", {"PJSIP/qa-3"})


async def test_asterisk_restart_mid_shift_brings_the_rostered_agents_back(
    rig: QueueRig,
) -> None:
    """Last in this module: Asterisk itself restarts (dynamic members are gone);
    the manager reconnects, resyncs and puts the shift's agents back, and an
    agent who was paused comes back paused with the same reason."""
    before = await converged(rig, "operator")
    expected = set(before["members"])
    assert expected, "the roster should have someone in the operator queue"
    on_break = sorted(expected)[0]
    agent_id = next(a.id for a in rig.manager.agents.values() if f"PJSIP/{a.phone}" == on_break)
    await rig.manager.pause(agent_id, "meeting")
    await wait_model(
        rig,
        lambda q: (m := member(q, "operator", on_break)) and m["paused"],
        "the agent paused",
    )
    syncs = rig.link.sync_count
    await asyncio.to_thread(rig.asterisk.stop)
    await wait_for(lambda: not rig.link.connected.is_set(), 10, "the link to notice")
    await asyncio.to_thread(rig.asterisk.start)  # persistentmembers=no: nobody is in
    assert "System uptime" in await rig.asterisk.arx("core show uptime")
    await wait_for(lambda: rig.link.sync_count > syncs, 30, "reconnect and resync")
    after = await converged(rig, "operator", expected)
    assert [i for i, m in after["members"].items() if m["paused"]] == [on_break]
    restored = member(rig.model.snapshot()["queues"], "operator", on_break)
    assert restored is not None and restored["paused_reason"] == "meeting"
    assert "meeting" in await rig.asterisk.arx("queue show operator")
    await rig.manager.unpause(agent_id)
