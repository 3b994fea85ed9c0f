"""The public report form in a real browser at a phone's size: Debian's
chromium driven by Playwright (tests/rig/browser.py; no browser is ever
downloaded) against the real ``hotline serve --only web`` (tests/rig/serve.py).

A citizen fills the Vietnamese form with their thumb: picks a topic and ward,
lets the page fill the coordinates from the phone's position (emulated), adds
a photo, sends, and reads the case code; then follows it on the status page.
Screenshots of the filled form and of the result go to docs/screenshots/ (README).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import async_playwright, expect

from tests.rig.browser import launch_chromium
from tests.rig.serve import running_serve, write_serve_config
from tests.rig.stack import REPO

pytestmark = [pytest.mark.browser]

PHONE_SCREEN = {"width": 390, "height": 844}  # a common phone, CSS pixels
SCREENSHOTS = REPO / "docs" / "screenshots"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def _enable_form(data: dict[str, Any]) -> None:
    data["channels"] = {"web_form": {"enabled": True}}


async def test_a_citizen_reports_from_a_phone_and_follows_the_case(tmp_path: Path) -> None:
    config_path = write_serve_config(tmp_path, tweak=_enable_form)
    async with running_serve(config_path) as served, async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            context = await browser.new_context(
                viewport=PHONE_SCREEN, is_mobile=True, has_touch=True,
                geolocation={"latitude": 21.0712, "longitude": 105.7654},
                permissions=["geolocation"],
            )  # fmt: skip
            context.set_default_timeout(20_000)
            page = await context.new_page()
            errors: list[str] = []
            # Script errors and CSP refusals (a 400 page or a missing favicon is not one).
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text)
                    if "Content Security Policy" in m.text else None)  # fmt: skip
            await page.goto(served.base_url + "/report")
            await expect(page.locator("h1")).to_have_text("Gửi phản ánh, kiến nghị")

            # Fits the screen: nothing wider than the phone, a thumb-sized send button.
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_SCREEN["width"], width
            send = page.locator("#send-report")
            box = await send.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 300

            # Sent empty: the error summary names the fields, nothing is created.
            await send.click()
            await expect(page.locator("#error-summary")).to_be_visible()
            await expect(page.locator("#error-summary a[href='#f-topic']")).to_be_visible()
            assert await page.locator("#f-topic").get_attribute("aria-invalid") == "true"
            first_problem = page.locator("#error-summary li a").first
            await expect(first_problem).to_have_attribute("href", "#f-topic")  # page order
            await page.goto(served.base_url + "/report")  # a clean page for the screenshot

            await page.select_option("#f-topic", index=1)
            await page.select_option("#f-ward", "dong-ngac")
            await page.fill("#f-address", "Ngõ 5 phố Đông Ngạc")
            await page.click("#use-position")  # the script, with the emulated position
            await expect(page.locator("#f-latitude")).to_have_value("21.071200")
            await expect(page.locator("#f-longitude")).to_have_value("105.765400")
            await page.fill("#f-description", "Đèn đường ngõ 5 hỏng, tối không đi được.")
            await page.set_input_files(
                "#f-files", files=[{"name": "den.jpg", "mimeType": "image/jpeg",
                                    "buffer": _jpeg()}],
            )  # fmt: skip
            await page.fill("#f-name", "Nguyễn Văn An")
            await page.fill("#f-phone", "0912 345 678")
            assert not await page.is_checked("#f-publish_consent")  # unticked by default
            await page.check("#f-publish_consent")
            await page.screenshot(path=str(SCREENSHOTS / "report-form-phone.png"), full_page=True)
            await page.locator("#send-report").click()

            code_box = page.locator("#case-code")
            await expect(code_box).to_have_text(re.compile(r"^\d{8,12}$"))
            code = (await code_box.text_content() or "").strip()
            await expect(page.locator("#due-date")).to_contain_text("Hạn trả lời")
            await page.screenshot(path=str(SCREENSHOTS / "report-done-phone.png"))

            # The status page, reached from the result, with the code filled in.
            await page.click("text=Tra cứu phản ánh này")
            await expect(page.locator("#f-code")).to_have_value(code)
            await page.fill("#f-contact", "0912345678")
            await page.click("#look-up")
            await expect(page.locator("#report-status h2")).to_contain_text(code)
            await expect(page.locator("#report-text")).to_contain_text("Đèn đường ngõ 5")
            assert errors == [], errors  # no script error, no CSP violation
        finally:
            await browser.close()
    assert "Traceback" not in served.log, served.log
