"""The queue manager's parts without a PBX: live model, roster, membership plan,
statistics (idempotent writes) and config."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from ivr.asterisk.render import render_manager, render_queues
from ivr.config import ConfigError, HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.queue_records.models import AgentPause, AgentSession, QueueCall, QueueLogEntry
from queue_manager.manager import MemberAction, Override, desired_members, plan_membership
from queue_manager.model import Change, LiveModel
from queue_manager.roster import next_boundary, rostered_agents, shift_windows_at
from queue_manager.stats import StatsRecorder
from tests.rig.stack import EXAMPLE

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)  # type: ignore[misc]


# --- live model ----------------------------------------------------------------------

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def ev(kind: str, at: float, **fields: Any) -> dict[str, str]:
    return {"Event": kind, "Timestamp": f"{at:.6f}", **{k: str(v) for k, v in fields.items()}}


def member_fields(interface: str, **extra: Any) -> dict[str, Any]:
    base = {
        "Queue": "operator",
        "Interface": interface,
        "MemberName": interface[-4:],
        "Membership": "dynamic",
        "Status": 1,
        "Paused": 0,
        "InCall": 0,
    }
    return {**base, **extra}


def test_model_follows_a_call_from_waiting_to_wrap_up() -> None:
    clock = Clock()
    model = LiveModel(clock=clock, queue_settings={"operator": (20, 5)})
    changes: list[Change] = []
    model.subscribe(changes.append)
    a, b = "PJSIP/dtv-01", "PJSIP/dtv-02"
    model.apply(ev("QueueMemberAdded", T0, **member_fields(a)))
    model.apply(ev("QueueMemberAdded", T0, **member_fields(b)))
    caller = {"Queue": "operator", "Uniqueid": "111.1", "Channel": "PJSIP/pstn-1"}
    model.apply(ev("QueueCallerJoin", T0, Position=1, CallerIDNum="0912", **caller))
    model.apply(ev("AgentCalled", T0 + 1, Interface=a, MemberName="a", **caller))
    model.apply(ev("AgentCalled", T0 + 1, Interface=b, MemberName="b", **caller))
    clock.now = T0 + 2
    snap = model.snapshot()["queues"]["operator"]
    assert [m["state"] for m in snap["members"]] == ["ringing", "ringing"]
    assert snap["callers"][0]["position"] == 1 and snap["callers"][0]["wait_seconds"] == 2

    model.apply(ev("AgentConnect", T0 + 12, Interface=a, MemberName="a", HoldTime=12, **caller))
    model.apply(ev("QueueCallerLeave", T0 + 12, Position=1, **caller))
    clock.now = T0 + 13
    snap = model.snapshot()["queues"]["operator"]
    assert [m["state"] for m in snap["members"]] == ["talking", "idle"]
    assert snap["callers"] == []
    model.apply(
        ev(
            "AgentComplete",
            T0 + 40,
            Interface=a,
            HoldTime=12,
            TalkTime=28,
            Reason="caller",
            **caller,
        )
    )
    clock.now = T0 + 42
    today = model.snapshot()["queues"]["operator"]["today"]
    assert model.snapshot()["queues"]["operator"]["members"][0]["state"] == "wrapup"
    assert today["answered"] == 1 and today["service_level_percent"] == 100.0
    assert today["average_wait_seconds"] == 12.0
    clock.now = T0 + 46
    assert model.snapshot()["queues"]["operator"]["members"][0]["state"] == "idle"
    kinds = [c.kind for c in changes]
    # Rung twice, answered and counted once.
    assert kinds.count("agent_ringing") == 2 and kinds.count("call_answered") == 1
    assert kinds[-1] == "call_completed"


def test_abandon_and_pause_with_reason() -> None:
    model = LiveModel(clock=Clock(), queue_settings={"operator": (20, 0)})
    model.apply(
        ev("QueueMemberPause", T0, **member_fields("PJSIP/x", Paused=1, PausedReason="Auto-Pause"))
    )
    caller = {"Queue": "operator", "Uniqueid": "2.2"}
    model.apply(ev("QueueCallerJoin", T0, Position=1, **caller))
    model.apply(
        ev("QueueCallerAbandon", T0 + 30, Position=1, OriginalPosition=1, HoldTime=30, **caller)
    )
    model.apply(ev("QueueCallerLeave", T0 + 30, Position=1, **caller))
    snap = model.snapshot()["queues"]["operator"]
    assert snap["members"][0]["state"] == "paused"
    assert snap["members"][0]["paused_reason"] == "Auto-Pause"
    assert snap["today"]["abandoned"] == 1 and snap["today"]["longest_wait_seconds"] >= 30


def test_malformed_and_unknown_events_are_skipped_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = LiveModel(clock=Clock())
    model.apply({"Event": "QueueCallerJoin", "Uniqueid": "1"})  # no Queue
    model.apply(ev("QueueCallerJoin", T0, Queue="q", Uniqueid="1", Position="first"))
    model.apply(ev("AgentConnect", T0, Queue="q", Interface="PJSIP/a", Uniqueid="1", HoldTime="??"))
    model.apply({"Event": "QueueCallerJoin", "Queue": "q", "Uniqueid": "9", "Timestamp": "x"})
    model.apply({"Event": "SomethingNew", "Queue": "q"})
    model.apply({})
    assert model.events_skipped == 4
    assert "skipped malformed" in caplog.text
    model.apply(ev("QueueCallerJoin", T0, Queue="q", Uniqueid="2", Position=1))
    assert [c["uniqueid"] for c in model.snapshot()["queues"]["q"]["callers"]] == ["2"]


def test_resync_replaces_the_picture_and_reports_what_changed_unseen() -> None:
    model = LiveModel(clock=Clock())
    model.apply(ev("QueueMemberAdded", T0, **member_fields("PJSIP/gone")))
    model.apply(ev("QueueCallerJoin", T0, Queue="operator", Uniqueid="old", Position=1))
    changes: list[Change] = []
    model.subscribe(changes.append)
    model.resync(
        [
            {"Event": "QueueParams", "Queue": "operator"},
            {
                "Event": "QueueMember",
                "Queue": "operator",
                "Location": "PJSIP/new",
                "Name": "New",
                "Membership": "dynamic",
                "Status": "1",
                "Paused": "1",
                "PausedReason": "lunch",
                "InCall": "0",
            },
            {
                "Event": "QueueEntry",
                "Queue": "operator",
                "Uniqueid": "fresh",
                "Position": "1",
                "Channel": "PJSIP/pstn-9",
                "Wait": "7",
            },
            {"Event": "QueueMember", "Queue": "operator"},  # malformed: skipped
        ]
    )
    snap = model.snapshot()["queues"]["operator"]
    assert [m["interface"] for m in snap["members"]] == ["PJSIP/new"]
    assert snap["members"][0]["paused_reason"] == "lunch"
    assert [c["uniqueid"] for c in snap["callers"]] == ["fresh"]
    assert snap["callers"][0]["wait_seconds"] == 7
    kinds = {(c.kind, c.data.get("interface") or c.data.get("uniqueid")) for c in changes}
    assert {
        ("member_removed", "PJSIP/gone"),
        ("member_added", "PJSIP/new"),
        ("member_paused", "PJSIP/new"),
        ("caller_lost", "old"),
    } <= kinds


# --- roster --------------------------------------------------------------------------


def test_roster_by_shift_including_the_night_across_midnight(config: HotlineConfig) -> None:
    morning = rostered_agents(config, local(2026, 11, 23, 6, 0))
    assert morning["operator"] == {"dtv01", "dtv02", "dtv03", "dtv04", "dtv05", "dtv06"}
    assert rostered_agents(config, local(2026, 11, 23, 13, 59))["operator"] == morning["operator"]
    assert "dtv07" in rostered_agents(config, local(2026, 11, 23, 14, 0))["operator"]
    (night,) = shift_windows_at(config, local(2026, 11, 24, 2, 30))
    assert night.shift_id == "dem" and night.day.isoformat() == "2026-11-23"
    assert rostered_agents(config, local(2026, 11, 24, 2, 30))["conduct"] == set()


def test_date_override_belongs_to_the_day_the_night_shift_starts(config: HotlineConfig) -> None:
    # Override for 2026-02-17 night: only dtv13-15, also after midnight.
    assert rostered_agents(config, local(2026, 2, 18, 3, 0))["operator"] == {
        "dtv13",
        "dtv14",
        "dtv15",
    }
    assert len(rostered_agents(config, local(2026, 2, 19, 3, 0))["operator"]) == 6


def test_next_boundary(config: HotlineConfig) -> None:
    assert next_boundary(config, local(2026, 11, 23, 23, 0)) == local(2026, 11, 24, 6, 0)
    assert next_boundary(config, local(2026, 11, 23, 14, 0)) == local(2026, 11, 23, 22, 0)


# --- membership plan -----------------------------------------------------------------


def _model_with(members: dict[str, str]) -> LiveModel:
    model = LiveModel(clock=Clock())
    for interface, membership in members.items():
        model.apply(ev("QueueMemberAdded", T0, **member_fields(interface, Membership=membership)))
    return model


def test_plan_adds_the_missing_and_removes_the_off_shift_only(config: HotlineConfig) -> None:
    wanted = {"operator": {"dtv01", "dtv02"}}
    model = _model_with(
        {
            "PJSIP/dtv-01": "dynamic",
            "PJSIP/dtv-07": "dynamic",
            "PJSIP/dtv-08": "static",
            "PJSIP/someone-else": "dynamic",
        }
    )
    actions = plan_membership(config, wanted, model)
    assert actions == [
        MemberAction("add", "operator", "PJSIP/dtv-02", "Trần Văn Minh"),
        MemberAction("remove", "operator", "PJSIP/dtv-07", "dtv-07"[-4:]),
    ]
    assert actions[0].ami() == {
        "Action": "QueueAdd",
        "Queue": "operator",
        "Interface": "PJSIP/dtv-02",
        "MemberName": "Trần Văn Minh",
        "StateInterface": "PJSIP/dtv-02",
        "Paused": "false",
    }
    assert actions[1].ami() == {
        "Action": "QueueRemove",
        "Queue": "operator",
        "Interface": "PJSIP/dtv-07",
    }


def test_plan_is_empty_when_membership_is_right(config: HotlineConfig) -> None:
    moment = local(2026, 11, 23, 9, 0)
    wanted = desired_members(config, moment)
    model = LiveModel(clock=Clock())
    agents = {a.id: a for a in config.agents}
    for queue, ids in wanted.items():
        for agent_id in ids:
            iface = f"PJSIP/{agents[agent_id].phone}"
            model.apply(ev("QueueMemberAdded", T0, **member_fields(iface, Queue=queue)))
    assert plan_membership(config, wanted, model) == []


def test_overrides_hold_until_they_expire(config: HotlineConfig) -> None:
    moment = local(2026, 11, 23, 9, 0)
    overrides = [
        Override("dtv18", "operator", True, local(2026, 11, 23, 14, 0)),
        Override("dtv01", "operator", False, local(2026, 11, 23, 14, 0)),
    ]
    wanted = desired_members(config, moment, overrides)["operator"]
    assert "dtv18" in wanted and "dtv01" not in wanted
    later = desired_members(config, local(2026, 11, 23, 14, 0), overrides)["operator"]
    assert "dtv18" not in later


# --- statistics ----------------------------------------------------------------------


def _changes() -> list[Change]:
    u = {"uniqueid": "100.1"}
    iface = {"interface": "PJSIP/dtv-01", "member": "Nguyễn Thị Hà"}
    return [
        Change("member_added", "n1", "operator", T0, {**iface, "paused": False}),
        Change(
            "caller_joined",
            "n1",
            "operator",
            T0 + 1,
            {**u, "linkedid": "100.1", "caller_id": "0912", "position": 1},
        ),
        Change("agent_ringing", "n1", "operator", T0 + 2, {**u, **iface}),
        Change("agent_ring_no_answer", "n1", "operator", T0 + 7, {**u, **iface, "ring_ms": 5000}),
        Change(
            "caller_left",
            "n1",
            "operator",
            T0 + 8,
            {**u, "waited": 7.0, "position": 1, "original_position": 1},
        ),
        Change("caller_joined", "n1", "field", T0 + 9, {**u, "caller_id": "0912", "position": 1}),
        Change(
            "call_answered",
            "n1",
            "field",
            T0 + 12,
            {**u, **iface, "waited": 11, "ring_s": 2, "agent_uniqueid": "100.2"},
        ),
        Change("member_paused", "n1", "operator", T0 + 13, {**iface, "reason": "Auto-Pause"}),
        Change(
            "call_completed",
            "n1",
            "field",
            T0 + 40,
            {**u, **iface, "waited": 11, "talked": 28, "reason": "agent"},
        ),
        Change("member_unpaused", "n1", "operator", T0 + 50, {**iface, "reason": ""}),
        Change("member_removed", "n1", "operator", T0 + 60, iface),
    ]


async def test_statistics_count_a_call_once_and_rewrites_are_no_ops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    # Two recorders, as two queue managers watching the same node would be.
    for _ in range(2):
        recorder = StatsRecorder(sessions, {"PJSIP/dtv-01": "dtv01"}, lambda _at: "sang")
        for change in _changes():
            recorder.record(change)
        await recorder.flush()
    with sessions() as session:
        (call,) = session.scalars(select(QueueCall)).all()
        assert (call.first_queue, call.queue, call.queues_visited) == ("operator", "field", 2)
        assert call.outcome == "answered" and call.agent_id == "dtv01"
        assert call.wait_seconds == 11 and call.talk_seconds == 28 and call.rings_unanswered >= 1
        assert call.shift_id == "sang"
        (agent_session,) = session.scalars(select(AgentSession)).all()
        assert agent_session.logout_at is not None
        (pause,) = session.scalars(select(AgentPause)).all()
        assert pause.reason == "Auto-Pause" and pause.unpaused_at is not None
        events = list(session.scalars(select(QueueLogEntry.event).order_by(QueueLogEntry.time)))
        assert events == [
            "ADDMEMBER",
            "ENTERQUEUE",
            "RINGNOANSWER",
            "ENTERQUEUE",
            "CONNECT",
            "PAUSE",
            "COMPLETEAGENT",
            "UNPAUSE",
            "REMOVEMEMBER",
        ]
        assert session.scalar(select(func.count()).select_from(QueueLogEntry)) == 9
    engine.dispose()


# --- config and rendering --------------------------------------------------------------


def _variant(tmp_path: Path, tweak: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    tweak(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_auto_pause_and_nodes_in_the_config(config: HotlineConfig, tmp_path: Path) -> None:
    assert [n.id for n in config.asterisk.ami.node_list()] == ["local"]
    assert "timestampevents=yes" in render_manager(config)

    def tweak(data: dict[str, Any]) -> None:
        data["queues"][0]["auto_pause"] = True
        data["asterisk"]["ami"]["nodes"] = [
            {"id": "pbx1", "host": "10.0.0.1"},
            {"id": "pbx1", "host": "10.0.0.2"},
        ]

    with pytest.raises(ConfigError) as caught:
        load_config(_variant(tmp_path, tweak))
    assert any("duplicate AMI node id 'pbx1'" in str(p) for p in caught.value.problems)

    def tweak_ok(data: dict[str, Any]) -> None:
        tweak(data)
        data["asterisk"]["ami"]["nodes"][1]["id"] = "pbx2"

    varied = load_config(_variant(tmp_path, tweak_ok))
    assert [n.host for n in varied.asterisk.ami.node_list()] == ["10.0.0.1", "10.0.0.2"]
    from ivr.asterisk.render import RenderOptions

    queues = render_queues(varied, RenderOptions.from_config(varied))
    operator = queues.split("[operator]")[1].split("\n[")[0]
    assert "autopause=yes" in operator
