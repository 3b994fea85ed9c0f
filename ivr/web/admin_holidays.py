"""Holidays as a yearly view (issue 16): Vietnam's public holidays of the year,
computed by the ``holidays`` package (``holidays_from: vietnam``; Tết and Hùng
Kings from the lunar calendar), the days off the government announces on top
(bridge days: ``holidays``) and the working days it announces (the Saturday
that makes up for a bridge day, or a computed day taken back:
``working_days``). The clerk checks the page against the year's announcement
and adds what it says; see :mod:`ivr.config.holiday_calendar`.

Every change is built from the file as saved now with
:mod:`ivr.config.yaml_edit` and goes through
:func:`ivr.web.config_changes.preview_change`. Opening hours (closed on
holidays) and case deadlines (working days) follow the applied config.

Who may use it: the view, administrators and supervisors; the changes,
administrators only (holidays are one list for every hotline of the file).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import web

from ivr.config import yaml_edit
from ivr.config.holiday_calendar import HolidayCalendar
from ivr.config.schema import WEEKDAYS
from ivr.web.i18n import N_, translator
from ivr.web.rendering import error_page, form_or_json, render
from ivr.web.state import ADMINS, LANGUAGE, WATCHERS, Route, state_of

logger = logging.getLogger(__name__)

PAGE = "/admin/holidays"
# The years a clerk may look at or change: far enough for any announcement.
YEARS = range(2000, 2101)

# -- building the new text ---------------------------------------------------------------


def _written(text: str, section: str) -> list[Any]:
    data = yaml.safe_load(text)
    found = data.get(section) if isinstance(data, dict) else None
    return found if isinstance(found, list) else []


def _index_of(text: str, section: str, day: date) -> int | None:
    return next(
        (
            i
            for i, entry in enumerate(_written(text, section))
            if isinstance(entry, dict) and str(entry.get("date")) == day.isoformat()
        ),
        None,
    )


def add_day(text: str, section: str, day: date, name: str, **extra: Any) -> str:
    """``text`` with a day off (``holidays``) or a working day (``working_days``)
    added; one already written for that date is renamed instead."""
    index = _index_of(text, section, day)
    if index is not None:
        text = yaml_edit.set_value(text, (section, index, "name"), name)
        for key, value in extra.items():
            text = yaml_edit.set_value(text, (section, index, key), value)
        return text
    return yaml_edit.append_item(text, (section,), {"date": day, "name": name, **extra})


def remove_day(text: str, section: str, day: date) -> str:
    """``text`` without the entry of ``section`` for ``day`` (unchanged when none)."""
    index = _index_of(text, section, day)
    if index is None:
        return text
    if len(_written(text, section)) == 1:  # the last one: the section goes too
        return yaml_edit.remove_item(text, (section,))
    return yaml_edit.remove_item(text, (section, index))


def set_source(text: str, country: str | None) -> str:
    """``text`` with ``holidays_from`` set (or removed with None)."""
    data = yaml.safe_load(text)
    if country is None:
        if isinstance(data, dict) and "holidays_from" in data:
            return yaml_edit.remove_item(text, ("holidays_from",))
        return text
    return yaml_edit.set_value(text, ("holidays_from",), country)


# -- handlers ----------------------------------------------------------------------------


async def preview_change(
    request: web.Request, *, new_text: str, summary: str, back: str
) -> web.StreamResponse:
    """The pipeline's preview (ivr/web/config_changes.py)."""
    from ivr.web import config_changes

    return await config_changes.preview_change(
        request, new_text=new_text, summary=summary, back=back
    )


def _back(year: int) -> str:
    return f"{PAGE}?{urlencode({'year': year})}"


async def year_page(request: web.Request) -> web.StreamResponse:
    """The year's days off (computed and announced) and working days."""
    state = state_of(request)
    config = state.config
    try:
        year = int(request.query.get("year") or datetime.now(state.zone).year)
    except ValueError:
        return error_page(request, 400, "Bad request", N_("expected a year"))
    if year not in YEARS:
        return error_page(request, 400, "Bad request", N_("expected a year"))
    language = request.get(LANGUAGE, "vi")
    calendar = HolidayCalendar(config)
    days_off = calendar.year(year, language)
    return render(
        request, "admin_holidays.html", year=year, days_off=days_off,
        working_days=calendar.working_days(year), taken_back=calendar.taken_back(year, language),
        weekdays=WEEKDAYS, computed_on=config.holidays_from is not None,
        weekday_off=sum(1 for d in days_off if d.day.weekday() < 5),
        editable=state.applier is not None,
    )  # fmt: skip


async def _current_text(request: web.Request) -> str:
    applier = state_of(request).applier
    if applier is None:
        raise web.HTTPServiceUnavailable(text="This process does not own the config.")
    return await asyncio.to_thread(applier.current_text)


def _form_day(form: dict[str, str]) -> date | None:
    try:
        day = date.fromisoformat(form.get("date", "").strip())
    except ValueError:
        return None
    return day if day.year in YEARS else None


async def change(request: web.Request) -> web.StreamResponse:
    """Add or remove an announced day off or working day, or switch the
    computed calendar on or off."""
    form = await form_or_json(request)
    what = form.get("change", "")
    _ = translator(request.get(LANGUAGE, "vi"))
    text = await _current_text(request)
    if what == "source":
        on = form.get("holidays_from") == "vietnam"
        new_text = set_source(text, "vietnam" if on else None)
        summary = (
            _("Holidays: Vietnam's public holidays computed for every year")
            if on
            else _("Holidays: only the days listed, nothing computed")
        )
        return await preview_change(request, new_text=new_text, summary=summary,
                                    back=PAGE)  # fmt: skip
    day = _form_day(form)
    if day is None:
        return error_page(request, 400, "Bad request", N_("expected a date YYYY-MM-DD"))
    shown = day.strftime("%d/%m/%Y")
    # The name is checked by check-config (SafeTitle) in the preview, never here.
    name = form.get("name", "").strip()
    if what == "add_day_off":
        new_text = add_day(text, "holidays", day, name)
        summary = _("Holidays: {day} is a day off ({name})", day=shown, name=name)
    elif what == "remove_day_off":
        new_text = remove_day(text, "holidays", day)
        summary = _("Holidays: {day} is no longer an announced day off", day=shown)
    elif what == "add_working_day":
        hours_of = form.get("hours_of", "mon")
        extra = {} if hours_of == "mon" else {"hours_of": hours_of}
        new_text = add_day(text, "working_days", day, name, **extra)
        summary = _("Holidays: {day} is a working day ({name})", day=shown, name=name)
    elif what == "remove_working_day":
        new_text = remove_day(text, "working_days", day)
        summary = _("Holidays: {day} is no longer an announced working day", day=shown)
    else:
        return error_page(request, 400, "Bad request", N_("unknown change"))
    if new_text == text:
        return error_page(request, 400, "Bad request", N_("nothing to change"))
    return await preview_change(request, new_text=new_text, summary=summary,
                                back=_back(day.year))  # fmt: skip


ROUTES = [
    Route("GET", PAGE, year_page, WATCHERS, "holidays_year"),
    Route("POST", PAGE, change, ADMINS, "holidays_change"),
]
