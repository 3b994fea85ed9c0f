"""The issue's first proof, in Debian's chromium (Playwright) on the real stack:
an administrator changes a ward's chairman through the ward form while a
citizen is talking to the old chairman, and that call goes on undisturbed; the
form's "Gọi thử" (test call) rings the new chairman's SIPp phone through
Asterisk before anything is applied; the next citizen's call rings the new
chairman; rolling the change back from the history page (one step) restores
the old chairman, and the call after that rings the old chairman again.

The clerk's screens are saved in docs/screenshots/ (ward-chairman-*.png): the
ward list, the ward's page, the test call under way, the preview of the
change, the ward with its new chairman."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from ivr.sim.polling import wait_for
from tests.rig.stack import HOTLINE_NUMBER, REPO
from tests.rig.ward_chairmen import NEW_PHONE, ChairmanRig, chairman_rig

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = REPO / "docs" / "screenshots"


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    tmp_path: Path, asterisk_binary: Path, sipp_binary: str, quick_prompts: Path
) -> AsyncIterator[ChairmanRig]:
    # The old chairman talks long enough for the whole change to land mid-call;
    # the test asserts the call is still up when the change is applied. The new
    # chairman's desk phone is in the system already (the phones form adds it);
    # the ward form makes it the chairman.
    async with chairman_rig(
        tmp_path, quick_prompts, old_hold_ms=30_000, new_phone_known=True
    ) as running:
        yield running


async def _signed_in(rig: ChairmanRig) -> Page:
    page = await rig.admin_signing_in(timeout_ms=30_000)
    await expect(page.locator("#sign-out")).to_be_visible()
    return page


async def _apply_preview(page: Page, reason: str) -> None:
    """The pipeline's preview page: a reason, then Apply."""
    await page.fill("#change-reason", reason)
    await page.click("#change-apply")


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"ward-chairman-{name}.png"), full_page=True)


async def test_a_clerk_changes_a_chairman_tests_the_new_phone_and_rolls_it_back(
    rig: ChairmanRig,
) -> None:
    page = await _signed_in(rig)
    source = rig.config.source
    assert source is not None

    # 1. A citizen is talking to the old chairman through what follows.
    first = rig.call_ward("0912000201", timeout_s=90)
    await rig.old_chairman.wait_answered(1, timeout=30)

    # Screen 1: the ward list, searched without accents.
    await page.goto(rig.url + "/admin/wards")
    await page.fill("#ward-q", "dong ngac")
    await page.click("#ward-search button")
    row = page.locator('#wards tr[data-area="dong-ngac"]')
    await expect(row.locator(".chairman")).to_contain_text("t-chair")
    await _shot(page, "1-list")

    # Screen 2: the ward's page.
    await row.locator("a").click()
    await expect(page.locator("#ward-name")).to_have_text("Phường Đông Ngạc")
    await page.check('input[name="chairman_kind"][value="phone"]')
    await page.select_option("#chairman-phone", NEW_PHONE)
    await _shot(page, "2-ward")

    # Screen 3: the test call rings the new chairman's phone, nothing applied yet.
    await page.click("#test-call")
    await expect(page.locator("#ward-notice")).to_contain_text("Đang gọi thử")
    await rig.new_chairman.wait_answered(1, timeout=30)
    [trial] = rig.new_chairman.calls
    assert trial.caller_id == HOTLINE_NUMBER, rig.new_chairman.log_text()
    assert NEW_PHONE not in _chairman_line(source)
    await _shot(page, "3-test-call")

    # Screen 4: the preview of the change, then Apply with a reason.
    await page.click("#chairman-preview")
    await expect(page.locator("body")).to_contain_text("Phường Đông Ngạc")
    await _shot(page, "4-preview")
    await _apply_preview(page, "Bầu Chủ tịch UBND phường mới")

    # Screen 5: back on the ward, with its new chairman.
    await expect(page.locator("#chairman-now")).to_contain_text(NEW_PHONE)
    assert NEW_PHONE in _chairman_line(source)
    # The change landed while the first call was still up...
    assert not first.done(), "the first call ended before the change was applied"
    await _shot(page, "5-applied")

    # ...and that call went on undisturbed until the old chairman hung up.
    first_result = await first
    assert first_result.answered and first_result.hung_up_by == "remote", first_result.log_text
    await rig.old_chairman.wait_ended(1, timeout=60)
    assert [c.ended_by for c in rig.old_chairman.calls] == ["answerer"]

    # 2. The next citizen's call rings the new chairman.
    second = await rig.call_ward("0912000202", timeout_s=90)
    assert second.answered, second.log_text
    await rig.new_chairman.wait_answered(2, timeout=30)
    assert rig.new_chairman.caller_ids[1] == "0912000202"
    assert rig.old_chairman.rung_count == 1

    # 3. Rollback from the history page, one step: the old chairman is back.
    await page.goto(rig.url + "/admin/changes")
    latest = page.locator("#changes tbody tr").first
    await expect(latest).to_contain_text("Chủ tịch Phường Đông Ngạc")
    await expect(latest).to_contain_text("Bầu Chủ tịch UBND phường mới")
    await latest.locator("a.undo").click()
    await expect(page.locator("#change-summary")).to_contain_text("Hoàn tác")
    await _apply_preview(page, "Hoàn tác để kiểm tra")
    await wait_for(lambda: NEW_PHONE not in _chairman_line(source), 30, "the rollback saved")
    await page.goto(rig.url + "/admin/wards/dong-ngac")
    await expect(page.locator("#chairman-now")).to_contain_text("t-chair")
    await expect(page.locator("#chairman-now")).not_to_contain_text(NEW_PHONE)

    # 4. The call after that rings the old chairman again.
    third = await rig.call_ward("0912000203", timeout_s=90)
    assert third.answered, third.log_text
    await rig.old_chairman.wait_answered(2, timeout=30)
    assert rig.old_chairman.caller_ids == ["0912000201", "0912000203"]
    assert rig.new_chairman.rung_count == 2


def _chairman_line(source: Path) -> str:
    """Đông Ngạc's chairman line of the saved config file."""
    lines = source.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "code: dong-ngac" in line)
    return next(line for line in lines[start:] if "chairman:" in line)
