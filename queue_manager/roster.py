"""The three-shift roster as a pure function of the config and a moment.

A shift belongs to the local date it starts on: the night shift 22:00-06:00
that started on Monday is Monday's shift until 06:00 on Tuesday, so its
weekday filter and date overrides are Monday's. Everything here takes an aware
datetime, so tests and the queue manager drive it with any clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.config.schema import WEEKDAYS, HotlineConfig, Shift

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShiftWindow:
    """One occurrence of a shift: ``start <= t < end`` (aware datetimes)."""

    shift_id: str
    day: date  # the local date the shift starts on
    start: datetime
    end: datetime


def _window(shift: Shift, day: date, zone: ZoneInfo) -> ShiftWindow:
    start = datetime.combine(day, shift.hours.start, zone)
    end_day = day if shift.hours.start < shift.hours.end else day + timedelta(days=1)
    end = datetime.combine(end_day, shift.hours.end, zone)
    return ShiftWindow(shift.id, day, start.astimezone(UTC), end.astimezone(UTC))


def shift_windows_at(config: HotlineConfig, moment: datetime) -> list[ShiftWindow]:
    """The shift occurrences running at ``moment`` (usually one)."""
    zone = ZoneInfo(config.timezone)
    today = moment.astimezone(zone).date()
    found = []
    for shift in config.roster.shifts:
        for day in (today - timedelta(days=1), today):
            window = _window(shift, day, zone)
            if window.start <= moment < window.end:
                found.append(window)
    return found


def next_boundary(config: HotlineConfig, moment: datetime) -> datetime | None:
    """The first shift start or end strictly after ``moment`` (None without shifts)."""
    zone = ZoneInfo(config.timezone)
    today = moment.astimezone(zone).date()
    candidates = [
        edge
        for shift in config.roster.shifts
        for offset in (-1, 0, 1)
        for window in [_window(shift, today + timedelta(days=offset), zone)]
        for edge in (window.start, window.end)
        if edge > moment
    ]
    return min(candidates, default=None)


def rostered_agents(config: HotlineConfig, moment: datetime) -> dict[str, set[str]]:
    """Queue id → agent ids the roster puts there at ``moment``.

    A date override for (date, shift, queue) replaces that day's weekly
    assignments of the shift to the queue.
    """
    wanted: dict[str, set[str]] = {queue.id: set() for queue in config.queues}
    for window in shift_windows_at(config, moment):
        weekday = WEEKDAYS[window.day.weekday()]
        overridden = {
            (o.shift, o.queue): o.agents
            for o in config.roster.overrides
            if o.date == window.day and o.shift == window.shift_id
        }
        for (_, queue_id), agents in overridden.items():
            wanted.setdefault(queue_id, set()).update(agents)
        for entry in config.roster.assignments:
            if entry.shift != window.shift_id or (entry.shift, entry.queue) in overridden:
                continue
            if weekday in entry.weekdays:
                wanted.setdefault(entry.queue, set()).update(entry.agents)
    return wanted


def current_shift_end(config: HotlineConfig, moment: datetime) -> datetime:
    """When a manual login or logout made at ``moment`` stops overriding the roster:
    the next shift boundary (or a day later when no shifts are configured)."""
    return next_boundary(config, moment) or moment + timedelta(days=1)
