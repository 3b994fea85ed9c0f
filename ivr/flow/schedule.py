"""Opening hours: is a hotline or queue open at a given moment?"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.config.holiday_calendar import HolidayCalendar
from ivr.config.schema import WEEKDAYS, HotlineConfig, Schedule


class OpeningHours:
    """Evaluates the config's named schedules in the hotline's time zone."""

    def __init__(self, config: HotlineConfig) -> None:
        self._zone = ZoneInfo(config.timezone)
        self._schedules = dict(config.schedules)
        # Listed days off plus, with holidays_from, the computed public holidays.
        self._calendar = HolidayCalendar(config)

    def is_holiday(self, day: date) -> bool:
        return self._calendar.is_day_off(day)

    def is_open(self, schedule_id: str | None, moment: datetime) -> bool:
        """``moment`` must be aware; ``None`` and ``always`` mean 24/7."""
        if schedule_id is None or schedule_id == "always":
            return True
        schedule = self._schedules[schedule_id]
        if schedule.always:
            return True
        local = moment.astimezone(self._zone)
        if self._open_on(schedule, local.date(), local, same_day=True):
            return True
        # A span such as 22:00-06:00 that began yesterday is still running.
        yesterday = local.date() - timedelta(days=1)
        return self._open_on(schedule, yesterday, local, same_day=False)

    def _open_on(self, schedule: Schedule, day: date, local: datetime, same_day: bool) -> bool:
        weekday = day.weekday()
        if schedule.closed_on_holidays:
            if self.is_holiday(day):
                return False
            # A Saturday the government makes a working day keeps office hours.
            working = self._calendar.working_day(day)
            if working is not None:
                weekday = WEEKDAYS.index(working.hours_of)
        for span in schedule.weekly.spans_on(weekday):
            overnight = span.end <= span.start
            now = local.time()
            if same_day and (now >= span.start and (overnight or now < span.end)):
                return True
            if not same_day and overnight and now < span.end:
                return True
        return False
