"""Excel (.xlsx) export written with the standard library only.

:func:`workbook` turns a header and rows into a one-sheet Office Open XML
workbook (a zip of a few XML parts). Cell types:

- ``str`` → an inline string. An inline string is never evaluated as a
  formula (formulas live only in ``<f>`` elements, which this module never
  writes), so citizen-written text starting with ``=``, ``+``, ``-`` or ``@``
  stays text exactly as typed; unlike the CSV export nothing needs prefixing.
- ``int``/``float``/``Decimal`` → a number (non-finite values, and integers
  beyond 2**53 that a spreadsheet would round, are written as text).
- ``bool`` → TRUE/FALSE.
- naive ``date``/``datetime`` → a real date with a ``yyyy-mm-dd``
  (``yyyy-mm-dd hh:mm:ss``) format. A spreadsheet has no time zones, so an
  aware ``datetime`` is written as ISO text with its offset instead of silently
  losing it; convert to local time first to get a real date.
- ``None`` → an empty cell.

Characters that XML 1.0 cannot carry (control characters, lone surrogates)
are dropped, and text is cut at Excel's 32,767 characters per cell.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_CELL_TEXT = 32767

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

# Style indexes into cellXfs of _STYLES.
_BOLD, _DATE, _DATETIME = 1, 2, 3
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXACT_INT = 2**53

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Excel decodes "_xHHHH_" in cell text as a character; a literal one must
# have its underscore escaped as _x005F_ (ECMA-376 ST_Xstring).
_LOOKS_ESCAPED = re.compile("_(x[0-9A-Fa-f]{4}_)")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

Cell = str | int | float | Decimal | bool | date | datetime | None


def clean_text(value: str) -> str:
    """Text as a cell can hold it: XML 1.0 characters only, newlines as
    ``\\n``, at most :data:`MAX_CELL_TEXT` characters."""
    value = _NOT_XML.sub("", value.replace("\r\n", "\n"))
    return value[:MAX_CELL_TEXT]


def column_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text_cell(ref: str, value: str, style: int = 0) -> str:
    text = _LOOKS_ESCAPED.sub(r"_x005F_\1", clean_text(value))
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def _serial(value: date | datetime) -> float:
    if isinstance(value, datetime):
        delta = value - _EXCEL_EPOCH
        return delta.days + delta.seconds / 86400 + delta.microseconds / 86_400_000_000
    return float((value - _EXCEL_EPOCH.date()).days)


def _cell(ref: str, value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int):
        if abs(value) <= _EXACT_INT:
            return f'<c r="{ref}"><v>{value}</v></c>'
        return _text_cell(ref, str(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return f'<c r="{ref}"><v>{value!r}</v></c>'
        return _text_cell(ref, str(value))
    if isinstance(value, Decimal):
        if value.is_finite():
            return f'<c r="{ref}"><v>{value}</v></c>'
        return _text_cell(ref, str(value))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return _text_cell(ref, value.isoformat())
        return f'<c r="{ref}" s="{_DATETIME}"><v>{_serial(value)!r}</v></c>'
    if isinstance(value, date):
        return f'<c r="{ref}" s="{_DATE}"><v>{int(_serial(value))}</v></c>'
    return _text_cell(ref, str(value))


def _width(value: Cell) -> int:
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    return len(str(value)) if value is not None else 0


def _sheet_xml(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    widths = [len(h) for h in header]
    lines: list[str] = []
    if header:
        cells = "".join(_text_cell(f"{column_letters(i)}1", h, _BOLD) for i, h in enumerate(header))
        lines.append(f'<row r="1">{cells}</row>')
    number = 1 if header else 0
    columns = len(header)
    for row in rows:
        number += 1
        cells = "".join(_cell(f"{column_letters(i)}{number}", v) for i, v in enumerate(row))
        lines.append(f'<row r="{number}">{cells}</row>')
        columns = max(columns, len(row))
        widths += [0] * (len(row) - len(widths))
        for i, v in enumerate(row):
            widths[i] = max(widths[i], min(_width(v), 60))
    parts = [_XML_HEAD, f'<worksheet xmlns="{_MAIN}">']
    if columns and number:
        parts.append(f'<dimension ref="A1:{column_letters(columns - 1)}{number}"/>')
    if header:
        parts.append(
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2"'
            ' activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
        )
    if widths:
        parts.append("<cols>")
        parts += [
            f'<col min="{i + 1}" max="{i + 1}" width="{max(w, 6) + 2}" customWidth="1"/>'
            for i, w in enumerate(widths)
        ]
        parts.append("</cols>")
    parts += ["<sheetData>", *lines, "</sheetData></worksheet>"]
    return "".join(parts)


def _sheet_name(name: str) -> str:
    name = _SHEET_NAME_BAD.sub("_", clean_text(name)).strip("'")[:31]
    return name or "Sheet1"


_CONTENT_TYPES = (
    _XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML_HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    _XML_HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    _XML_HEAD + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    "</cellStyleXfs>"
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def workbook(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], *, sheet: str = "Sheet1"
) -> bytes:
    """A one-sheet .xlsx: a bold, frozen header row, then ``rows``."""
    workbook_xml = (
        _XML_HEAD + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        f'<sheet name={quoteattr(_sheet_name(sheet))} sheetId="1" r:id="rId1"/>'
        "</sheets></workbook>"
    )
    parts = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _ROOT_RELS,
        "xl/workbook.xml": workbook_xml,
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS,
        "xl/styles.xml": _STYLES,
        "xl/worksheets/sheet1.xml": _sheet_xml(header, rows),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            # A fixed timestamp: the same rows give the same bytes.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return out.getvalue()
