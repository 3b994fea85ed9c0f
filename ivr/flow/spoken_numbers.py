"""Numbers, dates and case codes as the prompt names that say them.

Pure: the call flow composes what the caller hears from these names (the
words themselves are recorded or synthesized by :mod:`ivr.prompts`), so the
Vietnamese reading rules live with the flow, testable without any audio.
"""

from __future__ import annotations

from datetime import date


def digit_prompts(code: str) -> list[str]:
    """Prompt names reading ``code`` digit by digit (non-digits are skipped)."""
    return [f"digit_{char}" for char in code if char in "0123456789"]


def number_prompts(number: int, language: str = "vi") -> list[str]:
    """Prompt names saying ``number`` (0..999): Vietnamese reading rules for ``vi``
    (mười lăm, hai mươi mốt, một trăm linh năm), digit by digit otherwise."""
    if not 0 <= number <= 999:
        raise ValueError(f"can only say numbers 0..999, not {number}")
    if language != "vi":
        return digit_prompts(str(number))
    hundreds, rest = divmod(number, 100)
    if hundreds == 0:
        return _vi_below_hundred(rest)
    said = [f"digit_{hundreds}", "number_hundred"]
    if rest == 0:
        return said
    if rest < 10:
        return [*said, "number_linh", f"digit_{rest}"]
    return said + _vi_below_hundred(rest)


def _vi_below_hundred(number: int) -> list[str]:
    tens, ones = divmod(number, 10)
    if tens == 0:
        return [f"digit_{ones}"]
    said = ["number_ten"] if tens == 1 else [f"digit_{tens}", "number_tens"]
    if ones == 0:
        return said
    if ones == 5:
        return [*said, "number_lam"]
    if ones == 1 and tens > 1:
        return [*said, "number_mot"]
    if ones == 4 and tens > 1:
        return [*said, "number_tu"]
    return [*said, f"digit_{ones}"]


def day_month_prompts(day: date, language: str = "vi") -> list[str]:
    """Prompt names for a day and month, to follow an intro ending in "ngày":
    15 July -> "mười lăm tháng bảy"; April is "tháng tư"."""
    if language != "vi":
        return [*number_prompts(day.day, language), "date_month", *digit_prompts(str(day.month))]
    month = ["number_tu"] if day.month == 4 else number_prompts(day.month)
    return [*number_prompts(day.day), "date_month", *month]
