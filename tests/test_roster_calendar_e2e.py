"""The roster calendar end to end on a real Asterisk (issue 16): an administrator
puts an agent into tomorrow's night shift on the week grid, previews and
applies the change; the queue manager, on a fixed clock, leaves Asterisk's
queue as it was until 22:00 that night, adds the agent at 22:00 and takes them
out when the night ends at 06:00.

Its own Asterisk (like tests/test_queue_manager_e2e.py): the operator queue has
no static members, so only the roster (through AMI) puts agents in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.prompts import PromptBuildReport
from ivr.web.app import create_app
from queue_manager.manager import QueueManager
from tests.rig.console import Account, console_sessions
from tests.rig.stack import Ports, free_udp_port, start_asterisk, wait_for
from tests.rig.stack import write_test_config as write_config

pytestmark = pytest.mark.asterisk

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PASSWORD = "mật-khẩu-đủ-dài"


class FakeClock:
    def __init__(self, local: datetime) -> None:
        self.now = local.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set_local(self, local: datetime) -> None:
        self.now = local.astimezone(UTC)


def no_prompts(config: HotlineConfig) -> PromptBuildReport:
    return PromptBuildReport()


def _tweak(data: dict[str, Any]) -> None:
    for n in (1, 2):
        data["agents"].append({"id": f"qa{n}", "name": f"QA {n}", "phone": f"qa-{n}"})
    for queue in data["queues"]:
        if queue["id"] == "operator":
            queue.update(members=[])
    # qa1 answers every shift; qa2 is on no shift until the clerk says so.
    data["roster"]["assignments"] = [
        {"shift": shift, "queue": "operator", "agents": ["qa1"]}
        for shift in ("sang", "chieu", "dem")
    ]
    data["roster"]["overrides"] = []
    data.setdefault("web", {})["cookie_secure"] = False  # the test client speaks plain HTTP


@dataclass
class Rig:
    asterisk: AsteriskInstance
    source: ConfigSource
    manager: QueueManager
    clock: FakeClock
    server: TestServer

    async def members(self) -> str:
        return await self.asterisk.arx("queue show operator")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, asterisk_binary: Path, quick_prompts: Path
) -> AsyncIterator[Rig]:
    base = tmp_path_factory.mktemp("roster-calendar")
    contacts = {
        p: f"sip:{p}@127.0.0.1:9"
        for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent", "qa-1", "qa-2")
    }
    path = write_config(base, Ports(), contacts, quick_prompts, trunk_port=free_udp_port(),
                        tweak=_tweak)  # fmt: skip
    asterisk, config = start_asterisk(base, path)
    source = ConfigSource.of(config)
    clock = FakeClock(datetime(2026, 11, 23, 15, 0, tzinfo=ZONE))  # Monday afternoon
    with console_sessions(config.database_url, Account("quantri", "admin"),
                          password=PASSWORD) as sessions:  # fmt: skip
        manager = QueueManager(source, sessions, clock=clock, backoff=(3.0, 6.0),
                               ping_interval=2.0)  # fmt: skip
        await manager.start()
        applier = ConfigApplier(source, build_prompts=no_prompts)
        app = create_app(source, sessions, secret=b"s" * 32, queue_manager=manager,
                         applier=applier)  # fmt: skip
        server = TestServer(app)
        await server.start_server()
        try:
            await wait_for(lambda: manager.links["local"].synced.is_set(), 20, "AMI resync")
            yield Rig(asterisk, source, manager, clock, server)
        finally:
            await server.close()
            await manager.close()
            asterisk.stop()


async def _signed_in(server: TestServer) -> tuple[TestClient, str]:
    client = TestClient(server)
    await client.start_server()
    page = await (await client.get("/login")).text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = await client.post(
        "/login",
        data={"username": "quantri", "password": PASSWORD, "csrf_token": token, "next": "/"},
        allow_redirects=False,
    )
    assert answer.status == 302, await answer.text()
    me = await (await client.get("/api/v1/me")).json()
    return client, me["csrf_token"]


@pytest.mark.asyncio(loop_scope="session")
async def test_agent_put_into_tomorrows_night_joins_the_queue_at_22h(rig: Rig) -> None:
    assert "PJSIP/qa-1" in await rig.members() and "PJSIP/qa-2" not in await rig.members()
    client, csrf = await _signed_in(rig.server)
    try:
        grid = await (await client.get("/admin/roster?week=2026-11-23")).text()
        assert 'id="cell-2026-11-24-dem-operator"' in grid
        preview = await client.post("/admin/roster/cell", data={
            "csrf_token": csrf, "op": "add", "date": "2026-11-24", "shift": "dem",
            "queue": "operator", "agent": "qa2",
        })  # fmt: skip
        html = await preview.text()
        assert preview.status == 200, html
        token = html.split('name="token" value="', 1)[1].split('"', 1)[0]
        applied = await client.post("/admin/changes/apply", allow_redirects=False, data={
            "csrf_token": csrf, "token": token, "reason": "Trực thay đêm thứ Ba",
        })  # fmt: skip
        assert applied.status in (302, 303), await applied.text()
        assert applied.headers["Location"].startswith("/admin/roster?week=2026-11-23")
    finally:
        await client.close()
    override = rig.source.current.roster.overrides[-1]
    assert (override.date.isoformat(), override.shift, override.agents) == (
        "2026-11-24",
        "dem",
        ["qa1", "qa2"],
    )
    # Applying re-applied the roster at once (Monday afternoon): nothing for qa2 yet.
    assert "PJSIP/qa-2" not in await rig.members()
    rig.clock.set_local(datetime(2026, 11, 24, 21, 59, 50, tzinfo=ZONE))
    assert await rig.manager.apply_roster() == []
    assert "PJSIP/qa-2" not in await rig.members()
    rig.clock.set_local(datetime(2026, 11, 24, 22, 0, 5, tzinfo=ZONE))
    actions = await rig.manager.apply_roster()
    assert [(a.kind, a.queue, a.interface) for a in actions] == [("add", "operator", "PJSIP/qa-2")]
    assert "PJSIP/qa-2" in await rig.members() and "PJSIP/qa-1" in await rig.members()
    # The night ends at 06:00 on Wednesday: qa2 leaves, qa1 stays for the morning.
    rig.clock.set_local(datetime(2026, 11, 25, 6, 0, 5, tzinfo=ZONE))
    actions = await rig.manager.apply_roster()
    assert [(a.kind, a.interface) for a in actions] == [("remove", "PJSIP/qa-2")]
    assert "PJSIP/qa-2" not in await rig.members() and "PJSIP/qa-1" in await rig.members()
