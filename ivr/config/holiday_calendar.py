"""The year's days off and working weekend days, computed and announced.

Vietnam's public holidays follow the lunar calendar (Tết, Hùng Kings), so they
are computed by the ``holidays`` package rather than typed in each year: with
``holidays_from: vietnam`` in the config, every year's list comes from
``holidays.Vietnam``. What the government announces on top of that each year
is written in the config as overrides: ``holidays`` adds days off (a bridge day
before Tết), ``working_days`` makes a weekend day a working day (the Saturday
that makes up for the bridge day) or takes back a computed day the clerk finds
wrong against the announcement. A working day wins over a day off.

Facts this relies on (``holidays`` 0.10x): ``holidays.Vietnam(years=…,
language="vi"|"en_US")`` is a date → name mapping; it includes Tết's days and
the observed ("nghỉ bù") days the labour code gives when a holiday falls on a
weekend. Its answers are pure (no network, no clock), so they are cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ivr.config.schema import HotlineConfig, Weekday

logger = logging.getLogger(__name__)

Origin = Literal["computed", "announced"]
# The console's languages → the package's names of them.
_PACKAGE_LANGUAGE = {"vi": "vi", "en": "en_US"}


@dataclass(frozen=True)
class DayOff:
    """One day off of the year, and where it comes from."""

    day: date
    name: str
    origin: Origin


@dataclass(frozen=True)
class WorkingDayInfo:
    """A working day the government announced on a weekend or computed holiday."""

    day: date
    name: str
    hours_of: Weekday  # whose opening hours apply that day


@lru_cache(maxsize=64)
def computed_holidays(
    country: str, year: int, language: str = "vi"
) -> tuple[tuple[date, str], ...]:
    """The package's public holidays of ``year`` (sorted), names in ``language``."""
    import holidays

    if country != "vietnam":  # the schema allows only this one; a guard for callers
        raise ValueError(f"no holiday calendar for {country!r}")
    found = holidays.Vietnam(years=year, language=_PACKAGE_LANGUAGE.get(language, "vi"))
    return tuple(sorted((day, str(name)) for day, name in found.items()))


class HolidayCalendar:
    """Days off and working days of one config, any year (computed lazily)."""

    def __init__(self, config: HotlineConfig) -> None:
        self._country = config.holidays_from
        self._announced = {h.date: h.name for h in config.holidays}
        self._working = {
            w.date: WorkingDayInfo(w.date, w.name, w.hours_of) for w in config.working_days
        }
        self._computed_years: dict[int, frozenset[date]] = {}

    def _computed(self, year: int) -> frozenset[date]:
        known = self._computed_years.get(year)
        if known is None:
            known = frozenset(
                day for day, _ in (computed_holidays(self._country, year) if self._country else ())
            )
            self._computed_years[year] = known
        return known

    def is_day_off(self, day: date) -> bool:
        """A public holiday or an announced day off, not made a working day."""
        if day in self._working:
            return False
        return day in self._announced or day in self._computed(day.year)

    def working_day(self, day: date) -> WorkingDayInfo | None:
        """The announced working day on ``day``, if any."""
        return self._working.get(day)

    def year(self, year: int, language: str = "vi") -> list[DayOff]:
        """The days off of ``year`` in date order, as the clerk checks them
        against the announcement: computed ones, then the config's additions
        (an announced name replaces a computed one on the same date); a day
        made a working day is left out (see :meth:`working_days`)."""
        days: dict[date, DayOff] = {}
        if self._country:
            for day, name in computed_holidays(self._country, year, language):
                days[day] = DayOff(day, name, "computed")
        for day, name in self._announced.items():
            if day.year == year:
                days[day] = DayOff(day, name, "announced")
        return [days[d] for d in sorted(days) if d not in self._working]

    def working_days(self, year: int) -> list[WorkingDayInfo]:
        """The announced working days of ``year`` in date order."""
        return [self._working[d] for d in sorted(self._working) if d.year == year]

    def taken_back(self, year: int, language: str = "vi") -> list[DayOff]:
        """Days the package computes as holidays that a working day takes back."""
        if not self._country:
            return []
        return [
            DayOff(day, name, "computed")
            for day, name in computed_holidays(self._country, year, language)
            if day in self._working
        ]
