"""Personal data out of a text meant for the public page (issue 13).

The public text of a case is written by a supervisor; this pre-fills it from
the summary and the answer with what identifies a person replaced by a
placeholder, so the supervisor starts from a text that is already clean:

- phone numbers in the shapes Vietnamese write them: mobiles ``0[35789]x``
  and landlines ``02x``/``02xx`` (ten and eleven digits), with or without
  ``+84``/``84``/``0084``/``(+84)``, grouped by spaces, dots or dashes;
- e-mail addresses;
- identity-card numbers: the old nine-digit CMND and the twelve-digit CCCD,
  written as one run of digits (a grouped ``150.000.000`` is an amount);
- the caller's name as recorded on the case, matched without regard to case
  or diacritics (agents type "Nguyen Van An" for "Nguyễn Văn An").

What it must leave alone: the case code (eight digits), dates
(``15/07/2025``, ``15.07.2025``), amounts (``1.500.000 đồng``), house
numbers and the hotline's short numbers (``1022``, ``113``). It is a helper,
not a guarantee: the supervisor reads and edits the text before publishing.
"""

from __future__ import annotations

import logging
import re
import unicodedata

logger = logging.getLogger(__name__)

PHONE = "[số điện thoại]"
EMAIL = "[email]"
ID_NUMBER = "[số giấy tờ]"
NAME = "[họ tên]"

_SEP = r"[ .\-]?"
# A digit run is never cut out of a longer one: no digit just before or after.
_PHONE = re.compile(
    r"(?<!\d)(?:"
    # +84 912 345 678, 84.912.345.678, 0084 912345678, (+84) 912 345 678, +84 24 3765 5555
    rf"(?:\(\+?84\)|\+84|0084|84){_SEP}(?:\(0\){_SEP})?(?:[35789](?:{_SEP}\d){{8}}"
    rf"|2(?:{_SEP}\d){{9}})"
    # 0912 345 678, 091.234.5678, 024 3765 5555, 0274-123-4567
    rf"|0[35789](?:{_SEP}\d){{8}}|02(?:{_SEP}\d){{9}}"
    r")(?!\d)"
)
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_ID_NUMBER = re.compile(r"(?<!\d)(?:\d{12}|\d{9})(?!\d)")


def _fold(text: str) -> str:
    """Lower case without diacritics, one character for one (so positions in
    the folded text are positions in the original): ``Nguyễn`` → ``nguyen``."""
    out = []
    for char in text:
        if char in "đĐ":
            out.append("d")
            continue
        base = unicodedata.normalize("NFD", char)[0]
        out.append(base.lower() if len(base.lower()) == 1 else char)
    return "".join(out)


def _name_pattern(name: str) -> re.Pattern[str] | None:
    words = _fold(unicodedata.normalize("NFC", name)).split()
    # A single word ("An", "Hà") is also a common word: only a full name is
    # matched, and the supervisor removes what is left.
    if len(words) < 2:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def redact(text: str, *, names: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with phone numbers, e-mails, ID-card numbers and the given
    names replaced by placeholders (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text)
    text = _EMAIL.sub(EMAIL, text)  # first: an address may hold digits
    text = _PHONE.sub(PHONE, text)
    text = _ID_NUMBER.sub(ID_NUMBER, text)
    for name in names:
        pattern = _name_pattern(name or "")
        if pattern is None:
            continue
        folded = _fold(text)
        spans = [m.span() for m in pattern.finditer(folded)]
        for start, end in reversed(spans):
            text = text[:start] + NAME + text[end:]
    return text
