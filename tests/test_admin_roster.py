"""The roster calendar (ivr/web/admin_roster.py): a cell changed for one day is a
day override written in the file's style (and removed when the cell goes back
to the weekly agents); moving an agent into tomorrow's night shift changes the
queue's membership at 22:00 on a fixed clock, not before; a swap shows on both
agents' rows of the page; a shift below its minimum is flagged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml

from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.prompts import PromptBuildReport
from ivr.web import admin_roster
from ivr.web.admin_roster import cell_agents, set_cell, shortfalls, swap_agents
from ivr.web.app import create_app
from ivr.web.i18n import translator
from ivr.web.state import STATE
from queue_manager.manager import desired_members, plan_membership
from queue_manager.model import LiveModel
from tests.rig.console import (
    Account,
    ServedConsole,
    changed_lines,
    config_with_own_folders,
    console_sessions,
    record_previews,
)

REPO = Path(__file__).resolve().parents[1]
BAC_TU_LIEM = REPO / "examples" / "bac-tu-liem.yaml"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PASSWORD = "mật-khẩu-đủ-dài"
TUESDAY = date(2026, 12, 1)  # "today" of these tests; the night shift is 22:00-06:00


@pytest.fixture(scope="module")
def text() -> str:
    return BAC_TU_LIEM.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def config(text: str) -> HotlineConfig:
    return load_config(BAC_TU_LIEM, text=text)


def test_a_cell_changed_for_a_day_is_one_override_line(text: str, config: HotlineConfig) -> None:
    before, overridden = cell_agents(config, TUESDAY, "dem", "operator")
    assert not overridden and "dtv01" not in before
    new = set_cell(text, config, TUESDAY, "dem", "operator", [*before, "dtv01"])
    removed, added = changed_lines(text, new)
    assert removed == []
    assert added == [
        "    - {date: 2026-12-01, shift: dem, queue: operator, agents: [dtv13, dtv14, dtv15, "
        "dtv16, dtv17, dtv18, dtv01]}"
    ]
    changed = load_config(BAC_TU_LIEM, text=new)
    assert cell_agents(changed, TUESDAY, "dem", "operator") == ([*before, "dtv01"], True)
    # Other days keep the weekly pattern.
    assert cell_agents(changed, TUESDAY + timedelta(days=1), "dem", "operator")[0] == before
    # Back to the weekly agents: the override goes, the file is as it was.
    assert set_cell(new, changed, TUESDAY, "dem", "operator", before) == text


def test_an_existing_override_is_changed_in_place(text: str, config: HotlineConfig) -> None:
    tet = date(2026, 2, 17)
    new = set_cell(text, config, tet, "dem", "operator", ["dtv13", "dtv14"])
    removed, added = changed_lines(text, new)
    assert removed == [
        "    - {date: 2026-02-17, shift: dem, queue: operator, agents: [dtv13, dtv14, dtv15]}"
    ]
    assert added == [
        "    - {date: 2026-02-17, shift: dem, queue: operator, agents: [dtv13, dtv14]}"
    ]


def test_agent_moved_into_tomorrows_night_shift_joins_the_queue_at_22h(
    text: str, config: HotlineConfig
) -> None:
    """The roster applier's plan on a fixed clock: dtv01 (a morning agent) put
    into tomorrow's night shift of the field queue is added at 22:00 that
    evening, with the exact AMI action, and not one minute before."""
    tomorrow = TUESDAY + timedelta(days=1)
    agents, _ = cell_agents(config, tomorrow, "dem", "field")
    new = set_cell(text, config, tomorrow, "dem", "field", [*agents, "dtv01"])
    changed = load_config(BAC_TU_LIEM, text=new)

    def plan(at: datetime) -> list[Any]:
        # What the roster applier sends to a node with no members yet.
        return plan_membership(changed, desired_members(changed, at), LiveModel("local"))

    evening = datetime(2026, 12, 2, 21, 59, tzinfo=ZONE)
    assert not [a for a in plan(evening) if a.interface == "PJSIP/dtv-01" and a.queue == "field"]
    at_22 = [a for a in plan(evening + timedelta(minutes=1)) if a.interface == "PJSIP/dtv-01"]
    assert [(a.kind, a.queue) for a in at_22] == [("add", "field")]
    assert at_22[0].ami()["Action"] == "QueueAdd" and at_22[0].ami()["Queue"] == "field"
    # The same night on the unchanged config: dtv01 stays out.
    assert "dtv01" not in desired_members(config, evening + timedelta(minutes=1))["field"]
    # Through the night, after midnight too: the shift belongs to Wednesday.
    assert "dtv01" in desired_members(changed, datetime(2026, 12, 3, 3, 0, tzinfo=ZONE))["field"]
    # The next evening the weekly night crew only.
    assert "dtv01" not in desired_members(changed, evening + timedelta(days=1, minutes=1))["field"]


def test_a_swap_exchanges_the_two_agents_cells(text: str, config: HotlineConfig) -> None:
    # dtv01 works the morning (operator, procedures, field); dtv13 the night.
    new = swap_agents(text, config, TUESDAY, "dtv01", "dtv13", list(config.queues))
    changed = load_config(BAC_TU_LIEM, text=new)
    assert "dtv13" in cell_agents(changed, TUESDAY, "sang", "operator")[0]
    assert "dtv01" not in cell_agents(changed, TUESDAY, "sang", "operator")[0]
    assert "dtv01" in cell_agents(changed, TUESDAY, "dem", "field")[0]
    assert "dtv13" not in cell_agents(changed, TUESDAY, "dem", "field")[0]
    # The next day is untouched.
    assert "dtv01" in cell_agents(changed, TUESDAY + timedelta(days=1), "sang", "operator")[0]


def test_shift_below_its_minimum_is_flagged(text: str) -> None:
    raw = yaml.safe_load(text)
    raw["roster"]["shifts"][2]["min_agents"] = 6
    config = load_config(BAC_TU_LIEM, text=yaml.safe_dump(raw, allow_unicode=True))
    assert shortfalls(config, [TUESDAY], list(config.queues)) == []
    tet = date(2026, 2, 17)  # the example's Tết night override keeps three on operator,
    # but field keeps its six: still six distinct agents.
    assert shortfalls(config, [tet], list(config.queues)) == []
    fewer = set_cell(yaml.safe_dump(raw, allow_unicode=True), config, TUESDAY, "dem", "field",
                     ["dtv13"])  # fmt: skip
    fewer = set_cell(fewer, config, TUESDAY, "dem", "operator", ["dtv13", "dtv14"])
    [short] = shortfalls(load_config(BAC_TU_LIEM, text=fewer), [TUESDAY], list(config.queues))
    assert (short.day, short.shift.id, short.staffed) == (TUESDAY, "dem", 2)


# --- the page ---------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def page(tmp_path: Path, text: str, config: HotlineConfig) -> AsyncIterator[ServedConsole]:
    # The file already holds a swap of dtv01 and dtv13 on Tuesday.
    swap = swap_agents(text, config, TUESDAY, "dtv01", "dtv13", list(config.queues))
    path = config_with_own_folders(tmp_path, swap)
    swapped = load_config(path)
    with console_sessions(
        swapped.database_url, Account("quantri", "admin"), Account("dtv1", "agent",
        agent_id="dtv01"), Account("giamsat-khac", "supervisor", hotline_id="elsewhere"),
        password=PASSWORD,
    ) as sessions:  # fmt: skip
        source = ConfigSource.of(swapped)
        applier = ConfigApplier(source, build_prompts=lambda _config: PromptBuildReport())
        app = create_app(source, sessions, secret=b"s" * 32, applier=applier)
        async with ServedConsole(app, PASSWORD) as running:
            yield running


def _row(html: str, agent_id: str) -> str:
    return html.split(f'<tr id="agent-{agent_id}"', 1)[1].split("</tr>", 1)[0]


def _day_cell(row: str, day: date) -> str:
    return row.split(f'data-day="{day.isoformat()}">', 1)[1].split("</td>", 1)[0]


@pytest.mark.db
async def test_a_swap_shows_on_both_agents_rows(page: ServedConsole) -> None:
    client, _ = await page.signed_in("quantri")
    answer = await client.get("/admin/roster?week=2026-12-01")
    assert answer.status == 200
    html = await answer.text()
    tuesday, wednesday = _day_cell, TUESDAY + timedelta(days=1)
    first, second = _row(html, "dtv01"), _row(html, "dtv13")
    assert "Ca đêm" in tuesday(first, TUESDAY) and "Ca sáng" not in tuesday(first, TUESDAY)
    assert "Ca sáng" in tuesday(second, TUESDAY) and "Ca đêm" not in tuesday(second, TUESDAY)
    # The day after, each is back on their own shift.
    assert "Ca sáng" in tuesday(first, wednesday) and "Ca đêm" in tuesday(second, wednesday)
    # The grid marks the changed cells as changed for the day.
    assert 'class="override"' in html.split('id="cell-2026-12-01-sang-operator"', 1)[0][-200:]


@pytest.mark.db
async def test_picking_an_agent_previews_the_override(
    page: ServedConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_previews(monkeypatch, admin_roster)
    client, csrf = await page.signed_in("quantri")
    form = {"csrf_token": csrf, "op": "add", "date": "2026-12-02", "shift": "dem",
            "queue": "field", "agent": "dtv02"}  # fmt: skip
    answer = await client.post("/admin/roster/cell", data=form)
    assert answer.status == 200 and await answer.text() == "preview"
    written = yaml.safe_load(seen["new_text"])["roster"]["overrides"][-1]
    assert written == {
        "date": date(2026, 12, 2),
        "shift": "dem",
        "queue": "field",
        "agents": ["dtv13", "dtv14", "dtv15", "dtv16", "dtv17", "dtv18", "dtv02"],
    }
    assert "Ca đêm" in seen["summary"] and seen["back"] == "/admin/roster?week=2026-11-30"
    # Hostile or unknown values are refused before any text is built.
    for bad in ({"date": "2026-13-01"}, {"agent": "nobody"}, {"queue": "x\r\ny"}, {"op": "drop"}):
        seen.clear()
        answer = await client.post("/admin/roster/cell", data={**form, **bad})
        assert answer.status == 400 and not seen
    # An agent may not use the page at all.
    agent, agent_csrf = await page.signed_in("dtv1")
    assert (await agent.get("/admin/roster")).status == 403
    refused = await agent.post("/admin/roster/cell", data={**form, "csrf_token": agent_csrf})
    assert refused.status == 403 and not seen


@pytest.mark.db
async def test_grid_to_applied_config_moves_the_agent_at_22h(page: ServedConsole) -> None:
    """The clerk's whole path without Asterisk: the grid's pick, the change
    preview, Apply with a reason; the running config then puts dtv02 in the
    field queue from 22:00 on Wednesday's night, not before."""
    client, csrf = await page.signed_in("quantri")
    form = {"csrf_token": csrf, "op": "add", "date": "2026-12-02", "shift": "dem",
            "queue": "field", "agent": "dtv02"}  # fmt: skip
    preview = await client.post("/admin/roster/cell", data=form)
    html = await preview.text()
    assert preview.status == 200, html
    assert "dtv02" in html or "Trần Văn Minh" in html  # the difference names the change
    token = html.split('name="token" value="', 1)[1].split('"', 1)[0]
    applied = await client.post("/admin/changes/apply", allow_redirects=False, data={
        "csrf_token": csrf, "token": token, "reason": "Trực thay ca đêm",
    })  # fmt: skip
    assert applied.status in (302, 303), await applied.text()
    assert applied.headers["Location"].startswith("/admin/roster?week=2026-11-30")
    running = page.app[STATE].config
    before = datetime(2026, 12, 2, 21, 59, tzinfo=ZONE)
    assert "dtv02" not in desired_members(running, before)["field"]
    assert "dtv02" in desired_members(running, before + timedelta(minutes=1))["field"]
    # The grid shows the new cell as changed for the day.
    grid = await (await client.get("/admin/roster?week=2026-11-30")).text()
    cell = grid.split('id="cell-2026-12-02-dem-field"', 1)[1].split("</td>", 1)[0]
    assert 'data-agent="dtv02"' in cell
    # A supervisor of another hotline may open neither the cell nor the swap.
    other, other_csrf = await page.signed_in("giamsat-khac")
    refused = await other.post("/admin/roster/cell", data={**form, "csrf_token": other_csrf})
    assert refused.status == 403
    swap = {"csrf_token": other_csrf, "date": "2026-12-02", "first": "dtv01", "second": "dtv02"}
    assert (await other.post("/admin/roster/swap", data=swap)).status == 403


def test_the_change_summary_warns_when_a_shift_falls_below_its_minimum(
    tmp_path: Path, text: str
) -> None:
    raw = yaml.safe_load(text)
    raw["roster"]["shifts"][2]["min_agents"] = 6
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    base = path.read_text(encoding="utf-8")
    fewer = set_cell(base, config, TUESDAY, "dem", "field", ["dtv13"])
    fewer = set_cell(fewer, config, TUESDAY, "dem", "operator", ["dtv13", "dtv14"])
    vi = admin_roster._warning(config, fewer, TUESDAY, list(config.queues), translator("vi"))
    assert "Ca đêm" in vi and "01/12/2026" in vi and "2" in vi and "6" in vi
    assert "Cảnh báo" in vi
    assert admin_roster._warning(config, base, TUESDAY, list(config.queues), translator("vi")) == ""
