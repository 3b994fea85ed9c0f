"""The people forms on the real stack (Asterisk, the queue manager and the
console in one `hotline serve`): an agent added to a queue through the
agent form is in Asterisk's own `queue show` once the change is applied, and
out of it when taken out again; a phone's SIP secret issued on its page is
the one Asterisk accepts at once, and the phone's earlier one is refused."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.config.phone_secrets import phone_secret
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp.ports import free_port
from ivr.web.app import bound_port
from ivr.web.store import UserStore
from tests.rig.console import APPLY, apply_form
from tests.rig.sip_register import register
from tests.rig.stack import Ports, free_tcp_port, free_udp_port, start_asterisk, write_test_config

pytestmark = pytest.mark.asterisk

PASSWORD = "mật-khẩu-quản-trị"


@dataclass
class PeopleRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    url: str
    workdir: Path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, asterisk_binary: Path, quick_prompts: Path
) -> AsyncIterator[PeopleRig]:
    tmp_path = tmp_path_factory.mktemp("people")
    web_port = free_tcp_port()

    def tweak(data: dict[str, Any]) -> None:
        data["asterisk"]["config_dir"] = str(tmp_path / "asterisk" / "etc")
        data["paths"]["config_history"] = str(tmp_path / "config-history")
        data["web"] = {
            "port": web_port,
            "cookie_secure": False,
            "secret_file": str(tmp_path / "secret"),
        }

    # The rig's ward phones, at an address nobody answers (no call is made here).
    contacts = {
        p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")
    }
    config_path = write_test_config(
        tmp_path, Ports(), contacts, quick_prompts, trunk_port=free_udp_port(), tweak=tweak
    )
    asterisk, config = start_asterisk(tmp_path, config_path)
    services = await start_services(config, parts=frozenset({"ami", "web"}))
    engine = make_engine(config.database_url)
    UserStore(make_session_factory(engine)).add("quantri", PASSWORD, "admin")
    assert services.web_runner is not None
    try:
        url = f"http://127.0.0.1:{bound_port(services.web_runner)}"
        yield PeopleRig(asterisk, config, services, url, tmp_path)
    finally:
        await services.close()
        asterisk.stop()
        engine.dispose()


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, page
    return html.unescape(match.group(1))


async def _members(rig: PeopleRig, queue: str) -> str:
    return await rig.asterisk.arx(f"queue show {queue}")


async def _until(rig: PeopleRig, queue: str, present: bool, interface: str) -> str:
    shown = ""
    for _ in range(100):
        shown = await _members(rig, queue)
        if (interface in shown) == present:
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"`queue show {queue}` never {'listed' if present else 'dropped'} "
                         f"{interface}:\n{shown}")  # fmt: skip


async def _save_agent(
    session: aiohttp.ClientSession, rig: PeopleRig, agent_id: str, queues: list[str]
) -> None:
    page = await (await session.get(f"{rig.url}/admin/agents/{agent_id}")).text()
    token = _field(page, "csrf_token")
    agent = next(a for a in rig.services.config_source.current.agents if a.id == agent_id)
    form = [("csrf_token", token), ("name", agent.name), ("phone", agent.phone)]
    form += [("queues", q) for q in queues]
    preview = await session.post(f"{rig.url}/admin/agents/{agent_id}", data=form)
    text = await preview.text()
    assert preview.status == 200, text
    fields = apply_form(text)
    fields["reason"] = "bổ sung người trực tổng đài"
    fields.setdefault("csrf_token", token)
    applied = await session.post(f"{rig.url}{APPLY}", data=fields, allow_redirects=False)
    assert applied.status in (302, 303), await applied.text()


@contextlib.asynccontextmanager
async def _admin(rig: PeopleRig) -> AsyncIterator[aiohttp.ClientSession]:
    """A signed-in administrator's browser session."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        login = await (await session.get(f"{rig.url}/login")).text()
        signed = await session.post(f"{rig.url}/login", data={
            "username": "quantri", "password": PASSWORD,
            "csrf_token": _field(login, "csrf_token"), "next": "/",
        }, allow_redirects=False)  # fmt: skip
        assert signed.status == 302
        yield session


def _current(rig: PeopleRig) -> HotlineConfig:
    source = rig.services.config_source
    assert source is not None
    return source.current


async def test_agent_added_to_a_queue_by_the_form_is_in_asterisks_queue(rig: PeopleRig) -> None:
    # A night-shift agent, whom the roster never puts into "conduct".
    agent = next(a for a in rig.config.agents if a.id == "dtv18")
    interface = f"PJSIP/{agent.phone}"
    assert interface not in await _members(rig, "conduct")
    async with _admin(rig) as session:
        await _save_agent(session, rig, agent.id, ["conduct"])
        await _until(rig, "conduct", True, interface)
        assert "dtv18" in _current(rig).queue("conduct").members  # type: ignore[union-attr]
        await _save_agent(session, rig, agent.id, [])
        await _until(rig, "conduct", False, interface)


async def test_a_phone_secret_issued_on_its_page_is_the_one_asterisk_accepts(
    rig: PeopleRig, sipp_binary: str
) -> None:
    phone = "dtv-17"  # registers (no fixed address), secret generated at the first render
    old = phone_secret(_current(rig), phone)
    target = f"127.0.0.1:{rig.config.asterisk.sip.port}"
    before = await register(rig.workdir / "register", target, phone, free_port(), old, sipp_binary)
    assert before.statuses[-1:] == [200], before.log_text
    async with _admin(rig) as session:
        page = await (await session.get(f"{rig.url}/admin/phones/{phone}")).text()
        issued = await session.post(
            f"{rig.url}/admin/phones/{phone}/secret",
            data={"csrf_token": _field(page, "csrf_token")},
        )
        text = await issued.text()
        assert issued.status == 200, text
        match = re.search(r'<code id="phone-secret">([^<]+)</code>', text)
        assert match, text
        secret = html.unescape(match.group(1))
    assert secret != old
    accepted = await register(
        rig.workdir / "register", target, phone, free_port(), secret, sipp_binary
    )
    assert accepted.statuses[-1:] == [200], accepted.log_text
    refused = await register(rig.workdir / "register", target, phone, free_port(), old, sipp_binary)
    assert 200 not in refused.statuses and refused.statuses, refused.log_text
