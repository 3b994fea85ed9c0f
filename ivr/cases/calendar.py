"""Working days: Monday to Friday, minus the days off, plus announced working days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from ivr.config.holiday_calendar import HolidayCalendar
from ivr.config.schema import HotlineConfig


class WorkingCalendar:
    """Counts working days on the hotline's calendar (holidays are data)."""

    def __init__(self, holidays: Iterable[date] = (), *, calendar: HolidayCalendar | None = None):
        self._holidays = frozenset(holidays)
        self._calendar = calendar

    @classmethod
    def of(cls, config: HotlineConfig) -> WorkingCalendar:
        """The config's calendar: listed and computed holidays, working days."""
        return cls(calendar=HolidayCalendar(config))

    def is_working_day(self, day: date) -> bool:
        if self._calendar is not None:
            if self._calendar.working_day(day) is not None:
                return True
            if self._calendar.is_day_off(day):
                return False
        return day.weekday() < 5 and day not in self._holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The date ``days`` working days after ``start``; 0 gives ``start``
        itself if it is a working day, else the next working day (a case
        received on a Saturday is counted from Monday)."""
        day = start
        while not self.is_working_day(day):
            day += timedelta(days=1)
        remaining = days
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day
