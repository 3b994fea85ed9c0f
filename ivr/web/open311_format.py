"""GeoReport v2's wire formats, apart from the handlers (:mod:`ivr.web.open311`).

The spec (http://wiki.open311.org/GeoReport_v2) gives every answer in JSON and
in XML with fixed element names; this module is the one place that spells
them, and parses what the spec lets a client send (w3 datetimes, comma lists):

- lists: ``<services><service>…``, ``<service_requests><request>…``; JSON
  is a list of objects with the same keys;
- one definition: ``<service_definition>`` (JSON: one object);
- errors: ``<errors><error><code/><description/></error></errors>``, JSON
  ``[{"code": 400, "description": "…"}]``;
- empty values are empty elements in XML and ``null`` in JSON; booleans are
  ``true``/``false``; datetimes are w3 (ISO 8601 with the offset).

Pure functions only: no request, no database.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

FORMATS = ("json", "xml")
DESCRIPTION_MAX = 4000  # the spec's limit of ``description``
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}

# Element names of each answer: (root, one item) in XML.
SERVICES = ("services", "service")
REQUESTS = ("service_requests", "request")
ERRORS = ("errors", "error")

# XML 1.0 has no way to carry these (even escaped): dropped, not sent broken.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Open311Error(Exception):
    """An error the client gets in the spec's format, with its HTTP status."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _element(parent: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _element(child, key, inner)
    elif isinstance(value, (list, tuple)):
        # A list (a definition's attributes, discovery's endpoints and formats):
        # one element per item, named as the list without its plural "s".
        for item in value:
            _element(child, name[:-1] if name.endswith("s") else name, item)
    else:
        child.text = _text(value)


def to_xml(
    root: str, item: str | None, body: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> bytes:
    """``body`` as the spec's XML: a list under ``<root><item>…``, or one object
    as ``<root>`` itself (``item`` None)."""
    top = ET.Element(root)
    if item is None:
        assert isinstance(body, Mapping)
        for key, value in body.items():
            _element(top, key, value)
    else:
        for row in body:
            _element(top, item, row)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        top, encoding="utf-8", xml_declaration=False
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def render(
    fmt: str, names: tuple[str, str | None], body: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> tuple[bytes, str]:
    """(bytes, content type) of ``body`` in ``fmt`` (json or xml)."""
    if fmt == "xml":
        root, item = names
        return to_xml(root, item, body), "text/xml; charset=utf-8"
    text = json.dumps(_jsonable(body), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8"), "application/json; charset=utf-8"


def error_body(fmt: str, errors: Sequence[tuple[int, str]]) -> tuple[bytes, str]:
    """The spec's error list: ``[{code, description}]`` or ``<errors>``."""
    return render(fmt, ERRORS, [{"code": code, "description": text} for code, text in errors])


def w3(value: datetime | None, zone: ZoneInfo) -> str | None:
    """A w3 datetime with the hotline's offset (``2026-11-30T09:15:00+07:00``)."""
    if value is None:
        return None
    return value.astimezone(zone).isoformat(timespec="seconds")


def end_of_day(day: date | None, zone: ZoneInfo) -> str | None:
    """A due date as the last second of that day in the hotline's zone: the
    spec's ``expected_datetime`` is a moment, the case's deadline a day."""
    if day is None:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone).isoformat(timespec="seconds")


def parse_w3(text: str, field: str, zone: ZoneInfo) -> datetime:
    """A client's w3 datetime (``2010-01-01T00:00:00Z``, with an offset, or a
    date alone); without an offset it is the hotline's local time."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            value = datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(
            400, f"{field} is not a w3 datetime (like 2026-01-31T00:00:00Z): {text[:40]!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value


def comma_list(text: str | None, *, limit: int) -> list[str]:
    """A comma-delimited parameter's values, blanks dropped, at most ``limit``."""
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    if len(values) > limit:
        raise Open311Error(400, f"at most {limit} values in one list")
    return values


def date_range(
    start: str | None, end: str | None, now: datetime, zone: ZoneInfo, max_days: int = 90
) -> tuple[datetime, datetime]:
    """The spec's window of ``requested_datetime``: the given bounds, the most
    recent ``max_days`` days when none is given, and never more than
    ``max_days`` days apart (400)."""
    span = timedelta(days=max_days)
    lower = parse_w3(start, "start_date", zone) if start else None
    upper = parse_w3(end, "end_date", zone) if end else None
    if lower is None and upper is None:
        upper = now
    if lower is None:
        assert upper is not None
        lower = upper - span
    if upper is None:
        upper = lower + span
    if upper < lower:
        raise Open311Error(400, "end_date is before start_date")
    if upper - lower > span:
        raise Open311Error(400, f"start_date and end_date may not span more than {max_days} days")
    return lower, upper
