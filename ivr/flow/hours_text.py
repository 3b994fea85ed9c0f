"""Opening hours said in words, from a schedule of the config.

The after-hours prompt tells the caller when to call again; it is built from the
hotline's own schedule (``{opening_hours}`` in the catalog), so it can never say
"Monday to Friday, 8 to 17 h" for a hotline that also opens on Saturday mornings.

Pure: text in, text out; the prompt builder synthesizes the result.
"""

from __future__ import annotations

import logging
from datetime import time

from ivr.config.schema import WEEKDAYS, Hotline, HotlineConfig, Schedule, Span

logger = logging.getLogger(__name__)

_DAY_NAMES: dict[str, tuple[str, ...]] = {
    "vi": ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "always": "24 giờ mỗi ngày, kể cả ngày lễ, Tết",
        "never": "chỉ qua lời nhắn",
        "closed_holidays": "nghỉ các ngày lễ, Tết",
        "open_holidays": "kể cả ngày lễ, Tết",
        "all_day": "cả ngày",
        "and": "và",
        "range": "từ {first} đến {last}",
        "span": "từ {start} đến {end}",
        "overnight": "từ {start} đến {end} hôm sau",
    },
    "en": {
        "always": "24 hours a day, every day, including public holidays",
        "never": "by message only",
        "closed_holidays": "closed on public holidays",
        "open_holidays": "public holidays included",
        "all_day": "all day",
        "and": "and",
        "range": "{first} to {last}",
        "span": "{start} to {end}",
        "overnight": "{start} to {end} the next morning",
    },
}
# With several spans a day, each is named by the part of the day it starts in
# ("sáng từ 8 giờ đến 12 giờ, chiều từ 13 giờ 30 đến 17 giờ").
_PARTS_OF_DAY: tuple[tuple[time, str], ...] = ((time(12), "sáng"), (time(18), "chiều"))
_LAST_PART_OF_DAY = "tối"


def opening_hours_text(schedule: Schedule | None, language: str) -> str:
    """The schedule in words, ``language`` "vi" or "en"; ``None`` is 24/7.

    Days with the same hours are said together ("từ thứ Hai đến thứ Sáu"), days
    without hours are left out, and the holiday rule closes the sentence.
    """
    words = _WORDS[language]
    if schedule is None or schedule.always:
        return words["always"]
    groups: list[tuple[tuple[Span, ...], list[int]]] = []
    for weekday, day in enumerate(WEEKDAYS):
        spans = tuple(getattr(schedule.weekly, day))
        if not spans:
            continue
        for group_spans, days in groups:
            if group_spans == spans:
                days.append(weekday)
                break
        else:
            groups.append((spans, [weekday]))
    if not groups:
        return words["never"]
    whole_week = len(groups) == 1 and len(groups[0][1]) == 7 and _is_whole_day(groups[0][0])
    if whole_week and not schedule.closed_on_holidays:
        return words["always"]
    phrases = [_group_text(days, spans, language) for spans, days in groups]
    phrases.append(words["closed_holidays" if schedule.closed_on_holidays else "open_holidays"])
    return "; ".join(phrases)


def spoken_schedule(config: HotlineConfig, hotline: Hotline) -> Schedule | None:
    """The schedule a hotline's after-hours prompt speaks of (None: 24/7).

    Its own schedule; when that is round the clock, the after-hours prompt is
    only heard when a queue is closed, so the hours said are those of its queues
    (the first one with hours, in file order).
    """
    own = _schedule(config, hotline.schedule)
    if own is not None:
        return own
    for queue in config.queues_of(hotline.id):
        found = _schedule(config, queue.schedule)
        if found is not None:
            return found
    return None


def _schedule(config: HotlineConfig, schedule_id: str | None) -> Schedule | None:
    """The named schedule, or None when it is 24/7 (or absent: check-config says so)."""
    if schedule_id is None or schedule_id == "always":
        return None
    schedule = config.schedules.get(schedule_id)
    return None if schedule is None or schedule.always else schedule


def _group_text(days: list[int], spans: tuple[Span, ...], language: str) -> str:
    said_days = _days_text(days, language)
    said_spans = _spans_text(spans, language)
    # "thứ Bảy từ 8 giờ đến 11 giờ 30", but "từ thứ Hai đến thứ Sáu, sáng từ …, chiều từ …"
    separator = ", " if language == "en" or ", " in said_spans else " "
    return f"{said_days}{separator}{said_spans}"


def _days_text(days: list[int], language: str) -> str:
    """Runs of consecutive days as ranges: [0,1,2,3,4] → "từ thứ Hai đến thứ Sáu"."""
    names, words = _DAY_NAMES[language], _WORDS[language]
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    said: list[str] = []
    for run in runs:
        if len(run) >= 3:
            said.append(words["range"].format(first=names[run[0]], last=names[run[-1]]))
        else:
            said.extend(names[day] for day in run)
    return _join(said, words["and"])


def _spans_text(spans: tuple[Span, ...], language: str) -> str:
    words = _WORDS[language]
    if _is_whole_day(spans):
        return words["all_day"]
    parts = [_part_of_day(span.start) for span in spans]
    # English needs no labels: "a.m." and "p.m." already say the part of the day.
    labelled = language == "vi" and len(spans) > 1 and len(set(parts)) == len(parts)
    said: list[str] = []
    for span, part in zip(spans, parts, strict=True):
        overnight = span.end <= span.start and span.end != time(0)
        template = words["overnight" if overnight else "span"]
        text = template.format(
            start=_clock(span.start, language, end=False),
            end=_clock(span.end, language, end=True),
        )
        if labelled:
            text = f"{part} {text}"
        said.append(text)
    return ", ".join(said) if language == "vi" else _join(said, words["and"])


def _is_whole_day(spans: tuple[Span, ...]) -> bool:
    return len(spans) == 1 and spans[0].start == spans[0].end == time(0)


def _part_of_day(moment: time) -> str:
    for limit, name in _PARTS_OF_DAY:
        if moment < limit:
            return name
    return _LAST_PART_OF_DAY


def _clock(moment: time, language: str, end: bool) -> str:
    """ "13 giờ 30" / "1:30 p.m."; midnight as an end is the day's 24th hour."""
    hour, minute = moment.hour, moment.minute
    if language == "vi":
        if end and hour == 0 and minute == 0:
            return "24 giờ"
        return f"{hour} giờ" if minute == 0 else f"{hour} giờ {minute}"
    if hour == 0 and minute == 0:
        return "midnight"
    if hour == 12 and minute == 0:
        return "noon"
    suffix = "a.m." if hour < 12 else "p.m."
    shown = hour % 12 or 12
    return f"{shown} {suffix}" if minute == 0 else f"{shown}:{minute:02d} {suffix}"


def _join(items: list[str], conjunction: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
