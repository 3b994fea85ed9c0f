"""The Open311 API keys page in a real browser: Debian's chromium driven by
Playwright (tests/rig/browser.py; no browser is ever downloaded) against the
console's app on a loopback test server.

An administrator reaches the page from the administration menu, issues a key
(the form's CSRF token, the page's security policy and the key shown once, as
a person sees them), goes back to the list (no key there), and revokes it
behind the confirmation page. The result page and the list go to
docs/screenshots/admin-api-key-issued.png and admin-api-keys.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright, expect

from ivr.config import HotlineConfig
from ivr.web.api_keys import ApiKeyStore
from ivr.web.app import create_app
from tests.rig.browser import launch_chromium, signed_in
from tests.rig.stack import REPO
from tests.test_api_keys_admin import HOTLINE, PASSWORD
from tests.test_api_keys_admin import _config as keys_config

pytestmark = [pytest.mark.browser, pytest.mark.db]

SCREENSHOTS = REPO / "docs" / "screenshots"


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return keys_config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.web.store import UserStore

    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    factory = make_session_factory(engine)
    UserStore(factory).add("quantri", PASSWORD, "admin")
    yield factory
    engine.dispose()


async def test_an_admin_issues_and_revokes_a_key_in_the_browser(
    config: HotlineConfig, sessions: Any
) -> None:
    server = TestServer(create_app(config, sessions, secret=b"s" * 32), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                context, page = await signed_in(browser, url, "quantri", PASSWORD)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text)
                        if "Content Security Policy" in m.text else None)  # fmt: skip
                await page.click("header.top nav >> text=Quản trị")
                await page.click("nav.subnav >> text=Khóa API Open311")
                await expect(page.locator("h1")).to_have_text("Khóa API Open311")

                await page.fill("input[name=app_name]", "iHanoi")
                await page.select_option("select[name=hotline_id]", HOTLINE)
                await page.fill("input[name=contact]", "Sở TT&TT Hà Nội")
                await page.click("#issue-key button")
                await expect(page.locator("h1")).to_have_text("Đã cấp khóa")
                await expect(page.locator("#copy-now")).to_be_visible()
                key = (await page.locator("#issued-key").inner_text()).strip()
                assert key.startswith("o311_")
                assert ApiKeyStore(sessions).check(key) is not None
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOTS / "admin-api-key-issued.png"))

                await page.click("text=Quay lại danh sách khóa")
                assert key not in await page.content()
                table = page.locator(f"#keys-{HOTLINE}")
                await expect(table).to_contain_text("iHanoi")
                await table.locator("text=Thu hồi").click()
                await page.click("#confirm-revoke")
                await expect(page.locator("#key-revoked")).to_contain_text("iHanoi")
                assert ApiKeyStore(sessions).check(key) is None
                await page.screenshot(path=str(SCREENSHOTS / "admin-api-keys.png"))
                assert errors == []
                await context.close()
            finally:
                await browser.close()
    finally:
        await server.close()
