"""An administrator changes a ward's chairman in the console (Debian's chromium via
Playwright) on the real stack: a wrong edit is refused with file, line and field
and changes nothing; a valid one is saved with the old version kept, rendered
into Asterisk's folder and applied with module reloads, while a call already
talking to the old chairman goes on undisturbed; the next call rings the new
chairman, whose phone did not even exist in Asterisk before the change."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from playwright.async_api import Page, expect

from ivr.config.secret_mask import mask_secrets
from tests.rig.stack import REPO
from tests.rig.ward_chairmen import ChairmanRig, chairman_rig

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = REPO / "docs" / "screenshots"


def _dong_ngac(data: dict[str, Any]) -> dict[str, Any]:
    wards = data["areas"][0]["children"][0]["children"]
    return next(ward for ward in wards if ward["code"] == "dong-ngac")


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    tmp_path: Path, asterisk_binary: Path, sipp_binary: str, quick_prompts: Path
) -> AsyncIterator[ChairmanRig]:
    # The old chairman talks 8 s: long enough for the change to land mid-call.
    # The new chairman's phone is not in the config: the edit adds it.
    async with chairman_rig(
        tmp_path, quick_prompts, old_hold_ms=8000, new_phone_known=False
    ) as running:
        yield running


async def _signed_in_admin(rig: ChairmanRig) -> Page:
    page = await rig.admin_signing_in(timeout_ms=20_000)
    await page.goto(rig.url + "/admin/config")
    return page


async def test_admin_changes_a_chairman_and_asterisk_takes_it_without_dropping_calls(
    rig: ChairmanRig,
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
    first = rig.call_ward("0912000101", timeout_s=60)
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
    second = await rig.call_ward("0912000102", timeout_s=60)
    assert second.answered, second.log_text
    await rig.new_chairman.wait_answered(1, timeout=20)
    assert rig.new_chairman.caller_ids == ["0912000102"]
    assert rig.old_chairman.rung_count == 1

    # The change is in the audit log with who made it.
    await page.goto(rig.url + "/admin/audit")
    await expect(page.locator("body")).to_contain_text("config_apply")
    await expect(page.locator("body")).to_contain_text("config_refused")
