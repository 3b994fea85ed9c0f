"""The written work in a real browser (Debian's chromium through Playwright):
an agent of hotline A opens the queue of written work (Vietnamese by default),
filters it to SMS, opens the case, sees the citizen's message with the photo's
thumbnail (fetched and decoded by the browser through the access-checked
route) and writes a reply that shows in the thread as waiting to be sent; the
supervisor's wallboard shows the counts per channel. The data are those of
tests/test_written_work.py."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright, expect

from tests.rig.browser import launch_chromium
from tests.rig.browser import signed_in as browser_signed_in
from tests.test_web import PASSWORD
from tests.test_written_work import Written, config, sessions, written  # noqa: F401

pytestmark = [pytest.mark.browser]
TIMEOUT_MS = 20_000


async def test_an_agent_works_a_written_case_from_the_queue_in_the_browser(
    written: Written,  # noqa: F811 (the fixture imported above)
) -> None:
    assert written.console.server is not None
    url = str(written.console.server.make_url("")).rstrip("/")
    code = written.codes["a_sms"]
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    try:
        context, page = await browser_signed_in(browser, url, "dtv-a", PASSWORD, TIMEOUT_MS)
        await expect(page.locator("nav")).to_contain_text("Hồ sơ qua kênh văn bản")
        await page.goto(url + "/written")
        await expect(page.locator("h1")).to_have_text("Hồ sơ qua kênh văn bản")
        rows = page.locator("#written-work tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.first).to_have_attribute("data-code", written.codes["a_email"])
        await page.select_option("select[name=channel]", "sms")
        await page.click("#written-filter button")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Tin nhắn SMS")

        await page.click(f"#written-work a[href='/cases/{code}']")
        await expect(page.locator("#case-code")).to_have_text(code)
        inbound = page.locator("#thread li.message[data-direction='in']")
        await expect(inbound).to_contain_text("Đèn đường hỏng ngõ 5, tối om")
        thumb = inbound.locator("img.thumb")
        await expect(thumb).to_have_attribute(
            "src", f"/cases/{code}/attachments/{written.photo}?thumb=1"
        )
        # The browser fetched the thumbnail through the checked route and decoded it.
        await page.wait_for_function(
            "img => img.complete && img.naturalWidth === 160", arg=await thumb.element_handle()
        )
        await expect(page.locator("#thread [data-status='failed']")).to_contain_text(
            "Gửi không thành công"
        )

        await page.fill("#reply-text", "Đội điện lực sẽ đến trong ngày mai.")
        await page.click("#reply-send")
        reply = page.locator("#thread li.message[data-status='pending']")
        await expect(reply).to_contain_text("Đội điện lực sẽ đến trong ngày mai.")
        await expect(reply).to_contain_text("Đang chờ gửi")
        await context.close()

        context, page = await browser_signed_in(browser, url, "gs-a", PASSWORD, TIMEOUT_MS)
        await page.goto(url + "/wallboard")
        await expect(page.locator("#written-counts .written-total")).to_have_text("3")
        await expect(page.locator("#written-counts li[data-channel='sms'] b")).to_have_text("1")
        await context.close()
    finally:
        await browser.close()
        await playwright.stop()
