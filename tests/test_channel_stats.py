"""Statistics by channel (issue 14): the cases received in the period per
channel (phone, voicemail, SMS, email, Zalo, web form, Open311) in the
statistics page, its JSON and its CSV and XLSX exports, for the user's hotline
only (a hotline's supervisor) or every hotline (the administrator). The
seeded cases are those of tests/test_written_work.py: A has one by phone, SMS,
email, web form and Zalo (closed: still received in the period), B one by SMS."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from tests.test_written_work import Written, config, sessions, written  # noqa: F401

A_COUNTS = {"phone": 1, "voicemail": 0, "sms": 1, "email": 1, "zalo": 1, "web": 1, "open311": 0}


@pytest.mark.db
async def test_statistics_count_cases_per_channel_in_page_json_and_exports(
    written: Written,  # noqa: F811 (the fixture imported above)
) -> None:
    gs_a, _ = await written.user("gs-a")
    figures = await (await gs_a.get("/api/v1/stats")).json()
    assert dict(figures["by_channel"]) == A_COUNTS
    # Every channel listed, in the contract's order.
    assert [c for c, _n in figures["by_channel"]] == list(A_COUNTS)

    page = await (await gs_a.get("/stats")).text()
    assert 'id="by-channel"' in page and '<tr data-channel="sms"><td>' in page
    assert "/stats.csv?table=channels" in page

    text = await (await gs_a.get("/stats.csv?table=channels")).text()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r[0] for r in rows[1:-1]] == list(A_COUNTS)
    assert [int(r[2]) for r in rows[1:-1]] == list(A_COUNTS.values())
    assert rows[-1][2] == "5"  # the total

    answer = await gs_a.get("/stats.xlsx?table=channels")
    assert answer.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await answer.read())).active
    assert sheet is not None
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert [(r[0], r[2]) for r in values[1:-1]] == list(A_COUNTS.items())

    # B's supervisor counts B's one SMS case; the administrator both hotlines'.
    gs_b, _ = await written.user("gs-b")
    b_figures = await (await gs_b.get("/api/v1/stats")).json()
    assert {c: n for c, n in b_figures["by_channel"] if n} == {"sms": 1}
    admin, _ = await written.user("quantri")
    everything = dict((await (await admin.get("/api/v1/stats")).json())["by_channel"])
    assert everything == {**A_COUNTS, "sms": 2}
