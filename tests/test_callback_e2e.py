"""A waiting caller presses 1 and is called back when their turn comes, on the
real Asterisk: the queue manager's dispatcher originates the call back through
the trunk once the only agent is free, and the citizen lands first in line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.queue_records.models import CallbackRequest
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from tests.rig.stack import HOTLINE_NUMBER, Ports, start_asterisk, wait_for, write_test_config

pytestmark = [pytest.mark.asterisk, pytest.mark.db]

AGENT_HOLD_MS = 16000  # longer than the second caller's whole call


@dataclass
class CallbackRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    ports: Ports
    agent: SippAnswerer
    carrier: SippAnswerer
    services: RunningServices
    workdir: Path


def _tweak(data: dict[str, Any]) -> None:
    data["roster"]["assignments"] = []  # only the static test agent serves
    data["roster"]["overrides"] = []
    for queue in data["queues"]:
        if queue["id"] == "operator":
            queue["callback_retry_seconds"] = 5


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, quick_prompts: Path, sipp_binary: str
) -> AsyncIterator[CallbackRig]:
    base = tmp_path_factory.mktemp("callback")
    agent = SippAnswerer(base / "sipp", "t-agent", mode="answer", hold_ms=AGENT_HOLD_MS)
    carrier = SippAnswerer(base / "sipp", "carrier", mode="answer", hold_ms=0)
    await agent.start()
    await carrier.start()
    ports = Ports()
    path = write_test_config(
        base,
        ports,
        {
            "t-agent": agent.contact,
            "t-chair": agent.contact,
            "t-chair-silent": agent.contact,
            "t-vice": agent.contact,
        },
        quick_prompts,
        trunk_port=carrier.port,
        tweak=_tweak,
    )
    asterisk, config = start_asterisk(base, path)
    services = await start_services(config, parts=frozenset({"agi", "ami"}))
    try:
        assert services.queue_manager is not None
        link = next(iter(services.queue_manager.links.values()))
        await wait_for(lambda: link.connected.is_set(), 20, "the AMI link")
        yield CallbackRig(asterisk, config, ports, agent, carrier, services, base)
    finally:
        await services.close()
        asterisk.stop()
        await agent.stop()
        await carrier.stop()


async def test_caller_keeps_their_place_and_is_called_back_when_an_agent_is_free(
    rig: CallbackRig,
) -> None:
    import asyncio

    first, second = "0912600001", "0912600002"
    caller = SippCaller(rig.workdir / "calls")
    target = f"127.0.0.1:{rig.ports.sip}"
    # The first caller takes the only agent for 16 s.
    busy = asyncio.create_task(
        caller.call(
            target=target,
            number=HOTLINE_NUMBER,
            caller_id=first,
            steps=[Pause(600), Dtmf("0")],
            timeout_s=40,
        )
    )
    await rig.agent.wait_rung(1, timeout=15)
    # The second hears that all are busy, presses 1 while waiting, hears the
    # confirmation and its case code, and the IVR hangs up.
    waiting = await caller.call(
        target=target,
        number=HOTLINE_NUMBER,
        caller_id=second,
        steps=[Pause(600), Dtmf("0"), Pause(4000), Dtmf("1")],
        timeout_s=40,
    )
    assert waiting.answered and waiting.hung_up_by == "remote", waiting.log_text
    sessions = make_session_factory(make_engine(rig.config.database_url))
    with sessions() as session:
        request = session.scalar(
            select(CallbackRequest).where(CallbackRequest.caller_number == "+84912600002")
        )
    assert request is not None and request.case_code
    assert rig.carrier.rung_count == 0  # the agent is still busy: no call back yet
    assert rig.agent.answered_count == 1

    # When the agent is free, the dispatcher calls the citizen back through the trunk …
    await rig.carrier.wait_rung(1, timeout=30)
    assert [c.dialed for c in rig.carrier.calls] == [second]
    # … who is first in line for that agent, shown with the citizen's number.
    await rig.agent.wait_rung(2, timeout=20)
    assert rig.agent.caller_ids[-1] == second
    assert (await busy).answered

    def done() -> CallbackRequest | None:
        with sessions() as session:
            row = session.get(CallbackRequest, request.id)
            return row if row is not None and row.status == "done" else None

    finished = await wait_for(done, 20, "the call back marked done")
    assert finished.attempts == 1
