"""Failover behind Kamailio (issue 15's proof), on tests/rig/cluster.py: the
proxy on 127.0.0.1, the owner node on 127.0.0.2, the standby on 127.0.0.3,
the agents' phones registered through the proxy.

Calls to both hotlines land on the owner and reach the agents; the owner is
SIGKILLed with a call up; once Kamailio's probes mark it down every new call
for its hotlines is answered by the standby and reaches an agent (the
standby's queues have the agents: static members of the rendered config); the
call records written before the kill are all still there. The call that was
up on the dead node is lost (its record stays open, as the docs say). A call
placed the moment the owner dies goes to the standby too (failure_route); the
owner started again takes new calls once the probes see it up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ivr.db.models import Call
from ivr.sim.sipp import Dtmf, Pause
from tests.rig.cluster import (
    A_NUMBER,
    A_PHONE,
    Cluster,
    start_cluster,
    wait_node_down,
    wait_node_up,
)
from tests.rig.sip_register import register
from tests.rig.stack import wait_for
from tests.test_tenancy import B_NUMBER, B_PHONE, A, B

pytestmark = pytest.mark.asterisk

# hotline → (number, key to its agents' queue, the agent's phone)
ROUTES = {A: (A_NUMBER, "0", A_PHONE), B: (B_NUMBER, "1", B_PHONE)}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[Cluster]:
    rig = await start_cluster(tmp_path_factory.mktemp("cluster"), quick_prompts, agent_hold_ms=5000)
    try:
        yield rig
    finally:
        await rig.close()


def _e164(local: str) -> str:
    return "+84" + local[1:]


async def _served_by_agent(rig: Cluster, hotline: str, caller: str) -> Call:
    """One citizen's call through the proxy, to the agent; its closed record."""
    number, key, phone = ROUTES[hotline]
    answered = rig.phones[phone].answered_count
    result = await rig.call(number, caller, [Pause(500), Dtmf(key)], timeout_s=40)
    assert result.answered, f"{result.log_text}\n{rig.logs()}"
    await rig.phones[phone].wait_answered(answered + 1, timeout=30)
    record = await rig.records.wait_closed(_e164(caller), 30)
    assert record.hotline_id == hotline
    assert record.answered_by == f"PJSIP/{phone}", record.answered_by
    return record


def _node(record: Call) -> str:
    """The node that carried a call: its uniqueid starts with the node's name."""
    return record.uniqueid.rsplit("-", 1)[0]


@pytest.mark.asyncio(loop_scope="session")
async def test_phones_register_through_the_proxy_with_their_secrets(cluster: Cluster) -> None:
    # Challenged, then accepted (the rig registered both agents' phones).
    assert cluster.registrations == {A_PHONE: [401, 200], B_PHONE: [401, 200]}
    from ivr.sim.sipp.ports import free_port

    wrong = await register(
        cluster.workdir / "register", cluster.proxy, A_PHONE, free_port(), password="not-it-1234"
    )
    assert wrong.statuses[-1] in (401, 403) and 200 not in wrong.statuses, wrong.log_text
    stranger = await register(
        cluster.workdir / "register", cluster.proxy, "nobody", free_port(), password="x" * 12
    )
    assert stranger.statuses == [403], stranger.log_text


@pytest.mark.asyncio(loop_scope="session")
async def test_the_standby_takes_the_calls_when_the_owner_dies(cluster: Cluster) -> None:
    owner, standby = cluster.nodes["node-a"], cluster.nodes["standby"]
    # Both hotlines' calls land on their owner and reach an agent.
    before = [
        await _served_by_agent(cluster, A, "0912000101"),
        await _served_by_agent(cluster, B, "0912000102"),
    ]
    assert [_node(r) for r in before] == ["node-a", "node-a"]
    assert standby.processed_calls() == 0

    # A call is up on the owner (the agent talks for a while) when it dies.
    up_caller = "0912000103"
    answered = cluster.phones[A_PHONE].answered_count
    up_call = asyncio.create_task(
        cluster.call(A_NUMBER, up_caller, [Pause(500), Dtmf("0")], timeout_s=20)
    )
    await cluster.phones[A_PHONE].wait_answered(answered + 1, timeout=30)
    up_record = await wait_for(
        lambda: next(iter(cluster.records.by_caller(_e164(up_caller))), None),
        10,
        "the record of the call that is up",
    )
    owner.kill()
    # Even before the probes notice, a new call is not lost: the owner does not
    # answer the INVITE, so Kamailio tries the standby (failure_route).
    during = await _served_by_agent(cluster, B, "0912000107")
    assert _node(during) == "standby"
    await wait_node_down(cluster, "node-a")

    # Every new call for its hotlines is answered by the standby and reaches an agent.
    after = [
        await _served_by_agent(cluster, A, "0912000104"),
        await _served_by_agent(cluster, B, "0912000105"),
        await _served_by_agent(cluster, A, "0912000106"),
    ]
    assert [_node(r) for r in after] == ["standby"] * 3
    assert standby.processed_calls() >= 4

    # Nothing written before the kill is lost: the finished calls as they were,
    # and the one that was up is still recorded (its end never came: lost).
    for record in before:
        [again] = cluster.records.by_caller(record.caller_number or "")
        assert (again.uniqueid, again.outcome, again.answered_by, again.ended_at) == (
            record.uniqueid, record.outcome, record.answered_by, record.ended_at,
        )  # fmt: skip
    [still] = cluster.records.by_caller(_e164(up_caller))
    assert still.uniqueid == up_record.uniqueid and _node(still) == "node-a"
    assert still.ended_at is None
    up_result = await up_call
    assert up_result.answered  # answered before the kill; then the node vanished

    # The owner comes back: once it answers the probes, new calls are its own again.
    owner.restart()
    await wait_node_up(cluster, "node-a")
    back = await _served_by_agent(cluster, A, "0912000108")
    assert _node(back) == "node-a"
