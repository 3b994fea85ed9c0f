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
from ivr.web.i18n import N_, translator
from ivr.web.rendering import render
from ivr.web.state import LANGUAGE, WATCHERS, Route, db, scope_of, state_of
from ivr.web.statistics_store import cases_by_channel, monthly_report, statistics
from ivr.web.written_work import channel_label

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
    # Cases per channel (issue 14): phone, voicemail and the written channels.
    figures["by_channel"] = await db(
        cases_by_channel, state.sessions, day_from, day_to, state.zone,
        None if hotline is None else hotline[0],
    )  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response(figures)
    _ = translator(request[LANGUAGE])
    # The on-time report per unit, per ward and per topic: ?by=unit|area|topic.
    names = report_names(state, _)
    unit_names = names["unit"]
    if is_export(request):
        if request.query.get("table") == "channels":
            return await export(request, "channels", channel_rows(figures["by_channel"], _))
        if request.query.get("table") == "deadlines":
            by = request.query.get("by", "unit")
            by = by if by in names else "unit"
            return await export(
                request,
                "deadlines" if by == "unit" else f"deadlines-{by}",
                deadline_rows(figures["deadlines"], names[by], _, by),
            )
        return await export(
            request, "statistics", [{"day": d, "calls": n} for d, n in figures["per_day"]]
        )
    area_names, topic_names = names["area"], names["topic"]
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
        "by_channel": bar_chart(
            [(_(channel_label(c)), n) for c, n in figures["by_channel"]], _("Cases by channel"),
            horizontal=True,
        ),
        "units": stacked_bars(
            [(unit_names.get(u, u), on, late) for u, on, late in figures["cases_by_unit"]],
            (_("On time"), _("Late")), _("Forwards answered on time and late per unit"),
        ),
    }  # fmt: skip
    return render(request, "stats.html", figures=figures, charts=charts, unit_names=unit_names,
                  names=names, channel_label=channel_label)  # fmt: skip


def channel_rows(by_channel: list[tuple[str, int]], _: Callable[..., str]) -> list[dict[str, Any]]:
    """Cases per channel as the export's rows (the channel's code and name),
    then the total."""
    rows: list[dict[str, Any]] = [
        {_("Channel"): channel, _("Name"): _(channel_label(channel)), _("Cases"): count}
        for channel, count in by_channel
    ]
    rows.append({_("Channel"): "", _("Name"): _("Total"),
                 _("Cases"): sum(n for _c, n in by_channel)})  # fmt: skip
    return rows


def report_names(state: Any, _: Callable[..., str]) -> dict[str, dict[str, str]]:
    """Display names of the on-time report's rows: responsible units (the
    config's ``units:``; a unit no longer there shows its code), wards and
    topics."""
    area_names = {a.code: a.name for a in iter_areas(state.config.areas)}
    return {
        "unit": {u.code: u.name for u in state.config.units},
        "area": {**area_names, "-": _("No ward")},
        "topic": {**{t.code: t.name for t in state.config.cases.topics}, "-": _("No topic")},
    }


def _month(text: str, today: date) -> tuple[int, int]:
    """``YYYY-MM`` from the month picker; by default the month just ended."""
    try:
        year, month = (int(part) for part in text.strip().split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    last = today.replace(day=1) - timedelta(days=1)
    return last.year, last.month


async def monthly_page(request: web.Request) -> web.StreamResponse:
    """The printable monthly on-time report (and its JSON): the cases received
    in the month per unit, ward and topic, of one hotline (a hotline's
    supervisor: always theirs) or of all."""
    state = state_of(request)
    scope = scope_of(request)
    now = datetime.now(state.zone)
    year, month = _month(request.query.get("month", ""), now.date())
    if scope.sees_everything:
        wanted = request.query.get("hotline", "")
        hotline_id = wanted if any(h.id == wanted for h in state.config.hotlines) else None
    else:
        hotline_id = scope.hotline_id
    report = await db(monthly_report, state.sessions, year, month, state.zone, hotline_id)
    if request.path.startswith("/api/"):
        return web.json_response(report)
    _ = translator(request[LANGUAGE])
    hotline = next((h for h in state.config.hotlines if h.id == hotline_id), None)
    return render(
        request, "stats_monthly.html", report=report, names=report_names(state, _),
        hotline=hotline, hotlines=state.config.hotlines if scope.sees_everything else [],
        month_label=f"{month:02d}/{year}", generated_at=now.strftime("%Y-%m-%d %H:%M"),
    )  # fmt: skip


GROUP_LABELS = {"unit": N_("Unit"), "area": N_("Ward"), "topic": N_("Topic")}
GROUP_KEYS = {"unit": "units", "area": "areas", "topic": "topics"}


def deadline_rows(
    deadlines: dict[str, Any],
    names: dict[str, str],
    _: Callable[..., str],
    by: str = "unit",
) -> list[dict[str, Any]]:
    """The on-time report as the supervisor files it: one row per unit (or
    ward, or topic: ``by``), then the total; headers in the user's language.
    Per unit the rows count forwards, with the ones received and returned."""
    if by == "unit":
        return unit_rows(deadlines, names, _)
    rows = []
    total = {**deadlines["total"], by: _("Total")}
    for row in [*deadlines[GROUP_KEYS[by]], total]:
        rate = row["on_time_rate"]
        rows.append(
            {
                _(GROUP_LABELS[by]): names.get(row[by], row[by]),
                _("Closed on time"): row["on_time"],
                _("Closed late"): row["late"],
                _("Open, within the deadline"): row["in_deadline"],
                _("Open, past the deadline"): row["overdue"],
                _("Total"): row["total"],
                _("On-time rate (%)"): "" if rate is None else rate,
            }
        )
    return rows


def unit_rows(
    deadlines: dict[str, Any], names: dict[str, str], _: Callable[..., str]
) -> list[dict[str, Any]]:
    """The per-unit table: the forwards each unit received in the period and
    where they stood as of the report's day, then the total."""
    rows = []
    total = {**deadlines["unit_total"], "unit": _("Total")}
    for row in [*deadlines["units"], total]:
        rate = row["on_time_rate"]
        rows.append(
            {
                _("Unit"): names.get(row["unit"], row["unit"]),
                _("Received"): row["received"],
                _("Answered on time"): row["on_time"],
                _("Answered late"): row["late"],
                _("Open, within the deadline"): row["in_deadline"],
                _("Open, past the deadline"): row["overdue"],
                _("Returned as not theirs"): row["returned"],
                _("On-time rate (%)"): "" if rate is None else rate,
            }
        )
    return rows


ROUTES = [
    Route("GET", "/stats", stats_page, WATCHERS, "stats"),
    Route("GET", "/stats.csv", stats_page, WATCHERS, "stats_csv"),
    Route("GET", "/stats.xlsx", stats_page, WATCHERS, "stats_xlsx"),
    Route("GET", "/api/v1/stats", stats_page, WATCHERS, "stats_api"),
    Route("GET", "/stats/monthly", monthly_page, WATCHERS, "stats_monthly"),
    Route("GET", "/api/v1/stats/monthly", monthly_page, WATCHERS, "stats_monthly_api"),
]
