"""Two hotlines live at once on the real stack (issue 12): one private
Asterisk, our FastAGI server, the queue manager and the console serve the
Bắc Từ Liêm hotline (A) and the Hà Nội public-administration hotline (B) of
tests/test_tenancy.py.

A SIPp citizen dials B's number and presses 1: the call waits in B's queue
(B's supervisor's wallboard websocket shows it) and B's agent (a SIPp phone)
answers. A's supervisor, signed in all along, gets frames on every change but
never one naming B's queue, agent or caller; A's listen-in on B's agent is
refused with 403 while B's supervisor's is accepted and Asterisk rings B's
supervisor's phone into ChanSpy.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.audit import AuditEntry
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import Call
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import bound_port, start_web
from ivr.web.store import UserStore
from queue_manager.manager import QueueManager
from tests.rig.stack import Ports, free_udp_port, start_asterisk, wait_for, write_test_config
from tests.test_tenancy import B_AGENT, B_NUMBER, B_PHONE, B_QUEUE, A, B, add_second_hotline

pytestmark = pytest.mark.asterisk

PASSWORD = "mật-khẩu-thử-nghiệm"
B_CALLER = "0987000444"
B_SUPERVISOR_PHONE = "t-sup-b"


@dataclass
class TwoHotlines:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    manager: QueueManager
    sessions: Any
    workdir: Path
    url: str


def _prompts_for_both(quick_prompts: Path, base: Path) -> Path:
    """The quick prompts, with B's folder a copy of A's (tones either way)."""
    prompts = base / "prompts"
    shutil.copytree(quick_prompts, prompts)
    shutil.copytree(prompts / A, prompts / B)
    return prompts


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[TwoHotlines]:
    base = tmp_path_factory.mktemp("two-hotlines")
    # B's agent: rings 2 s (the caller waits in B's queue meanwhile), talks 8 s.
    agent_phone = SippAnswerer(base / "sipp", B_PHONE, mode="answer", ring_ms=2000, hold_ms=8000)
    supervisor_phone = SippAnswerer(base / "sipp", B_SUPERVISOR_PHONE, mode="answer", hold_ms=1500)
    for phone in (agent_phone, supervisor_phone):
        await phone.start()

    def tweak(data: dict[str, Any]) -> None:
        add_second_hotline(data)
        next(p for p in data["phones"] if p["id"] == B_PHONE)["contact"] = agent_phone.contact
        queue = next(q for q in data["queues"] if q["id"] == B_QUEUE)
        queue.update(ring_seconds=10, wrapup_seconds=0, callback=False)
        data["web"] = {"cookie_secure": False}

    config_path = write_test_config(
        base, Ports(),
        {**{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")},
         B_SUPERVISOR_PHONE: supervisor_phone.contact},
        _prompts_for_both(quick_prompts, base), trunk_port=free_udp_port(), tweak=tweak,
    )  # fmt: skip
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    users = UserStore(sessions)
    users.add("gs-a", PASSWORD, "supervisor", hotline_id=A)
    users.add("gs-b", PASSWORD, "supervisor", hotline_id=B)
    manager = QueueManager(config, sessions, backoff=(1.0, 3.0), ping_interval=2.0)
    await manager.start()
    runner = await start_web(config, sessions, queue_manager=manager, port=0)
    try:
        await wait_for(lambda: manager.links["local"].synced.is_set(), 20, "the first resync")
        yield TwoHotlines(asterisk, config, services, manager, sessions, base,
                          f"http://127.0.0.1:{bound_port(runner)}")  # fmt: skip
    finally:
        await runner.cleanup()
        await manager.close()
        await services.close()
        asterisk.stop()
        engine.dispose()
        for phone in (agent_phone, supervisor_phone):
            await phone.stop()


@dataclass
class Supervisor:
    http: aiohttp.ClientSession
    csrf: str
    frames: list[str]


async def _signed_in(url: str, username: str) -> Supervisor:
    http = aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await http.get("/login")).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    answer = await http.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1),
              "next": "/"},
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status == 302, await answer.text()
    me = await (await http.get("/api/v1/me")).json()
    return Supervisor(http, me["csrf_token"], [])


async def _follow(supervisor: Supervisor, ready: asyncio.Event) -> None:
    """Keep every frame of the supervisor's wallboard websocket."""
    async with supervisor.http.ws_connect("/ws/wallboard") as ws:
        ready.set()
        async for message in ws:
            supervisor.frames.append(message.data)


def _callers_in(frame: str, queue_id: str) -> list[str]:
    board = json.loads(frame)["board"]
    return [c["caller_id"] for q in board["queues"] if q["id"] == queue_id for c in q["callers"]]


async def _spy(supervisor: Supervisor) -> int:
    answer = await supervisor.http.post(
        "/api/v1/spy",
        json={"agent_id": B_AGENT, "mode": "listen", "phone": B_SUPERVISOR_PHONE},
        headers={"X-CSRF-Token": supervisor.csrf},
    )
    return answer.status


async def test_a_call_to_hotline_b_stays_out_of_hotline_as_supervisor_view(
    rig: TwoHotlines,
) -> None:
    gs_a, gs_b = await _signed_in(rig.url, "gs-a"), await _signed_in(rig.url, "gs-b")
    ready_a, ready_b = asyncio.Event(), asyncio.Event()
    followers = [
        asyncio.create_task(_follow(gs_a, ready_a)),
        asyncio.create_task(_follow(gs_b, ready_b)),
    ]
    try:
        await asyncio.wait_for(asyncio.gather(ready_a.wait(), ready_b.wait()), 10)
        call = asyncio.create_task(
            SippCaller(rig.workdir / "calls").call(
                target=f"127.0.0.1:{rig.config.asterisk.sip.port}", number=B_NUMBER,
                caller_id=B_CALLER, steps=[Pause(500), Dtmf("1")], timeout_s=60,
            )
        )  # fmt: skip
        # B's supervisor sees the caller wait in B's queue.
        await wait_for(
            lambda: any(B_CALLER in _callers_in(f, B_QUEUE) for f in gs_b.frames),
            30, "the caller in B's queue on B's wallboard",
        )  # fmt: skip
        # B's agent answers; then B's supervisor may listen in (409 until the
        # agent is on the call), and A's may not.
        status = 409
        for _ in range(100):
            status = await _spy(gs_b)
            if status != 409:
                break
            await asyncio.sleep(0.1)
        assert status == 200
        assert await _spy(gs_a) == 403
        a_board = await (await gs_a.http.get("/api/v1/wallboard")).text()
        result = await call
        assert result.answered and result.hung_up_by == "remote", result.log_text[-2000:]
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        await gs_a.http.close()
        await gs_b.http.close()
    # The call was B's, end to end.
    with rig.sessions() as session:
        [record] = session.scalars(select(Call).where(Call.caller_number == "+84987000444"))
        assert record.hotline_id == B
    # A's supervisor got frames all along (one per change, B's included) but
    # none naming B's queue, agent or caller.
    assert len(gs_a.frames) > 1
    a_queues = {q.id for q in rig.config.queues_of(A)}
    boards = [json.loads(a_board), *(json.loads(f)["board"] for f in gs_a.frames)]
    for text, board in zip((a_board, *gs_a.frames), boards, strict=True):
        assert B_QUEUE not in text and B_PHONE not in text and B_CALLER not in text
        assert {q["id"] for q in board["queues"]} <= a_queues
    with rig.sessions() as session:
        audited = [
            (e.actor, e.action, e.target)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action.like("spy_%")))
        ]
    assert ("gs-a", "spy_refused", B_AGENT) in audited
    assert ("gs-b", "spy_listen", B_AGENT) in audited
