"""/metrics and /healthz of a real ``hotline serve`` (FastAGI, queue manager and
console in one process) against a real Asterisk, with SIPp for the citizen
and the agent: a caller pressing 0 waits in the operator queue while the
agent's phone rings, then the agent answers. Read through the console's HTTP
port with prometheus_client's own parser, as Prometheus would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.contracts import agi_scripts
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import bound_port
from tests.rig.stack import HOTLINE_NUMBER, Ports, free_udp_port, start_asterisk, wait_for
from tests.rig.stack import write_test_config as write_config

pytestmark = pytest.mark.asterisk

RING_MS = 4000  # the agent's phone rings this long: the caller waits meanwhile
WHERE = {"hotline": "bac-tu-liem", "queue": "operator", "node": "local"}


@dataclass
class MetricsRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    agent: SippAnswerer
    workdir: Path
    http: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{bound_port(self.services.web_runner)}"

    async def metrics(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base_url}/metrics") as answer:
            assert answer.status == 200, await answer.text()
            text = await answer.text()
        return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], family: str, name: str, **labels: str) -> float:
    found = [
        s.value
        for s in families.get(family, type("F", (), {"samples": []})()).samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return float(sum(found))


def _tweak(base: Path) -> Any:
    def tweak(data: dict[str, Any]) -> None:
        data["agents"].append({"id": "m-agent", "name": "Metrics agent", "phone": "m-agent"})
        operator = next(q for q in data["queues"] if q["id"] == "operator")
        operator.update(members=["m-agent"], ring_seconds=15, wrapup_seconds=0)
        # Only the static member: the roster's agents have no phones on this rig.
        data["roster"]["assignments"] = []
        data["roster"]["overrides"] = []
        data["web"] = {"port": 0, "cookie_secure": False, "secret_file": str(base / "web-secret")}

    return tweak


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[MetricsRig]:
    base = tmp_path_factory.mktemp("metrics")
    agent = SippAnswerer(base / "sipp", "m-agent", mode="answer", ring_ms=RING_MS, hold_ms=3000)
    await agent.start()
    contacts = {p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice")}
    contacts["t-agent"] = "sip:t-agent@127.0.0.1:9"
    contacts["m-agent"] = agent.contact
    config_path = write_config(
        base, Ports(), contacts, quick_prompts, trunk_port=free_udp_port(), tweak=_tweak(base)
    )
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config, parts=frozenset({"agi", "ami", "web"}))
    http = aiohttp.ClientSession()
    rig = MetricsRig(asterisk, config, services, agent, base, http)
    try:
        assert services.queue_manager is not None
        link = services.queue_manager.links["local"]
        await wait_for(lambda: link.synced.is_set(), 20, "the first AMI resync")
        yield rig
    finally:
        await http.close()
        await services.close()
        asterisk.stop()
        await agent.stop()


async def test_metrics_show_the_waiting_caller_then_the_answered_outcome(
    rig: MetricsRig,
) -> None:
    before = await rig.metrics()
    assert sample(before, "hotline_ami_link_up", "hotline_ami_link_up", node="local") == 1
    answered_before = sample(
        before, "hotline_queue_calls", "hotline_queue_calls_total", outcome="answered", **WHERE
    )
    caller = SippCaller(rig.workdir / "calls")
    call = asyncio.create_task(
        caller.call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id="0912000777",
            steps=[Pause(500), Dtmf("0")],
            timeout_s=40,
        )
    )
    waiting_seen: dict[str, Any] = {}

    async def caller_waiting() -> bool:
        families = await rig.metrics()
        if sample(families, "hotline_queue_callers_waiting",
                  "hotline_queue_callers_waiting", **WHERE) == 1:  # fmt: skip
            waiting_seen.update(families)
            return True
        return False

    await wait_for(caller_waiting, 25, "/metrics to show the caller waiting", interval=0.2)
    oldest = sample(waiting_seen, "hotline_queue_oldest_wait_seconds",
                    "hotline_queue_oldest_wait_seconds", **WHERE)  # fmt: skip
    assert 0 <= oldest < 30
    # The member is being rung for this caller: in a call, not available.
    assert sample(waiting_seen, "hotline_queue_members", "hotline_queue_members",
                  state="in_call", **WHERE) == 1  # fmt: skip
    # No caller number in any series.
    text = "\n".join(str(f.samples) for f in waiting_seen.values())
    assert "0912000777" not in text

    answered: dict[str, Any] = {}

    async def call_answered() -> bool:
        families = await rig.metrics()
        count = sample(families, "hotline_queue_calls", "hotline_queue_calls_total",
                       outcome="answered", **WHERE)  # fmt: skip
        if count == answered_before + 1:
            answered.update(families)
            return True
        return False

    await wait_for(call_answered, 25, "/metrics to count the answered call", interval=0.2)
    assert sample(answered, "hotline_queue_callers_waiting",
                  "hotline_queue_callers_waiting", **WHERE) == 0  # fmt: skip
    # The wait (about the ring time) is in the wait histogram of answered calls.
    assert sample(answered, "hotline_queue_wait_seconds", "hotline_queue_wait_seconds_count",
                  outcome="answered", **WHERE) >= 1  # fmt: skip
    result = await call
    assert result.answered, result

    async def call_completed() -> bool:
        families = await rig.metrics()
        talked = sample(families, "hotline_queue_talk_seconds",
                        "hotline_queue_talk_seconds_count", **WHERE)  # fmt: skip
        entries = sample(families, "hotline_agi_requests", "hotline_agi_requests_total",
                         script=agi_scripts.ENTRY.name, outcome="ok")  # fmt: skip
        return talked >= 1 and entries >= 1

    await wait_for(call_completed, 20, "the talk time and the FastAGI entry in /metrics")

    async with rig.http.get(f"{rig.base_url}/healthz") as answer:
        body = await answer.json()
        assert answer.status == 200, body
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["ami:local"] == {"ok": True}
    assert body["checks"]["fastagi"] == {"ok": True}


async def test_healthz_fails_while_the_ami_link_is_cut(rig: MetricsRig) -> None:
    assert rig.services.queue_manager is not None
    link = rig.services.queue_manager.links["local"]
    await wait_for(lambda: link.synced.is_set(), 20, "the AMI link up")
    logins = link.logins
    link.cut()

    async def failing() -> dict[str, Any] | None:
        async with rig.http.get(f"{rig.base_url}/healthz") as answer:
            body = await answer.json()
            return body if answer.status == 503 else None

    body = await wait_for(failing, 10, "/healthz to report the AMI link down", interval=0.05)
    assert body["checks"]["ami:local"] == {"ok": False, "reason": "not connected"}
    # It comes back by itself, and the reconnect is counted.
    await wait_for(lambda: link.synced.is_set(), 30, "the AMI link back")
    families = await rig.metrics()
    reconnects = sample(families, "hotline_ami_reconnects", "hotline_ami_reconnects_total",
                        node="local")  # fmt: skip
    assert reconnects >= logins  # logins - 1 before the cut, one more after it
