"""The statistics page: figures for a period (at most a year, two weeks by
default), as charts, JSON, CSV or XLSX from one query; a hotline's supervisor
gets that hotline's figures only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.config.schema import iter_areas
from ivr.web import store
from ivr.web.charts import bar_chart, stacked_bars
from ivr.web.exports import export, is_export
from ivr.web.i18n import translator
from ivr.web.rendering import render
from ivr.web.state import LANGUAGE, WATCHERS, Route, db, scope_of, state_of
from ivr.web.statistics_store import statistics

logger = logging.getLogger(__name__)


def _period(request: web.Request, zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    filters = store.Filters.parse(request.query)
    day_to = filters.day_to or today
    day_from = filters.day_from or day_to - timedelta(days=13)
    if day_from > day_to or (day_to - day_from).days > 366:
        day_from = day_to - timedelta(days=13)
    return day_from, day_to


async def stats_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    day_from, day_to = _period(request, state.zone)
    scope = scope_of(request)
    # A hotline's supervisor counts only that hotline's calls, cases and queues.
    hotline = (
        None if scope.sees_everything else (scope.hotline_id or "", scope.queues(state.config))
    )
    figures = await db(statistics, state.sessions, day_from, day_to, state.zone, hotline)
    if request.path.startswith("/api/"):
        return web.json_response(figures)
    _ = translator(request[LANGUAGE])
    area_names = {a.code: a.name for a in iter_areas(state.config.areas)}
    # Cases by responsible unit: an area or a department; "-" not assigned yet.
    departments = {d.code: d.name for d in state.config.departments}
    unit_names = {**area_names, **departments, "-": _("No unit yet")}
    if is_export(request):
        if request.query.get("table") == "deadlines":
            return await export(
                request, "deadlines", deadline_rows(figures["deadlines"], unit_names, _)
            )
        return await export(
            request, "statistics", [{"day": d, "calls": n} for d, n in figures["per_day"]]
        )
    topic_names = {t.code: t.name for t in state.config.cases.topics}
    charts = {
        "per_day": bar_chart([(d[5:], n) for d, n in figures["per_day"]], _("Calls per day")),
        "per_hour": bar_chart([(f"{h}", n) for h, n in figures["per_hour"]], _("Calls per hour")),
        "by_area": bar_chart(
            [(area_names.get(a, a), n) for a, n in figures["by_area"][:12]], _("Calls by area"),
            horizontal=True,
        ),
        "by_topic": bar_chart(
            [(topic_names.get(t, t), n) for t, n in figures["by_topic"]], _("Cases by topic"),
            horizontal=True,
        ),
        "queue": stacked_bars(
            [(_("Queue"), figures["queue_answered"], figures["queue_abandoned"])],
            (_("Answered"), _("Abandoned")), _("Queue calls: answered and abandoned"),
        ),
        "units": stacked_bars(
            [(u, on, late) for u, on, late in figures["cases_by_unit"]],
            (_("On time"), _("Late")), _("Cases on time and late per unit"),
        ),
    }  # fmt: skip
    return render(request, "stats.html", figures=figures, charts=charts, unit_names=unit_names)


def deadline_rows(
    deadlines: dict[str, Any], unit_names: dict[str, str], _: Callable[..., str]
) -> list[dict[str, Any]]:
    """The on-time report as the supervisor files it: one row per unit, then
    the total; headers in the user's language."""
    rows = []
    for row in [*deadlines["units"], {**deadlines["total"], "unit": _("Total")}]:
        rate = row["on_time_rate"]
        rows.append(
            {
                _("Unit"): unit_names.get(row["unit"], row["unit"]),
                _("Closed on time"): row["on_time"],
                _("Closed late"): row["late"],
                _("Open, within the deadline"): row["in_deadline"],
                _("Open, past the deadline"): row["overdue"],
                _("Total"): row["total"],
                _("On-time rate (%)"): "" if rate is None else rate,
            }
        )
    return rows


ROUTES = [
    Route("GET", "/stats", stats_page, WATCHERS, "stats"),
    Route("GET", "/stats.csv", stats_page, WATCHERS, "stats_csv"),
    Route("GET", "/stats.xlsx", stats_page, WATCHERS, "stats_xlsx"),
    Route("GET", "/api/v1/stats", stats_page, WATCHERS, "stats_api"),
]
