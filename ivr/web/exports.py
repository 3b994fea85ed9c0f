"""Downloads of what a page lists, as CSV or XLSX: built off the event loop
from the same rows the page's JSON twin returns, and audited."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from typing import Any

from aiohttp import web

from ivr.web import xlsx
from ivr.web.state import audit

logger = logging.getLogger(__name__)


async def csv_file(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 (Vietnamese) correctly with a BOM
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            # Neutralise spreadsheet formulas in citizen-written text.
            writer.writerow(
                {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v)
                 for k, v in row.items()}
            )  # fmt: skip
    await audit_export(request, f"{name}.csv")
    return web.Response(
        body=out.getvalue().encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def xlsx_file(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    # xlsx.workbook writes text with write_string, never as a formula: no "'" prefix here.
    header = list(rows[0]) if rows else []
    body = await asyncio.to_thread(
        xlsx.workbook, header, [list(row.values()) for row in rows], sheet=name
    )
    await audit_export(request, f"{name}.xlsx")
    return web.Response(
        body=body,
        content_type=xlsx.CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def is_export(request: web.Request) -> bool:
    """Does the path ask for a file (``.csv`` or ``.xlsx``)?"""
    return request.path.endswith((".csv", ".xlsx"))


async def export(request: web.Request, name: str, rows: list[dict[str, Any]]) -> web.Response:
    """The rows as the file the path asks for (``.csv`` or ``.xlsx``), audited."""
    if request.path.endswith(".xlsx"):
        return await xlsx_file(request, name, rows)
    return await csv_file(request, name, rows)


async def audit_export(request: web.Request, filename: str) -> None:
    await audit(request, "export", filename, detail=request.query_string)
