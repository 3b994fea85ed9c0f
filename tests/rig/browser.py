"""Debian's chromium for the browser tests (Playwright with executable_path;
no browser is ever downloaded). Missing chromium fails the test loudly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: nothing reaches the internet, nothing phones home.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def require_chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("chromium not found: apt-get install chromium", pytrace=False)
    return CHROMIUM


async def launch_chromium(playwright: Any) -> Any:
    """A headless Browser from a started ``async_playwright()``."""
    return await playwright.chromium.launch(
        executable_path=str(require_chromium()), headless=True, args=ARGS
    )


async def signed_in(
    browser: Any, url: str, username: str, password: str, timeout_ms: int = 20_000
) -> tuple[Any, Any]:
    """A fresh context (its own cookie jar: one user each) signed in to the
    console at ``url`` through its Vietnamese login page: (context, page)."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    await page.goto(url + "/")
    await expect(page.locator("h1")).to_have_text("Đăng nhập")  # Vietnamese by default
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#sign-in")
    return context, page
