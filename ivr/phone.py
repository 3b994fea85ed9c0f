"""Vietnamese phone numbers: normalise what callers' networks send to E.164."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

# Short codes that phonenumbers does not treat as subscriber numbers.
SHORT_CODES = {
    "111": "Tổng đài quốc gia bảo vệ trẻ em",
    "112": "Tìm kiếm cứu nạn",
    "113": "Công an",
    "114": "Cứu hỏa, cứu nạn, cứu hộ",
    "115": "Cấp cứu y tế",
    "1022": "Cổng thông tin 1022",
}
_WITHHELD = {"", "anonymous", "unknown", "private", "restricted", "unavailable", "asterisk"}
_SEPARATORS = re.compile(r"[\s.\-()]")


@dataclass(frozen=True, slots=True)
class CallerNumber:
    """``e164`` is None when the number is withheld or not a usable number."""

    raw: str
    e164: str | None
    withheld: bool

    @property
    def national(self) -> str | None:
        """0xxxxxxxxx form for reading back and display; short codes as they are."""
        if self.e164 is None:
            return None
        if self.e164.startswith("+84"):
            return "0" + self.e164[3:]
        return self.e164


def normalise_caller(raw: str | None) -> CallerNumber:
    """Accept 0xxxxxxxxx, 84xxxxxxxxx, +84xxxxxxxxx (with spaces, dots, dashes).

    Short codes are kept as they are; anything unparsable keeps ``raw`` only.
    """
    text = (raw or "").strip()
    if text.lower() in _WITHHELD:
        return CallerNumber(text, None, True)
    digits = _SEPARATORS.sub("", text)
    if digits in SHORT_CODES or re.fullmatch(r"1[89]00\d{4,6}", digits):
        return CallerNumber(text, digits, False)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("84") and len(digits) >= 11:
        digits = "+" + digits
    try:
        parsed = phonenumbers.parse(digits, "VN")
    except phonenumbers.NumberParseException:
        return CallerNumber(text, None, False)
    if not phonenumbers.is_possible_number(parsed):
        return CallerNumber(text, None, False)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return CallerNumber(text, e164, False)
