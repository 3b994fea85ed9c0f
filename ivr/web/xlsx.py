"""Excel (.xlsx) export, written with XlsxWriter.

:func:`workbook` turns a header and rows into a one-sheet workbook. Cell types:

- ``str`` → a text cell, always through ``write_string``. XlsxWriter's generic
  ``write`` would turn text starting with ``=`` into a formula; ``write_string``
  never does, and the workbook is also opened with ``strings_to_formulas`` off,
  so citizen-written text starting with ``=``, ``+``, ``-`` or ``@`` stays text
  exactly as typed; unlike the CSV export nothing needs prefixing.
- ``int``/``float``/``Decimal`` → a number (non-finite values, and integers
  beyond 2**53 that a spreadsheet would round, are written as text).
- ``bool`` → TRUE/FALSE.
- naive ``date``/``datetime`` → a real date with a ``yyyy-mm-dd``
  (``yyyy-mm-dd hh:mm:ss``) format. A spreadsheet has no time zones, so an
  aware ``datetime`` is written as ISO text with its offset instead of silently
  losing it; convert to local time first to get a real date.
- ``None`` → an empty cell.

Facts about XlsxWriter this relies on (checked against 3.3):

- Text goes to the shared-string table; a literal ``_xHHHH_`` in it is escaped
  as ``_x005F_xHHHH_`` (ECMA-376 ST_Xstring), so Excel shows it as typed.
- It would write control characters as ``_xHHHH_`` escapes; we drop them (and
  anything else XML 1.0 cannot carry) before writing, as the export always did.
- ``{"in_memory": True}`` builds the zip in memory, no temporary files.
- The zip members carry a fixed 1980 timestamp; with a fixed ``created``
  property the same rows give the same bytes.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_CELL_TEXT = 32767
MAX_SHEET_NAME = 31  # Excel counts UTF-16 code units

_EXACT_INT = 2**53
# The document's "created" property: fixed so an export is reproducible.
_CREATED = datetime(2000, 1, 1)

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

Cell = str | int | float | Decimal | bool | date | datetime | None


def clean_text(value: str) -> str:
    """Text as a cell can hold it: XML 1.0 characters only, newlines as
    ``\\n``, at most :data:`MAX_CELL_TEXT` characters."""
    value = _NOT_XML.sub("", value.replace("\r\n", "\n"))
    return value[:MAX_CELL_TEXT]


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _sheet_name(name: str) -> str:
    """A name Excel (and XlsxWriter's check) accepts: no ``[]:*?/\\``, no
    leading or trailing apostrophe, at most 31 UTF-16 units."""
    name = _SHEET_NAME_BAD.sub("_", clean_text(name)).strip("'")
    while _utf16_length(name) > MAX_SHEET_NAME:
        name = name[:-1]
    name = name.rstrip("'")
    return name or "Sheet1"


class _Formats:
    """The cell formats of one workbook (XlsxWriter formats belong to one)."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.bold: Format = book.add_format({"bold": True})
        self.date: Format = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime: Format = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})


def _write_cell(sheet: Worksheet, row: int, col: int, value: Cell, formats: _Formats) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, int):
        if abs(value) <= _EXACT_INT:
            sheet.write_number(row, col, value)
        else:
            sheet.write_string(row, col, str(value))
    elif isinstance(value, float):
        if math.isfinite(value):
            sheet.write_number(row, col, value)
        else:
            sheet.write_string(row, col, str(value))
    elif isinstance(value, Decimal):
        if value.is_finite():
            sheet.write_number(row, col, float(value))
        else:
            sheet.write_string(row, col, str(value))
    elif isinstance(value, datetime):
        if value.tzinfo is not None:
            sheet.write_string(row, col, value.isoformat())
        else:
            sheet.write_datetime(row, col, value, formats.datetime)
    elif isinstance(value, date):
        sheet.write_datetime(row, col, value, formats.date)
    else:
        sheet.write_string(row, col, clean_text(str(value)))


def _width(value: Cell) -> int:
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    return len(str(value)) if value is not None else 0


def workbook(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], *, sheet: str = "Sheet1"
) -> bytes:
    """A one-sheet .xlsx: a bold, frozen header row, then ``rows``."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            # Defence in depth: every text cell goes through write_string anyway.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    book.set_properties({"created": _CREATED})
    formats = _Formats(book)
    worksheet = book.add_worksheet(_sheet_name(sheet))
    widths = [len(h) for h in header]
    for col, title in enumerate(header):
        worksheet.write_string(0, col, clean_text(title), formats.bold)
    if header:
        worksheet.freeze_panes(1, 0)
    first = 1 if header else 0
    for number, row in enumerate(rows, start=first):
        widths += [0] * (len(row) - len(widths))
        for col, value in enumerate(row):
            _write_cell(worksheet, number, col, value, formats)
            widths[col] = max(widths[col], min(_width(value), 60))
    for col, width in enumerate(widths):
        worksheet.set_column(col, col, max(width, 6) + 2)
    book.close()
    return out.getvalue()
