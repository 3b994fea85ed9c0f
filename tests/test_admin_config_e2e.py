"""An administrator changes a ward's chairman in the console (Debian's chromium via
Playwright) on the real stack: a wrong edit is refused with file, line and field
and changes nothing; a valid one is saved with the old version kept, rendered
into Asterisk's folder and applied with module reloads, while a call already
talking to the old chairman goes on undisturbed; the next call rings the new
chairman, whose phone did not even exist in Asterisk before the change."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from playwright.async_api import Browser, Page, async_playwright, expect

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.config.secret_mask import mask_secrets
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import bound_port
from ivr.web.store import UserStore
from tests.rig.browser import launch_chromium, require_chromium
from tests.rig.stack import (
    HOTLINE_NUMBER,
    REPO,
    Ports,
    free_tcp_port,
    free_udp_port,
    start_asterisk,
    write_test_config,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "mật-khẩu-quản-trị"
WARD_KEYS = [Pause(600), Dtmf("5"), Pause(600), Dtmf("03")]  # district 5, ward 03: Đông Ngạc


@dataclass
class AdminRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    old_chairman: SippAnswerer
    new_chairman: SippAnswerer
    workdir: Path
    url: str
    browser: Browser


def _dong_ngac(data: dict[str, Any]) -> dict[str, Any]:
    wards = data["areas"][0]["children"][0]["children"]
    return next(ward for ward in wards if ward["code"] == "dong-ngac")


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    tmp_path: Path, asterisk_binary: Path, sipp_binary: str, quick_prompts: Path
) -> AsyncIterator[AdminRig]:
    require_chromium()  # before anything starts
    # The old chairman talks 8 s: long enough for the change to land mid-call.
    old = SippAnswerer(tmp_path / "sipp", "t-chair", hold_ms=8000)
    new = SippAnswerer(tmp_path / "sipp", "t-chair-new", hold_ms=1000)
    await old.start()
    await new.start()
    web_port = free_tcp_port()

    def tweak(data: dict[str, Any]) -> None:
        data["asterisk"]["config_dir"] = str(tmp_path / "asterisk" / "etc")
        data["paths"]["config_history"] = str(tmp_path / "config-history")
        data["web"] = {
            "port": web_port,
            "cookie_secure": False,
            "secret_file": str(tmp_path / "secret"),
        }

    config_path = write_test_config(
        tmp_path,
        Ports(),
        {
            "t-chair": old.contact,
            **{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair-silent", "t-vice", "t-agent")},
        },
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=tweak,
    )
    asterisk, config = start_asterisk(tmp_path, config_path)
    services = await start_services(config, parts=frozenset({"agi", "ami", "web"}))
    engine = make_engine(config.database_url)
    UserStore(make_session_factory(engine)).add("quantri", PASSWORD, "admin")
    assert services.web_runner is not None
    url = f"http://127.0.0.1:{bound_port(services.web_runner)}"
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    try:
        yield AdminRig(asterisk, config, services, old, new, tmp_path, url, browser)
    finally:
        await browser.close()
        await playwright.stop()
        await services.close()
        asterisk.stop()
        engine.dispose()
        await old.stop()
        await new.stop()


async def _signed_in_admin(rig: AdminRig) -> Page:
    context = await rig.browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(20_000)
    page = await context.new_page()
    await page.goto(rig.url + "/login")
    await page.fill("#username", "quantri")
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.goto(rig.url + "/admin/config")
    return page


def _call_ward(rig: AdminRig, caller: str) -> asyncio.Task[Any]:
    return asyncio.create_task(
        SippCaller(rig.workdir / "calls").call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id=caller,
            steps=WARD_KEYS,
            hangup_after_ms=None,  # the chairman hangs up
            timeout_s=60,
        )
    )


async def test_admin_changes_a_chairman_and_asterisk_takes_it_without_dropping_calls(
    rig: AdminRig,
) -> None:
    source = rig.config.source
    assert source is not None
    page = await _signed_in_admin(rig)
    await expect(page.locator('#config-areas tr[data-area="dong-ngac"] .chairman')).to_have_text(
        "phone:t-chair"
    )
    original = await page.locator("#config-text").input_value()
    # The editor shows the file with its secrets masked; they are kept on save.
    saved = source.read_text(encoding="utf-8")
    assert original == mask_secrets(saved) and rig.config.asterisk.ami.secret not in original
    data = yaml.safe_load(original)

    # A call reaches the old chairman and keeps talking through what follows.
    first = _call_ward(rig, "0912000101")
    await rig.old_chairman.wait_answered(1, timeout=20)

    # A wrong edit (a chairman phone that does not exist): refused, nothing changes.
    wrong = copy.deepcopy(data)
    _dong_ngac(wrong)["chairman"] = "phone:khong-co-may-nay"
    await page.fill("#config-text", yaml.safe_dump(wrong, allow_unicode=True, sort_keys=False))
    await page.click("#config-save")
    problems = page.locator("#config-problems")
    await expect(problems).to_contain_text("hotline-test.yaml:")
    await expect(problems).to_contain_text("chairman")
    await expect(problems).to_contain_text("khong-co-may-nay")
    # The edited text comes back for fixing; the file is untouched.
    assert "khong-co-may-nay" in await page.locator("#config-text").input_value()
    assert source.read_text(encoding="utf-8") == saved

    # The valid edit: a new phone for the ward's new chairman, and a holiday.
    right = copy.deepcopy(data)
    right["phones"].append(
        {"id": "t-chair-new", "name": "Chủ tịch mới", "contact": rig.new_chairman.contact}
    )
    _dong_ngac(right)["chairman"] = "phone:t-chair-new"
    right["holidays"].append({"date": "2027-09-03", "name": "Nghỉ bù Quốc khánh"})
    await page.fill("#config-text", yaml.safe_dump(right, allow_unicode=True, sort_keys=False))
    await page.click("#config-save")
    applied = page.locator("#config-applied")
    await expect(applied).to_contain_text("đã được kiểm tra, lưu và áp dụng")
    await expect(page.locator("#config-reloaded")).to_have_text("5")
    await expect(page.locator('#config-areas tr[data-area="dong-ngac"] .chairman')).to_have_text(
        "phone:t-chair-new"
    )
    await expect(page.locator("#config-holidays")).to_contain_text("Nghỉ bù Quốc khánh")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "admin-config.png"))
    assert "t-chair-new" in source.read_text(encoding="utf-8")
    assert f"secret: {rig.config.asterisk.ami.secret}" in source.read_text(encoding="utf-8")
    history = list((source.parent / "config-history").glob("hotline-test-*.yaml"))
    assert [p.read_text(encoding="utf-8") for p in history] == [saved]
    pjsip = (rig.workdir / "asterisk" / "etc" / "pjsip.conf").read_text(encoding="utf-8")
    assert "[t-chair-new]" in pjsip
    assert "t-chair-new" in await rig.asterisk.arx("pjsip show endpoints")

    # The call in progress was not dropped: the old chairman ended it after its 8 s.
    first_result = await first
    assert first_result.answered and first_result.hung_up_by == "remote", first_result.log_text
    await rig.old_chairman.wait_ended(1, timeout=20)
    [talk] = rig.old_chairman.calls
    assert talk.ended_by == "answerer", rig.old_chairman.log_text

    # The next call for the ward rings the new chairman only.
    second = await _call_ward(rig, "0912000102")
    assert second.answered, second.log_text
    await rig.new_chairman.wait_answered(1, timeout=20)
    assert rig.new_chairman.caller_ids == ["0912000102"]
    assert rig.old_chairman.rung_count == 1

    # The change is in the audit log with who made it.
    await page.goto(rig.url + "/admin/audit")
    await expect(page.locator("body")).to_contain_text("config_apply")
    await expect(page.locator("body")).to_contain_text("config_refused")
