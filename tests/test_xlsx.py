"""The .xlsx export on XlsxWriter: what a naive port would lose (XlsxWriter refuses
NaN, infinity and bad sheet names; it stamps the file with the current time), read
back with openpyxl. The main round trip is in tests/test_web.py."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
import xlsxwriter.core

from ivr.web.xlsx import Cell, workbook


def _rows(body: bytes) -> list[tuple[Any, ...]]:
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    return list(sheet.iter_rows(values_only=True))


def test_numbers_a_spreadsheet_cannot_hold_exactly_are_written_as_text() -> None:
    body = workbook(
        ["n"],
        [[float("nan")], [float("inf")], [Decimal("-Infinity")], [2**60], [2**53]],
    )
    assert _rows(body)[1:] == [
        ("nan",),
        ("inf",),
        ("-Infinity",),
        (str(2**60),),
        (2**53,),
    ]


def test_sheet_names_excel_refuses_are_mended_not_fatal() -> None:
    names = {
        "cases/2024:Q1?": "cases_2024_Q1_",
        "'quoted'": "quoted",
        "x" * 40: "x" * 31,
        "": "Sheet1",
        "'": "Sheet1",
        "a" * 30 + "😀": "a" * 30,  # the emoji is two UTF-16 units: one too many
    }
    for asked, expected in names.items():
        book = openpyxl.load_workbook(io.BytesIO(workbook(["a"], [], sheet=asked)))
        assert book.sheetnames == [expected], asked


def test_the_same_rows_give_the_same_bytes_whatever_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows: list[list[Cell]] = [["HN-001", 3, datetime(2024, 5, 17, 8, 30)]]
    first = workbook(["code", "calls", "at"], rows)

    class Clock(type):
        def __instancecheck__(cls, value: object) -> bool:
            return isinstance(value, datetime)

    class Later(metaclass=Clock):
        """datetime as xlsxwriter.core uses it (isinstance and now), ten years on."""

        @staticmethod
        def now(tz: Any = None) -> datetime:
            return datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)

    # XlsxWriter stamps docProps/core.xml with datetime.now() unless told a date.
    monkeypatch.setattr(xlsxwriter.core, "datetime", Later)
    assert workbook(["code", "calls", "at"], rows) == first
