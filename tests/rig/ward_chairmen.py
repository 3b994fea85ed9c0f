"""The real stack for the console's chairman-change tests: a private Asterisk
rendered from the test config (tests/rig/stack.py), the FastAGI, AMI and web
services, two SIPp phones for Đông Ngạc's chairman (the old one, whom the
ward's calls ring now, and the new one a clerk is about to name), an
administrator account, and Debian's chromium to drive the console."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import bound_port
from ivr.web.store import UserStore
from tests.rig.browser import launch_chromium, require_chromium
from tests.rig.stack import (
    HOTLINE_NUMBER,
    Ports,
    free_tcp_port,
    free_udp_port,
    start_asterisk,
    write_test_config,
)

ADMIN, ADMIN_PASSWORD = "quantri", "mật-khẩu-quản-trị"
OLD_PHONE = "t-chair"  # Đông Ngạc's chairman in the test config
NEW_PHONE = "t-chair-new"
WARD_KEYS = [Pause(600), Dtmf("5"), Pause(600), Dtmf("03")]  # district 5, ward 03: Đông Ngạc


@dataclass
class ChairmanRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    old_chairman: SippAnswerer
    new_chairman: SippAnswerer
    workdir: Path
    url: str
    browser: Browser

    def call_ward(self, caller: str, timeout_s: float) -> asyncio.Task[Any]:
        """A citizen's call that picks Đông Ngạc in the menu, running in the
        background until the chairman who answers hangs up."""
        return asyncio.create_task(
            SippCaller(self.workdir / "calls").call(
                target=f"127.0.0.1:{self.config.asterisk.sip.port}",
                number=HOTLINE_NUMBER,
                caller_id=caller,
                steps=WARD_KEYS,
                hangup_after_ms=None,  # the chairman hangs up
                timeout_s=timeout_s,
            )
        )

    async def admin_signing_in(self, timeout_ms: int) -> Page:
        """A fresh browser context (its own cookies) whose page has just sent
        the administrator's name and password from the login page."""
        context = await self.browser.new_context(viewport={"width": 1360, "height": 900})
        context.set_default_timeout(timeout_ms)
        page = await context.new_page()
        await page.goto(self.url + "/login")
        await page.fill("#username", ADMIN)
        await page.fill("#password", ADMIN_PASSWORD)
        await page.click("#sign-in")
        return page


@contextlib.asynccontextmanager
async def chairman_rig(
    tmp_path: Path, quick_prompts: Path, *, old_hold_ms: int, new_phone_known: bool
) -> AsyncIterator[ChairmanRig]:
    """The stack, started; all of it stopped after, whatever failed.

    ``old_hold_ms``: how long the old chairman talks once he answers (long
    enough for a change to land mid-call). ``new_phone_known``: the new
    chairman's desk phone is in the config from the start (added earlier by
    the phones form), else the test adds it itself."""
    require_chromium()  # before anything starts
    async with contextlib.AsyncExitStack() as running:
        old = SippAnswerer(tmp_path / "sipp", OLD_PHONE, hold_ms=old_hold_ms)
        new = SippAnswerer(tmp_path / "sipp", NEW_PHONE, hold_ms=1000)
        for answerer in (old, new):
            await answerer.start()
            running.push_async_callback(answerer.stop)
        web_port = free_tcp_port()

        def tweak(data: dict[str, Any]) -> None:
            data["asterisk"]["config_dir"] = str(tmp_path / "asterisk" / "etc")
            data["paths"]["config_history"] = str(tmp_path / "config-history")
            data["web"] = {
                "port": web_port,
                "cookie_secure": False,
                "secret_file": str(tmp_path / "secret"),
            }

        contacts = {OLD_PHONE: old.contact}
        if new_phone_known:
            contacts[NEW_PHONE] = new.contact
        # The test config's other phones, pointed at a port where nobody answers.
        contacts |= {p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair-silent", "t-vice", "t-agent")}
        config_path = write_test_config(
            tmp_path, Ports(), contacts, quick_prompts, trunk_port=free_udp_port(), tweak=tweak
        )
        asterisk, config = start_asterisk(tmp_path, config_path)
        running.callback(asterisk.stop)
        services = await start_services(config, parts=frozenset({"agi", "ami", "web"}))
        running.push_async_callback(services.close)
        engine = make_engine(config.database_url)
        running.callback(engine.dispose)
        UserStore(make_session_factory(engine)).add(ADMIN, ADMIN_PASSWORD, "admin")
        assert services.web_runner is not None
        url = f"http://127.0.0.1:{bound_port(services.web_runner)}"
        playwright = await async_playwright().start()
        running.push_async_callback(playwright.stop)
        browser = await launch_chromium(playwright)
        running.push_async_callback(browser.close)
        yield ChairmanRig(asterisk, config, services, old, new, tmp_path, url, browser)
