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
