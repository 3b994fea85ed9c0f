"""Issue 16's prompt proof on the real stack: an administrator uploads a studio
WAV for the greeting in Debian's chromium (the preview plays it in the
browser), makes it live, and the next citizen's call plays the uploaded file;
removing it brings back the synthesized greeting for the call after.

How the test knows which file Asterisk played: the path Asterisk plays is the
same for a studio recording and the synthesized voice
(``<prompts>/<hotline>/vi/greeting``, replaced by a rename; Asterisk opens the
file at every playback and caches nothing, so no reload is needed). Asterisk's
log names that path (``Playing '…/greeting.wav'``), and with ``agi set debug on``
it logs its answer to the FastAGI's ``STREAM FILE``: ``endpos=`` is the length of
the file it opened, in samples, when it played to the end. That length is the
uploaded recording's (as converted) after the upload and espeak-ng's greeting
after the removal: content, not timing.

The private Asterisk, FastAGI and console run on loopback; the prompts are a
private copy of the quick tones (tests/rig/quick_prompts.py), so nothing shared
changes. Screenshots of the clerk's path go to docs/screenshots/prompts-*.png.
"""

from __future__ import annotations

import re
import shutil
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright, expect

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.prompt_upload import live_file
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Pause, SippCaller
from ivr.web.app import start_web
from ivr.web.store import UserStore
from tests.rig.browser import launch_chromium, require_chromium, signed_in
from tests.rig.stack import (
    HOTLINE_NUMBER,
    REPO,
    Ports,
    free_tcp_port,
    free_udp_port,
    start_asterisk,
    write_test_config,
)
from tests.test_prompt_upload import tone_wav

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "mật-khẩu-đủ-dài"
HOTLINE = "bac-tu-liem"
TIMEOUT_MS = 30_000
_ENDPOS = re.compile(r"AGI Tx >> 200 result=-?\d+ endpos=(\d+)")


@dataclass
class PromptRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    browser: Any
    url: str
    workdir: Path

    @property
    def greeting(self) -> Path:
        root = self.config.resolve_path(self.config.paths.prompts)
        return live_file(root, HOTLINE, "vi", "greeting")

    def log_size(self) -> int:
        return len(self.asterisk.messages_log.read_text(errors="replace"))

    async def call(self, caller: str, listen_ms: int) -> None:
        """A citizen calls and listens (no key) for ``listen_ms``, then hangs up."""
        result = await SippCaller(self.workdir / "calls").call(
            target=f"127.0.0.1:{self.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id=caller,
            steps=[Pause(listen_ms)],
            hangup_after_ms=200,
            timeout_s=listen_ms / 1000 + 30,
        )
        assert result.answered, result.log_text

    def greeting_played(self, since: int) -> tuple[str, int]:
        """The file Asterisk named when it played the greeting since log offset
        ``since``, and the ``endpos`` of its answer to that STREAM FILE."""
        lines = self.asterisk.messages_log.read_text(errors="replace")[since:].splitlines()
        start = next(
            i
            for i, line in enumerate(lines)
            if "AGI Rx << STREAM FILE" in line and "/greeting" in line
        )
        playing = next(line for line in lines[start:] if "Playing '" in line)
        path = playing.split("Playing '", 1)[1].split("'", 1)[0]
        answer = next(m for line in lines[start:] if (m := _ENDPOS.search(line)))
        return path, int(answer.group(1))


def frames(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return wav.getnframes()


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    tmp_path: Path, asterisk_binary: Path, sipp_binary: str, quick_prompts: Path
) -> AsyncIterator[PromptRig]:
    require_chromium()  # before anything starts
    prompts = tmp_path / "prompts"
    shutil.copytree(quick_prompts, prompts, symlinks=True)  # a private copy: changed here
    config_path = write_test_config(
        tmp_path, Ports(),
        {p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")},
        prompts, trunk_port=free_udp_port(),
    )  # fmt: skip
    asterisk, config = start_asterisk(tmp_path, config_path)
    asterisk.rx("agi set debug on")  # its answers (endpos=) go to the log
    services = await start_services(config)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    UserStore(sessions).add("quantri", PASSWORD, "admin", display_name="Lê Văn Quản")
    port = free_tcp_port()
    runner = await start_web(config, sessions, port=port)
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    try:
        yield PromptRig(asterisk, config, services, browser, f"http://127.0.0.1:{port}", tmp_path)
    finally:
        await browser.close()
        await playwright.stop()
        await runner.cleanup()
        await services.close()
        asterisk.stop()
        engine.dispose()


async def test_an_uploaded_greeting_is_played_by_the_next_call_and_removing_it_restores_the_voice(
    rig: PromptRig, tmp_path: Path
) -> None:
    studio = tmp_path / "loi-chao-phong-thu.wav"
    studio.write_bytes(tone_wav(1.6))  # 44.1 kHz stereo, as a studio sends it
    context, page = await signed_in(rig.browser, rig.url, "quantri", PASSWORD, TIMEOUT_MS)
    try:
        # Screen 1: the administration menu → voice prompts: the greeting's row.
        await page.goto(rig.url + "/admin/users")
        await page.click("nav.subnav >> text=Lời nhắc thoại")
        await expect(page).to_have_url(re.compile(rf"/admin/prompts/{HOTLINE}/vi$"))
        row = page.locator("#prompt-greeting")
        await expect(row.locator(".origin")).to_have_text("Giọng tổng hợp")
        await page.screenshot(path=str(SCREENSHOTS / "prompts-list.png"))
        await row.locator("input[type=file]").set_input_files(str(studio))
        await row.locator("button").click()

        # Screen 2: both players; the new one plays in the browser (its length
        # read by chromium from the converted WAV the console serves).
        await expect(page.locator("h1")).to_contain_text("Nghe thử trước khi áp dụng")
        await expect(page.locator("#audio-now")).to_have_count(1)
        seconds = await page.eval_on_selector(
            "#audio-new",
            "a => new Promise(ok => a.readyState >= 1 ? ok(a.duration)"
            " : a.addEventListener('loadedmetadata', () => ok(a.duration)))",
        )
        assert 1.5 <= seconds <= 1.9, seconds
        await page.screenshot(path=str(SCREENSHOTS / "prompts-preview.png"))
        await page.click("#make-live")

        # Screen 3: live, said so.
        await expect(page.locator("#prompt-notice")).to_be_visible()
        await expect(page.locator("#prompt-greeting .origin")).to_have_text("Bản ghi âm phòng thu")
        await page.screenshot(path=str(SCREENSHOTS / "prompts-live.png"))
        uploaded = frames(rig.greeting)
        assert abs(uploaded / 8000 - 1.6) < 0.3

        before = rig.log_size()
        await rig.call("0912000161", listen_ms=int(uploaded / 8) + 1500)
        path, endpos = rig.greeting_played(before)
        assert Path(path).with_suffix("") == rig.greeting.with_suffix(""), path
        assert endpos == uploaded  # Asterisk opened the uploaded recording

        # Remove it: behind a confirmation page, the synthesized voice comes back.
        await page.click("#prompt-greeting a.remove")
        await page.click("#confirm-remove")
        await expect(page.locator("#prompt-notice")).to_be_visible()
        await expect(page.locator("#prompt-greeting .origin")).to_have_text("Giọng tổng hợp")
        synthesized = frames(rig.greeting)
        assert synthesized != uploaded and synthesized / 8000 > 2  # espeak-ng's greeting

        before = rig.log_size()
        await rig.call("0912000162", listen_ms=int(synthesized / 8) + 1500)
        path, endpos = rig.greeting_played(before)
        assert Path(path).with_suffix("") == rig.greeting.with_suffix(""), path
        assert endpos == synthesized
    finally:
        await context.close()
