"""AMI injection through the console, tried for real (issue 10, finding 1).

A citizen talks to an agent through the real Asterisk; the agent, signed in to
the console, posts a pause "reason" that would end the QueuePause action and
start ``Action: Hangup`` for every channel. The console refuses it with a clear
message, nothing reaches Asterisk, and the call goes on to its natural end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import start_web
from ivr.web.store import UserStore
from queue_manager.manager import QueueManager
from tests.rig.stack import (
    HOTLINE_NUMBER,
    Ports,
    free_tcp_port,
    free_udp_port,
    start_asterisk,
    wait_for,
    write_test_config,
)

pytestmark = [pytest.mark.asterisk]

PASSWORD = "mật-khẩu-thử-nghiệm"
HOSTILE_REASON = "x\r\n\r\nAction: Hangup\r\nChannel: /./"
AGENT_TALKS_MS = 8000


@dataclass
class Rig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    manager: QueueManager
    agent_phone: SippAnswerer
    workdir: Path
    url: str


def _tweak(data: dict[str, Any]) -> None:
    data["agents"].append({"id": "qa1", "name": "Nguyễn Thị Lan", "phone": "qa-1"})
    for queue in data["queues"]:
        if queue["id"] == "operator":
            queue.update(members=["qa1"], ring_seconds=15, wrapup_seconds=1)
    data["roster"]["assignments"] = []
    data["roster"]["overrides"] = []
    data["web"] = {"cookie_secure": False}  # aiohttp's client keeps secure cookies off http


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[Rig]:
    base = tmp_path_factory.mktemp("ami-injection")
    phone = SippAnswerer(base / "sipp", "qa-1", mode="answer", hold_ms=AGENT_TALKS_MS)
    await phone.start()
    config_path = write_test_config(
        base,
        Ports(),
        {
            **{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice",
                                                  "t-agent")},
            "qa-1": phone.contact,
        },
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=_tweak,
    )  # fmt: skip
    asterisk, config = start_asterisk(base, config_path)
    services: RunningServices = await start_services(config)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    UserStore(sessions).add("dtv-lan", PASSWORD, "agent", agent_id="qa1")
    UserStore(sessions).add("giamsat", PASSWORD, "supervisor")
    manager = QueueManager(config, sessions, backoff=(1.0, 3.0), ping_interval=2.0)
    await manager.start()
    port = free_tcp_port()
    runner: web.AppRunner = await start_web(config, sessions, queue_manager=manager, port=port)
    try:
        await wait_for(lambda: manager.links["local"].synced.is_set(), 20, "the first resync")
        yield Rig(asterisk, config, manager, phone, base, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        await manager.close()
        await services.close()
        asterisk.stop()
        engine.dispose()
        await phone.stop()


async def _signed_in(rig: Rig, username: str) -> tuple[aiohttp.ClientSession, str]:
    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await client.get(rig.url + "/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page
    answer = await client.post(
        rig.url + "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert answer.status == 302, await answer.text()
    me = await (await client.get(rig.url + "/api/v1/me")).json()
    return client, me["csrf_token"]


def _up_channels(asterisk: AsteriskInstance) -> list[str]:
    return [
        line.split("!")[0]
        for line in asterisk.rx("core show channels concise").splitlines()
        if "!Up!" in line
    ]


async def test_a_hostile_pause_reason_is_refused_and_the_live_call_goes_on(rig: Rig) -> None:
    call = asyncio.create_task(
        SippCaller(rig.workdir / "calls").call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id="0912000555",
            steps=[Pause(500), Dtmf("0")],  # 0: the operator queue
            timeout_s=60,
        )
    )
    await rig.agent_phone.wait_answered(1, timeout=30)
    await wait_for(
        lambda: any(c.startswith("PJSIP/qa-1-") for c in _up_channels(rig.asterisk)),
        10, "the agent's channel up",
    )  # fmt: skip
    up_before = set(_up_channels(rig.asterisk))
    agent, token = await _signed_in(rig, "dtv-lan")
    supervisor, supervisor_token = await _signed_in(rig, "giamsat")
    try:
        for client, path, csrf in (
            (agent, "/api/v1/agent/pause", token),
            (agent, "/agent/pause", token),
            (supervisor, "/api/v1/agents/qa1/pause", supervisor_token),
        ):
            refused = await client.post(
                rig.url + path, data={"reason": HOSTILE_REASON},
                headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
            )  # fmt: skip
            assert refused.status == 400, (path, await refused.text())
            body = await refused.json()
            assert body["message"].startswith("Lý do tạm nghỉ không hợp lệ"), body
        # Nothing was sent: the call's channels are all still up and the agent
        # is not paused.
        assert up_before <= set(_up_channels(rig.asterisk))
        members = rig.manager.links["local"].model.queues["operator"].members
        assert not members["PJSIP/qa-1"].paused
        # A reason from the list still works, so the refusal is about the text.
        ok = await agent.post(
            rig.url + "/api/v1/agent/pause", data={"reason": "break"},
            headers={"X-CSRF-Token": token},
        )  # fmt: skip
        assert ok.status == 200, await ok.text()
        await wait_for(lambda: members["PJSIP/qa-1"].paused, 10, "the agent paused")
    finally:
        await agent.close()
        await supervisor.close()
    finished = await call
    # The conversation ran until the agent's phone hung up after its talk time.
    assert finished.answered and finished.hung_up_by == "remote", finished.log_text
    assert rig.agent_phone.answered_count == 1
    log = rig.asterisk.log_tail(2000)
    assert "Action: Hangup" not in log
    assert "Hangup" not in "\n".join(line for line in log.splitlines() if "manager" in line.lower())
