"""The queue manager on the real two-node rig (tests/rig/cluster.py): one AMI
link per node, the roster's agents added on the owner AND the standby, an
agent's pause reaching both, and when the owner is SIGKILLed the wallboard
shows it down with its hotlines on standby."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ivr.web.live import LiveHub
from queue_manager.manager import QueueManager, agent_interface, desired_members
from tests.rig.cluster import Cluster, start_cluster
from tests.rig.stack import wait_for
from tests.test_tenancy import A, B

pytestmark = pytest.mark.asterisk


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[Cluster]:
    cluster = await start_cluster(tmp_path_factory.mktemp("cluster-queues"), quick_prompts)
    try:
        yield cluster
    finally:
        await cluster.close()


def _members(rig: Cluster, node: str, queue: str) -> set[str]:
    text = rig.nodes[node].asterisk.rx(f"queue show {queue}")
    return set(re.findall(r"\((PJSIP/[^ )]+)[) ]", text))


@pytest.mark.asyncio(loop_scope="session")
async def test_roster_and_pause_on_owner_and_standby_and_the_owner_shown_down(
    rig: Cluster,
) -> None:
    # The rig's services run FastAGI only: the queue manager runs here.
    manager = QueueManager(rig.config, backoff=(0.2, 1.0), ping_interval=1.0)
    await manager.start()
    try:
        await _check(rig, manager)
    finally:
        await manager.close()


async def _check(rig: Cluster, manager: QueueManager) -> None:
    assert set(manager.links) == {"node-a", "standby"}
    for link in manager.links.values():
        await wait_for(link.synced.is_set, 30, f"AMI link to {link.node}")
    # Whatever shift runs now: a manual login puts an agent in the operator queue.
    await manager.login("dtv01", ["operator"], by="test")
    wanted = desired_members(rig.config, manager.clock(), manager._overrides.values())
    agents = {a.id: a for a in rig.config.agents}
    expected = {agent_interface(agents[a]) for a in wanted["operator"]}
    assert "PJSIP/dtv-01" in expected
    for node in ("node-a", "standby"):
        try:
            await wait_for(lambda n=node: expected <= _members(rig, n, "operator"), 20,
                           f"the roster on {node}")  # fmt: skip
        except TimeoutError:
            raise AssertionError(
                f"{expected} not all in {node}'s operator queue:\n"
                + rig.nodes[node].asterisk.rx("queue show operator")
            ) from None

    await manager.pause("dtv01", "meal")
    for node in ("node-a", "standby"):
        await wait_for(
            lambda n=node: "paused:meal" in rig.nodes[n].asterisk.rx("queue show operator"),
            20, f"the pause on {node}",
        )  # fmt: skip

    hub = LiveHub(rig.config, manager)
    board = hub.board()
    assert [(n["id"], n["up"]) for n in board["nodes"]] == [("node-a", True), ("standby", True)]
    operator = next(q for q in board["queues"] if q["id"] == "operator")
    dtv01 = [a for a in operator["agents"] if a["interface"] == "PJSIP/dtv-01"]
    assert len(dtv01) == 1 and dtv01[0]["nodes"] == ["node-a", "standby"]

    rig.nodes["node-a"].kill()
    await wait_for(lambda: not manager.links["node-a"].up, 30, "the owner's link to drop")
    board = hub.board()
    assert [(n["id"], n["up"]) for n in board["nodes"]] == [("node-a", False), ("standby", True)]
    assert board["on_standby"] == sorted([A, B])  # node-a owns both hotlines on the rig
    operator = next(q for q in board["queues"] if q["id"] == "operator")
    assert operator["on_standby"] is True
    dtv01 = [a for a in operator["agents"] if a["interface"] == "PJSIP/dtv-01"]
    assert len(dtv01) == 1 and dtv01[0]["nodes"] == ["standby"] and dtv01[0]["paused"]
