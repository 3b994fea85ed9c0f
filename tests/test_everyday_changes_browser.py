"""Issue 16: a clerk's path for each of the five commonest changes (a ward's
chairman, a day of the roster, a holiday, who is in a queue, the greeting)
takes at most five screens, walked in Debian's chromium from the console's top
menu to the page that says the change is live. Each screen is saved as
docs/screenshots/everyday-<change>-<n>.png for the README's "Everyday changes".

A screen is a page the browser loads (main-frame navigations, counted by
Playwright), from the first page of the administration on. The console runs on
a loopback test server over a copy of the Bắc Từ Liêm example applied live
(prompts are not rebuilt by these config changes; the greeting's own rebuild
is the prompt pages' work), with the example's built prompts copied so the
greeting's current sound plays.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright, expect

from ivr.config import load_config
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.prompts import PromptBuildReport
from ivr.web.app import create_app
from tests.rig.browser import launch_chromium, signed_in
from tests.rig.console import Account, console_sessions
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE, REPO
from tests.test_prompt_upload import tone_wav

pytestmark = [pytest.mark.browser, pytest.mark.db]

SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "mật-khẩu-đủ-dài"
HOTLINE = "bac-tu-liem"
MAX_SCREENS = 5
TIMEOUT_MS = 20_000


def no_prompts(config: Any) -> PromptBuildReport:
    return PromptBuildReport()


@dataclass
class Walk:
    """Counts the screens of one change and saves each."""

    page: Page
    change: str
    screens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("framenavigated", self._navigated)

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.screens.append(frame.url)

    async def shot(self, focus: Any = None) -> None:
        """Saves the screen the clerk is on (once per screen), scrolled to
        ``focus`` (a locator: the form the clerk filled in) if given."""
        await self.page.wait_for_load_state()
        if focus is not None:
            await focus.scroll_into_view_if_needed()
        number = len(self.screens)
        await self.page.screenshot(
            path=str(SCREENSHOTS / f"everyday-{self.change}-{number}.png"), full_page=False
        )

    def done(self) -> list[str]:
        self.page.remove_listener("framenavigated", self._navigated)
        assert 0 < len(self.screens) <= MAX_SCREENS, self.screens
        return self.screens


@pytest.fixture
def config_path(tmp_path: Path, built_prompts: Path) -> Path:
    prompts = tmp_path / "prompts"
    shutil.copytree(built_prompts / HOTLINE, prompts / HOTLINE)
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
        ("  prompts: ../prompts\n", f"  prompts: {prompts}\n"),
        ("url: sqlite:///../var/hotline.db", f"url: {fresh_database_url(tmp_path)}"),
        ("routing_table: ../var/routing.json", f"routing_table: {tmp_path / 'routing.json'}"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += f"\nweb: {{cookie_secure: false, secret_file: {tmp_path / 'web-secret'}}}\n"
    path = tmp_path / "etc" / "hotline.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sessions(config_path: Path) -> Iterator[Any]:
    url = load_config(config_path).database_url
    with console_sessions(url, Account("quantri", "admin"), password=PASSWORD) as factory:
        yield factory


@pytest_asyncio.fixture(loop_scope="session")
async def console(config_path: Path, sessions: Any) -> AsyncIterator[tuple[str, Any]]:
    source = ConfigSource(load_config(config_path))
    applier = ConfigApplier(source, build_prompts=no_prompts)
    app = create_app(source, sessions, secret=b"s" * 32, applier=applier)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    try:
        yield str(server.make_url("")).rstrip("/"), browser
    finally:
        await browser.close()
        await playwright.stop()
        await server.close()


async def _administration(url: str, browser: Any, change: str) -> tuple[Any, Page, Walk]:
    context, page = await signed_in(browser, url, "quantri", PASSWORD, TIMEOUT_MS)
    await page.wait_for_load_state()
    walk = Walk(page, change)
    await page.click("header nav a[href='/admin/users']")  # the top menu's Administration
    await walk.shot()
    return context, page, walk


async def _apply(page: Page, walk: Walk, reason: str) -> None:
    """The change's preview: a reason, then Apply."""
    await expect(page.locator("#change-fields")).to_be_visible()
    await page.fill("#change-reason", reason)
    await walk.shot()
    await page.click("#change-apply")


async def test_a_new_chairman_in_at_most_five_screens(console: tuple[str, Any]) -> None:
    url, browser = console
    context, page, walk = await _administration(url, browser, "chairman")
    try:
        await page.click("nav.subnav a[href='/admin/wards']")
        await walk.shot()
        await page.click("#wards a[href='/admin/wards/dong-ngac']")
        await page.check("input[name=chairman_kind][value=tel]")
        await page.fill("#chairman-number", "0912345678")
        await walk.shot()
        await page.click("#chairman-preview")
        await _apply(page, walk, "Chủ tịch mới sau bầu cử")
        await expect(page.locator("#chairman-now")).to_contain_text("0912345678")
        await walk.shot()
        walk.done()
    finally:
        await context.close()


async def test_an_agent_added_to_a_day_of_the_roster_in_at_most_five_screens(
    console: tuple[str, Any],
) -> None:
    url, browser = console
    context, page, walk = await _administration(url, browser, "roster-day")
    try:
        await page.click("nav.subnav a[href='/admin/roster']")
        # The week's last day: in the week shown whatever today is.
        day = page.locator("#roster-grid tbody tr").first.locator("td[data-day]").last
        when = await day.get_attribute("data-day")
        agent = await day.locator("form.add select").input_value()
        await walk.shot(day)
        await day.locator("form.add button").click()
        await _apply(page, walk, "Đổi ca ngày Chủ nhật")
        cell = page.locator("#roster-grid tbody tr").first.locator(f"td[data-day='{when}']")
        await expect(cell).to_have_class(re.compile("override"))
        await expect(cell.locator(f"li[data-agent='{agent}']")).to_have_count(1)
        await walk.shot()
        walk.done()
    finally:
        await context.close()


async def test_a_bridge_day_off_in_at_most_five_screens(console: tuple[str, Any]) -> None:
    url, browser = console
    context, page, walk = await _administration(url, browser, "holiday")
    try:
        await page.click("nav.subnav a[href='/admin/holidays']")
        form = page.locator("#holidays-add-day-off")
        year = date.today().year
        await form.locator("input[name=date]").fill(f"{year}-12-31")
        await form.locator("input[name=name]").fill("Nghỉ bù theo thông báo")
        await walk.shot(form)
        await form.locator("button").click()
        await _apply(page, walk, "Theo thông báo của Chính phủ")
        await expect(page.locator(f"tr[data-date='{year}-12-31']").first).to_be_visible()
        await walk.shot()
        walk.done()
    finally:
        await context.close()


async def test_an_agent_put_in_a_queue_in_at_most_five_screens(console: tuple[str, Any]) -> None:
    url, browser = console
    context, page, walk = await _administration(url, browser, "queue")
    try:
        await page.click("nav.subnav a[href='/admin/queues']")
        await walk.shot()
        await page.click("#queue-operator a")
        box = page.locator("#members input[type=checkbox]:not(:checked)").first
        agent = await box.get_attribute("value")
        await box.check()
        await walk.shot(page.locator("#queue-form button"))
        await page.click("#queue-form button")
        await _apply(page, walk, "Bổ sung điện thoại viên")
        await expect(page.locator(f"#members input[value='{agent}']")).to_be_checked()
        await walk.shot()
        walk.done()
    finally:
        await context.close()


async def test_a_studio_greeting_in_at_most_five_screens(
    console: tuple[str, Any], tmp_path: Path
) -> None:
    url, browser = console
    studio = tmp_path / "loi-chao.wav"
    studio.write_bytes(tone_wav(1.5))
    context, page, walk = await _administration(url, browser, "greeting")
    try:
        await page.click("nav.subnav a[href='/admin/prompts']")
        row = page.locator("#prompt-greeting")
        await row.locator("input[type=file]").set_input_files(str(studio))
        await walk.shot()
        await row.locator("button").click()
        await expect(page.locator("#audio-new")).to_have_count(1)
        await walk.shot()
        await page.click("#make-live")
        await expect(page.locator("#prompt-notice")).to_be_visible()
        await walk.shot()
        walk.done()
    finally:
        await context.close()
