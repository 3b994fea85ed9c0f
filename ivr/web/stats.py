"""The statistics page: figures for a period (at most a year, two weeks by
default), as charts, JSON, CSV or XLSX from one query."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from ivr.config.schema import iter_areas
from ivr.web import store
from ivr.web.charts import bar_chart, stacked_bars
from ivr.web.exports import export, is_export
from ivr.web.i18n import translator
from ivr.web.rendering import render
from ivr.web.state import LANGUAGE, WATCHERS, Route, db, state_of
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
    figures = await db(statistics, state.sessions, day_from, day_to, state.zone)
    if request.path.startswith("/api/"):
        return web.json_response(figures)
    if is_export(request):
        return await export(
            request, "statistics", [{"day": d, "calls": n} for d, n in figures["per_day"]]
        )
    _ = translator(request[LANGUAGE])
    area_names = {a.code: a.name for a in iter_areas(state.config.areas)}
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
    return render(request, "stats.html", figures=figures, charts=charts)


ROUTES = [
    Route("GET", "/stats", stats_page, WATCHERS, "stats"),
    Route("GET", "/stats.csv", stats_page, WATCHERS, "stats_csv"),
    Route("GET", "/stats.xlsx", stats_page, WATCHERS, "stats_xlsx"),
    Route("GET", "/api/v1/stats", stats_page, WATCHERS, "stats_api"),
]
