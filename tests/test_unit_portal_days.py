"""The units' portal counts the days to a deadline in words that agree with
the number (issue 13): "1 day left", "due today", "overdue by 1 day" in
English, where the page used to say "1 days left"; Vietnamese has one form.
In tests/test_forwarding_api.py's two-hotline deployment."""

# The fixtures are tests/test_forwarding_api.py's, imported: pytest passes them
# in by the parameters that shadow the imported names.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest

from ivr.config import HotlineConfig
from ivr.web.auth import LANG_COOKIE
from tests.test_forwarding_api import (  # noqa: F401 (fixtures)
    UNIT_1,
    UNIT_2,
    Setup,
    _forward_both,
    config,
    sessions,
    setup,
)
from tests.test_unit_portal import _set_due, _today

pytestmark = pytest.mark.db


def _due_text(page: str) -> str:
    return page.split('class="due"', 1)[1].split("</td>", 1)[0]


async def test_one_day_left_and_one_day_overdue_read_in_the_singular(
    setup: Setup, config: HotlineConfig
) -> None:
    ids = await _forward_both(setup)
    today = _today(config)
    unit, _ = await setup.user("donvi-1")
    unit.session.cookie_jar.update_cookies({LANG_COOKIE: "en"})
    for due, text in ((1, "1 day left"), (0, "due today"), (3, "3 days left"),
                      (-1, "overdue by 1 day"), (-2, "overdue by 2 days")):  # fmt: skip
        _set_due(setup, ids[UNIT_1], today + timedelta(days=due))
        listing = _due_text(await (await unit.get("/forwards")).text())
        assert text in listing and "1 days" not in listing, (due, listing)
        page = await (await unit.get(f"/forwards/{ids[UNIT_1]}")).text()
        assert text in page.split('id="forward-due"', 1)[1].split("</dd>", 1)[0], due

    other, _ = await setup.user("donvi-2")  # Vietnamese, the default
    _set_due(setup, ids[UNIT_2], today + timedelta(days=1))
    assert "còn 1 ngày" in _due_text(await (await other.get("/forwards")).text())
    _set_due(setup, ids[UNIT_2], today)
    assert "đến hạn hôm nay" in _due_text(await (await other.get("/forwards")).text())
