"""The queue manager past one machine (issue 15), without a PBX: one AMI link per
``cluster.nodes`` entry, the roster and the agents' actions on every node serving
a hotline (owner and standby), call-backs on a serving node that is up, the live
model keyed on (node, queue) and summed per hotline on the wallboard, each node's
link state shown, and the hotlines of a node that is down marked on standby."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.agi.listener import allowed_client_entries
from ivr.config import HotlineConfig, load_config
from ivr.web.access import AccessScope
from ivr.web.live import LiveHub, scoped_board
from ivr.web.models import ADMIN, SUPERVISOR
from queue_manager.ami import AmiError, AmiLink
from queue_manager.manager import QueueManager, desired_members, served_queues
from tests.test_cluster_config import _cluster
from tests.test_tenancy import B_AGENT, B_QUEUE, A, B, write_config

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MORNING = datetime(2026, 11, 30, 9, 0, tzinfo=ZONE)  # the "sang" shift
T0 = 1_800_000_000.0
A_QUEUES = {"operator", "procedures", "conduct", "field"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> HotlineConfig:
    return load_config(write_config(tmp_path_factory.mktemp("cluster"), _cluster()))


class FakeNode:
    """What the manager sends to one node, and whether that node answers."""

    def __init__(self, link: AmiLink) -> None:
        self.link = link
        self.sent: list[dict[str, str]] = []
        link.send = self.send  # type: ignore[method-assign]

    async def send(self, action: Any, as_list: bool = False) -> Any:
        if not self.link.connected.is_set():
            raise AmiError(f"AMI node {self.link.node} is not connected")
        self.sent.append(dict(action))
        return {"Response": "Success"}

    def up(self) -> None:
        self.link.connected.set()
        self.link.synced.set()
        self.link._set_up(True)
        self.link.model.resync([])  # an empty node, as after an Asterisk start

    def down(self) -> None:
        self.link._drop()

    def adds(self) -> set[tuple[str, str]]:
        return {(a["Queue"], a["Interface"]) for a in self.sent if a["Action"] == "QueueAdd"}

    def of(self, kind: str) -> list[dict[str, str]]:
        return [a for a in self.sent if a["Action"] == kind]


@pytest.fixture
def cluster(config: HotlineConfig) -> Iterator[tuple[QueueManager, dict[str, FakeNode]]]:
    manager = QueueManager(config, clock=lambda: MORNING)
    nodes = {node: FakeNode(link) for node, link in manager.links.items()}
    for model in manager.models.values():
        model.clock = lambda: T0 + 100  # Asterisk's event times, today as the model sees it
    for node in nodes.values():
        node.up()
    yield manager, nodes
    manager.db.close(wait=False)


def member_added(node: FakeNode, queue: str, interface: str, **extra: Any) -> None:
    """Asterisk's answer to a QueueAdd: the member appears in the node's model."""
    node.link.model.apply(
        {"Event": "QueueMemberAdded", "Timestamp": f"{T0:.6f}", "Queue": queue,
         "Interface": interface, "MemberName": interface, "Membership": "dynamic",
         "Paused": "0", "Status": "1", **extra}
    )  # fmt: skip


def apply_adds(nodes: dict[str, FakeNode]) -> None:
    for node in nodes.values():
        for queue, interface in node.adds():
            member_added(node, queue, interface)


# --- nodes from the config ------------------------------------------------------------


def test_one_link_per_cluster_node_with_the_ami_user_of_asterisk_ami(
    config: HotlineConfig,
) -> None:
    manager = QueueManager(config)
    try:
        links = {n: (k.host, k.port, k._username) for n, k in manager.links.items()}
    finally:
        manager.db.close(wait=False)
    user = config.asterisk.ami.username
    assert links == {
        "node-a": ("127.0.0.2", 5038, user),
        "node-b": ("127.0.0.3", 5038, user),
        "standby": ("127.0.0.4", 5038, user),
    }
    # FastAGI sessions may come from every node (and loopback), nothing else.
    entries = allowed_client_entries(config.asterisk, config.agi_node_hosts())
    assert {"127.0.0.2", "127.0.0.3", "127.0.0.4"} <= set(entries)


def test_without_cluster_nodes_the_one_node_of_asterisk_ami_as_before(tmp_path: Path) -> None:
    single = load_config(write_config(tmp_path, second=False))
    assert [(n.id, n.port) for n in single.ami_nodes()] == [("local", single.asterisk.ami.port)]
    assert served_queues(single, "local") is None  # every queue
    assert allowed_client_entries(single.asterisk, single.agi_node_hosts()) == (
        allowed_client_entries(single.asterisk)
    )


# --- roster on every serving node -------------------------------------------------------


def test_roster_puts_a_hotlines_agents_on_its_owner_and_the_standby_only(
    cluster: tuple[QueueManager, dict[str, FakeNode]], config: HotlineConfig
) -> None:
    manager, nodes = cluster
    assert served_queues(config, "node-a") == A_QUEUES
    assert served_queues(config, "node-b") == {B_QUEUE}
    assert served_queues(config, "standby") == A_QUEUES | {B_QUEUE}
    asyncio.run(manager.login(B_AGENT, [B_QUEUE]))  # B has no roster: a manual login
    wanted = desired_members(config, MORNING, manager._overrides.values())
    phone = {a.id: f"PJSIP/{a.phone}" for a in config.agents}
    expected = {(q, phone[a]) for q, agents in wanted.items() for a in agents}
    a_side = {(q, i) for q, i in expected if q in A_QUEUES}
    assert a_side and (B_QUEUE, phone[B_AGENT]) in expected
    assert nodes["node-a"].adds() == a_side
    assert nodes["node-b"].adds() == {(B_QUEUE, phone[B_AGENT])}
    # The standby already has every hotline's agents: a failover finds them there.
    assert nodes["standby"].adds() == expected


def test_a_node_back_after_being_down_gets_the_roster_of_its_hotlines(
    cluster: tuple[QueueManager, dict[str, FakeNode]], config: HotlineConfig
) -> None:
    manager, nodes = cluster
    nodes["standby"].down()
    asyncio.run(manager.apply_roster())
    assert nodes["standby"].sent == []
    nodes["standby"].up()
    asyncio.run(manager._on_synced(nodes["standby"].link))
    assert {q for q, _ in nodes["standby"].adds()} == {
        q for q, agents in desired_members(config, MORNING).items() if agents
    }


def test_pause_resume_and_log_off_reach_every_serving_node(
    cluster: tuple[QueueManager, dict[str, FakeNode]],
) -> None:
    manager, nodes = cluster
    asyncio.run(manager.apply_roster())
    apply_adds(nodes)
    for node in nodes.values():
        node.sent.clear()
    asyncio.run(manager.pause("dtv01", "meal"))
    for node_id in ("node-a", "standby"):
        [pause] = nodes[node_id].of("QueuePause")
        assert pause == {"Action": "QueuePause", "Interface": "PJSIP/dtv-01",
                         "Paused": "true", "Reason": "meal"}  # fmt: skip
    assert nodes["node-b"].sent == []  # not a member there
    asyncio.run(manager.unpause("dtv01"))
    assert [a["Paused"] for a in nodes["standby"].of("QueuePause")] == ["true", "false"]
    asyncio.run(manager.logout("dtv01", by="giamsat"))
    for node_id in ("node-a", "standby"):
        removed = {a["Queue"] for a in nodes[node_id].of("QueueRemove")}
        assert removed == {"operator", "procedures", "field"}  # dtv01's morning queues
    assert nodes["node-b"].of("QueueRemove") == []


def test_a_pause_while_the_standby_is_down_still_pauses_and_holds_there_after(
    cluster: tuple[QueueManager, dict[str, FakeNode]],
) -> None:
    """The standby down (its AMI cut, or Asterisk restarting): the pause reaches
    the owner, and the standby's Asterisk, back without its members, gets the
    agent re-added paused with the same reason."""
    manager, nodes = cluster
    asyncio.run(manager.apply_roster())
    apply_adds(nodes)
    nodes["standby"].down()
    asyncio.run(manager.pause("dtv02", "break"))  # did raise AmiError before
    assert [a["Reason"] for a in nodes["node-a"].of("QueuePause")] == ["break"]
    nodes["standby"].sent.clear()
    nodes["standby"].up()  # a restarted Asterisk: no dynamic members
    asyncio.run(manager._on_synced(nodes["standby"].link))
    re_added = [a for a in nodes["standby"].of("QueueAdd") if a["Interface"] == "PJSIP/dtv-02"]
    assert re_added and all(a["Paused"] == "true" and a["Reason"] == "break" for a in re_added)
    others = [a for a in nodes["standby"].of("QueueAdd") if a["Interface"] != "PJSIP/dtv-02"]
    assert others and all(a["Paused"] == "false" for a in others)


def test_call_backs_are_originated_on_a_serving_node_that_is_up(
    cluster: tuple[QueueManager, dict[str, FakeNode]],
) -> None:
    manager, nodes = cluster
    assert manager.sender_for(A) == nodes["node-a"].send
    assert manager.sender_for(B) == nodes["node-b"].send
    nodes["node-a"].down()
    assert manager.sender_for(A) == nodes["standby"].send  # after a failover
    nodes["standby"].down()
    with pytest.raises(AmiError):
        manager.sender_for(A)
    assert manager.sender_for(B) == nodes["node-b"].send


# --- the live model keyed on (node, queue), summed per hotline ----------------------------


def ev(kind: str, at: float, **fields: Any) -> dict[str, str]:
    return {"Event": kind, "Timestamp": f"{at:.6f}", **{k: str(v) for k, v in fields.items()}}


def joined(node: FakeNode, uniqueid: str, number: str, at: float, position: int = 1) -> None:
    node.link.model.apply(ev("QueueCallerJoin", at, Queue="operator", Uniqueid=uniqueid,
                             Channel=f"PJSIP/trunk-{uniqueid}", CallerIDNum=number,
                             Position=position))  # fmt: skip


def answered(node: FakeNode, uniqueid: str, agent: str, at: float, hold: int) -> None:
    model = node.link.model
    model.apply(ev("QueueCallerLeave", at, Queue="operator", Uniqueid=uniqueid, Position=1))
    model.apply(ev("AgentConnect", at, Queue="operator", Uniqueid=uniqueid, Interface=agent,
                   MemberName=agent, HoldTime=hold, RingTime=2))  # fmt: skip


def operator_of(board: dict[str, Any]) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["id"] == "operator")


def test_a_hotlines_queue_on_owner_and_standby_is_one_queue_on_the_board(
    cluster: tuple[QueueManager, dict[str, FakeNode]], config: HotlineConfig
) -> None:
    """Events from two nodes, one by one: a caller answered within the service
    level on the owner, one answered late on the standby, one waiting on each
    (the same uniqueid on both nodes: two callers), and an agent who is a
    member on both nodes, idle on the owner and talking on the standby."""
    manager, nodes = cluster
    owner, standby = nodes["node-a"], nodes["standby"]
    for node in (owner, standby):
        member_added(node, "operator", "PJSIP/dtv-01")
    joined(owner, "1800000000.1", "0912000001", T0)
    answered(owner, "1800000000.1", "PJSIP/dtv-03", T0 + 10, hold=10)
    joined(standby, "1800000000.2", "0912000002", T0 + 20)
    answered(standby, "1800000000.2", "PJSIP/dtv-01", T0 + 80, hold=60)
    joined(owner, "1800000000.7", "0912000007", T0 + 50)
    joined(standby, "1800000000.7", "0912000077", T0 + 70)  # same id, other node

    hub = LiveHub(config, manager)
    board = hub.board()
    operator = operator_of(board)
    assert operator["today"]["answered"] == 2
    # 1 of 2 within 30 s: the sum's service level, not the last node's 0 %.
    assert operator["service_level_percent"] == 50.0
    assert operator["today"]["average_wait_seconds"] == 35.0
    assert [(c["node"], c["caller_id"], c["position"]) for c in operator["callers"]] == [
        ("node-a", "0912000007", 1),
        ("standby", "0912000077", 2),
    ]
    dtv01 = [a for a in operator["agents"] if a["interface"] == "PJSIP/dtv-01"]
    assert len(dtv01) == 1 and dtv01[0]["state"] == "talking"
    assert dtv01[0]["nodes"] == ["node-a", "standby"]
    assert board["on_standby"] == [] and not operator["on_standby"]


def test_a_node_down_is_shown_with_since_when_and_its_hotlines_on_standby(
    cluster: tuple[QueueManager, dict[str, FakeNode]], config: HotlineConfig
) -> None:
    manager, nodes = cluster
    owner, standby = nodes["node-a"], nodes["standby"]
    member_added(owner, "operator", "PJSIP/dtv-01")
    member_added(nodes["node-b"], B_QUEUE, "PJSIP/hcc-01")
    joined(owner, "1800000000.1", "0912000001", T0)  # up on the owner when it dies
    answered(owner, "1800000000.3", "PJSIP/dtv-01", T0 + 5, hold=5)
    hub = LiveHub(config, manager)
    assert operator_of(hub.board())["callers"][0]["caller_id"] == "0912000001"

    owner.down()
    since = owner.link.since
    member_added(standby, "operator", "PJSIP/dtv-01")
    joined(standby, "1800000000.1", "0912000001", T0 + 30)  # the citizen calls again
    board = hub.board()
    node_a = next(n for n in board["nodes"] if n["id"] == "node-a")
    assert node_a == {"id": "node-a", "up": False, "since": since, "role": "owner",
                      "hotlines": [A]}  # fmt: skip
    assert all(n["up"] for n in board["nodes"] if n["id"] != "node-a")
    assert board["on_standby"] == [A]
    operator = operator_of(board)
    assert operator["on_standby"] is True
    assert next(q for q in board["queues"] if q["id"] == B_QUEUE)["on_standby"] is False
    # The dead node's caller is not shown twice, nor its stale agent picture;
    # what it counted today still counts.
    assert [(c["node"], c["caller_id"]) for c in operator["callers"]] == [("standby", "0912000001")]
    assert [a["nodes"] for a in operator["agents"]] == [["standby"]]
    assert operator["today"]["answered"] == 1
    assert board["synced"] is True  # the nodes that are up are in sync

    owner.up()
    board = hub.board()
    assert board["on_standby"] == [] and all(n["up"] for n in board["nodes"])


def test_a_hotlines_supervisor_sees_only_the_nodes_serving_it(
    cluster: tuple[QueueManager, dict[str, FakeNode]], config: HotlineConfig
) -> None:
    """The JSON API and the websocket give a supervisor of hotline B the nodes
    serving B (its owner and the standby), naming no other hotline."""
    manager, nodes = cluster
    nodes["node-a"].down()
    board = LiveHub(config, manager).board()
    assert board["on_standby"] == [A]
    everyone = scoped_board(AccessScope("admin", ADMIN), config, board)
    assert [n["id"] for n in everyone["nodes"]] == ["node-a", "node-b", "standby"]
    theirs = scoped_board(AccessScope("gs-hcc", SUPERVISOR, hotline_id=B), config, board)
    assert [(n["id"], n["hotlines"]) for n in theirs["nodes"]] == [
        ("node-b", [B]),
        ("standby", []),
    ]
    assert theirs["on_standby"] == []
