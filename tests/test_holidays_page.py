"""The holidays' yearly view and forms (ivr/web/admin_holidays.py): the 2027
page lists Tết as computed, an announced bridge day and working Saturday are
one line each in the file's style, and only administrators change them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from ivr.config import load_config
from ivr.config.holiday_calendar import HolidayCalendar
from ivr.config_applier import ConfigApplier
from ivr.web import admin_holidays
from ivr.web.admin_holidays import add_day, remove_day, set_source
from ivr.web.app import create_app
from tests.rig.console import (
    Account,
    ServedConsole,
    changed_lines,
    config_with_own_folders,
    console_sessions,
    record_previews,
)

REPO = Path(__file__).resolve().parents[1]
PUBLIC_ADMIN = REPO / "examples" / "ha-noi-public-admin.yaml"
PASSWORD = "mật-khẩu-đủ-dài"


def test_bridge_day_and_working_saturday_are_one_line_each() -> None:
    text = PUBLIC_ADMIN.read_text(encoding="utf-8")
    bridge = add_day(text, "holidays", date(2027, 2, 3), "Nghỉ hoán đổi trước Tết")
    assert changed_lines(text, bridge) == (
        [], ["  - {date: 2027-02-03, name: Nghỉ hoán đổi trước Tết}"]
    )  # fmt: skip
    both = add_day(bridge, "working_days", date(2027, 1, 30), "Làm bù cho ngày 3/2")
    removed, added = changed_lines(bridge, both)
    # The file had no working days: the section is added (at the end).
    assert removed == []
    assert added == ["working_days:", "  - date: 2027-01-30", "    name: Làm bù cho ngày 3/2"]
    config = load_config(PUBLIC_ADMIN, text=both)
    calendar = HolidayCalendar(config)
    assert calendar.is_day_off(date(2027, 2, 3)) and not calendar.is_day_off(date(2027, 1, 30))
    assert calendar.working_day(date(2027, 1, 30)) is not None
    # Removing them gives the file back byte for byte.
    back = remove_day(remove_day(both, "working_days", date(2027, 1, 30)), "holidays",
                      date(2027, 2, 3))  # fmt: skip
    assert back.rstrip("\n") == text.rstrip("\n")
    off = set_source(text, None)
    assert changed_lines(text, off)[0] == ["holidays_from: vietnam"]
    assert load_config(PUBLIC_ADMIN, text=off).holidays_from is None


@pytest_asyncio.fixture(loop_scope="session")
async def page(tmp_path: Path) -> AsyncIterator[ServedConsole]:
    config = load_config(
        config_with_own_folders(tmp_path, PUBLIC_ADMIN.read_text(encoding="utf-8"))
    )
    with console_sessions(
        config.database_url, Account("quantri", "admin"),
        Account("giamsat", "supervisor", hotline_id="ha-noi-hcc"), password=PASSWORD,
    ) as sessions:  # fmt: skip
        app = create_app(config, sessions, secret=b"s" * 32, applier=ConfigApplier(config))
        async with ServedConsole(app, PASSWORD) as running:
            yield running


def _row(html: str, day: str) -> str:
    return html.split(f'<tr data-date="{day}"', 1)[1].split("</tr>", 1)[0]


@pytest.mark.db
async def test_the_2027_page_lists_tet_as_computed(page: ServedConsole) -> None:
    client, _ = await page.signed_in("quantri")
    answer = await client.get("/admin/holidays?year=2027")
    assert answer.status == 200
    html = await answer.text()
    tet = _row(html, "2027-02-06")
    assert "Tết Nguyên Đán" in tet and 'data-origin="computed"' in tet and "06/02/2027" in tet
    assert "Mùng ba Tết" in _row(html, "2027-02-08")
    assert "Hùng Vương" in _row(html, "2027-04-16")
    # The 2026 announcement's days are listed as announced in 2026's page.
    html_2026 = await (await client.get("/admin/holidays?year=2026")).text()
    assert 'data-origin="announced"' in _row(html_2026, "2026-02-14")
    for bad in ("abc", "99999", "1999"):
        assert (await client.get(f"/admin/holidays?year={bad}")).status == 400


@pytest.mark.db
async def test_adding_a_bridge_day_previews_it_and_supervisors_only_look(
    page: ServedConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_previews(monkeypatch, admin_holidays)
    client, csrf = await page.signed_in("quantri")
    form = {"csrf_token": csrf, "change": "add_day_off", "date": "2027-02-03",
            "name": "Nghỉ hoán đổi trước Tết"}  # fmt: skip
    answer = await client.post("/admin/holidays", data=form)
    assert answer.status == 200 and await answer.text() == "preview"
    listed = yaml.safe_load(seen["new_text"])["holidays"]
    assert listed[-1] == {"date": date(2027, 2, 3), "name": "Nghỉ hoán đổi trước Tết"}
    assert "03/02/2027" in seen["summary"] and seen["back"] == "/admin/holidays?year=2027"
    for bad in ({"date": "2027-02-30"}, {"change": "drop"}, {"date": "1800-01-01"}):
        seen.clear()
        assert (await client.post("/admin/holidays", data={**form, **bad})).status == 400
        assert not seen
    supervisor, supervisor_csrf = await page.signed_in("giamsat")
    assert (await supervisor.get("/admin/holidays?year=2027")).status == 200
    refused = await supervisor.post("/admin/holidays", data={**form, "csrf_token": supervisor_csrf})
    assert refused.status == 403 and not seen
