"""Holidays computed from the calendar (``holidays_from: vietnam``) plus the
days the government announces each year (issue 16): the year's list, opening
hours and working days follow both, and mistakes name file, line and field."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import yaml

from ivr.cases.calendar import WorkingCalendar
from ivr.config import load_config
from ivr.config.holiday_calendar import HolidayCalendar
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.schedule import OpeningHours
from tests.config_checks import config_problems, line_of
from tests.flow_driver import ScriptedCaller

REPO = Path(__file__).resolve().parent.parent
PUBLIC_ADMIN = REPO / "examples" / "ha-noi-public-admin.yaml"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)


def _write(tmp_path: Path, edit: dict[str, object]) -> Path:
    data = yaml.safe_load(PUBLIC_ADMIN.read_text(encoding="utf-8"))
    data.update(edit)
    data["database"] = {"url": "sqlite://"}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_2027_list_holds_tet_on_the_dates_the_package_computes() -> None:
    calendar = HolidayCalendar(load_config(PUBLIC_ADMIN))
    year = {d.day: d for d in calendar.year(2027)}
    package = holidays.Vietnam(years=2027, language="vi")
    tet = {day for day, name in package.items() if "Tết" in name and "Dương" not in name}
    assert tet and tet <= set(year)
    assert all(year[day].origin == "computed" for day in tet)
    # An independent fact: the first day of Tết Đinh Mùi is Saturday 6 February 2027.
    assert year[date(2027, 2, 6)].name == "Tết Nguyên Đán"
    # Hùng Kings (10th of the 3rd lunar month) is computed too: 16 April 2027.
    assert "Hùng Vương" in year[date(2027, 4, 16)].name
    # Every day the package computes is in the list, nothing else was invented.
    assert set(year) == set(package)


def test_public_admin_line_is_closed_on_a_tet_monday_of_2027() -> None:
    config = load_config(PUBLIC_ADMIN)
    hours = OpeningHours(config)
    line = config.hotlines[0]
    assert not hours.is_open(line.schedule, _at(2027, 2, 8, 10, 0))  # Mùng ba Tết, a Monday
    assert hours.is_open(line.schedule, _at(2027, 2, 11, 10, 0))  # Thursday after Tết
    assert hours.is_open(line.schedule, _at(2027, 3, 8, 10, 0))  # an ordinary Monday
    # The call itself: on that Monday the caller hears the out-of-hours path.
    flow = HotlineFlow(config)
    caller = ScriptedCaller([])
    caller.run(flow.run(line, _at(2027, 2, 8, 10, 0)))
    assert caller.prompts_heard[0] == "out_of_hours"
    assert "greeting" not in caller.prompts_heard


def test_without_holidays_from_only_the_listed_days_are_off(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, {"holidays_from": None}))
    assert OpeningHours(config).is_open("hcc-office", _at(2027, 2, 8, 10, 0))
    assert [d.day for d in HolidayCalendar(config).year(2027)] == []


def test_announced_bridge_day_and_working_saturday(tmp_path: Path) -> None:
    """A bridge day is added as a day off; the Saturday that makes up for it is a
    working day with Monday's hours (or the weekday named)."""
    path = _write(
        tmp_path,
        {
            "holidays": [{"date": "2027-04-29", "name": "Nghỉ bù (hoán đổi)"}],
            "working_days": [
                {"date": "2027-04-24", "name": "Làm bù cho ngày 29/4"},
                {"date": "2027-05-03", "name": "Đi làm", "hours_of": "fri"},
            ],
        },
    )
    config = load_config(path)
    hours = OpeningHours(config)
    assert not hours.is_open("hcc-office", _at(2027, 4, 29, 10, 0))  # bridge Thursday
    assert hours.is_open("hcc-office", _at(2027, 4, 24, 10, 0))  # working Saturday
    assert not hours.is_open("hcc-office", _at(2027, 4, 24, 12, 30))  # its lunch break
    # 3 May 2027 is computed (Labour Day observed); the working day takes it back.
    assert hours.is_open("hcc-office", _at(2027, 5, 3, 10, 0))
    calendar = HolidayCalendar(config)
    assert date(2027, 5, 3) not in {d.day for d in calendar.year(2027)}
    assert [d.day for d in calendar.taken_back(2027)] == [date(2027, 5, 3)]
    announced = [d for d in calendar.year(2027) if d.origin == "announced"]
    assert [d.day for d in announced] == [date(2027, 4, 29)]
    # Deadlines count the same days: Friday 23 April + 1 working day is the Saturday.
    working = WorkingCalendar.of(config)
    assert working.add_working_days(date(2027, 4, 23), 1) == date(2027, 4, 24)
    assert working.add_working_days(date(2027, 4, 28), 1) == date(2027, 5, 3)
    assert working.add_working_days(date(2027, 2, 3), 1) == date(2027, 2, 11)  # over Tết


def test_deadlines_skip_computed_tet(tmp_path: Path) -> None:
    working = WorkingCalendar.of(load_config(PUBLIC_ADMIN))
    assert not working.is_working_day(date(2027, 2, 8))
    assert working.add_working_days(date(2027, 2, 3), 2) == date(2027, 2, 12)


def test_unknown_holiday_source_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"holidays_from": "vietnma"})
    text = config_problems(path)
    assert f"hotline.yaml:{line_of(path, 'holidays_from:')}" in text
    assert "holidays_from" in text and "vietnam" in text


def test_a_day_both_off_and_working_names_the_working_days_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "holidays": [{"date": "2027-04-29", "name": "Nghỉ bù"}],
            "working_days": [{"date": "2027-04-29", "name": "Làm bù"}],
        },
    )
    text = config_problems(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    section = next(i for i, text in enumerate(lines) if text.startswith("working_days:"))
    line = next(i for i in range(section, len(lines)) if "2027-04-29" in lines[i]) + 1
    assert f"hotline.yaml:{line}" in text
    assert "working_days[0].date" in text or "working_days.0.date" in text
    assert "also a day off" in text
