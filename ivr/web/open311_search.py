"""``GET requests`` of Open311 (:mod:`ivr.web.open311`): the search a client
asks for (a list of ids, or service codes, statuses and a date window), and a
stored request as the public may see it: only requests that came through
Open311, no name, phone or e-mail, the description and the answer redacted
(:mod:`ivr.cases.redaction`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.redaction import redact
from ivr.config.schema import HotlineConfig
from ivr.contracts.statuses import OPEN_CASE_STATUSES, CaseStatus
from ivr.web import open311_store
from ivr.web.open311_format import (
    DESCRIPTION_MAX,
    Open311Error,
    comma_list,
    date_range,
    end_of_day,
    w3,
)

logger = logging.getLogger(__name__)

# A service_request_id is a case code: digits only, so nothing else reaches a query.
_CODE = re.compile(r"^\d{1,16}$")


def is_request_code(text: str) -> bool:
    """Whether ``text`` could be a case code."""
    return bool(_CODE.match(text))


@dataclass(frozen=True)
class RequestSearch:
    """What ``GET requests`` asks for: ``codes`` (the spec: a list of ids
    overrides every other parameter), or a window with optional filters."""

    codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    topics: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()


def parse_search(query: Mapping[str, str], now: datetime, zone: ZoneInfo) -> RequestSearch:
    """The request's query parameters as a :class:`RequestSearch`, or 400."""
    ids = comma_list(query.get("service_request_id"), limit=open311_store.MAX_REQUESTS)
    if ids:
        # Ids that cannot be codes match nothing: left out, not an error.
        return RequestSearch(codes=[i for i in ids if is_request_code(i)])
    statuses = comma_list(query.get("status"), limit=2)
    if any(s not in ("open", "closed") for s in statuses):
        raise Open311Error(400, "status is open, closed, or both")
    topics = comma_list(query.get("service_code"), limit=100)
    start, end = date_range(query.get("start_date"), query.get("end_date"), now, zone)
    return RequestSearch(start=start, end=end, topics=tuple(topics), statuses=tuple(statuses))


def find_requests(
    sessions: sessionmaker[Session], hotline_id: str, search: RequestSearch
) -> list[open311_store.PublicRequest]:
    """The hotline's Open311 requests the search names (one query)."""
    if search.codes is not None:
        return open311_store.requests_by_code(sessions, hotline_id, search.codes)
    assert search.start is not None and search.end is not None
    return open311_store.requests_between(
        sessions, hotline_id, search.start, search.end,
        topics=search.topics, statuses=search.statuses,
    )  # fmt: skip


def public_request(
    config: HotlineConfig, hotline_id: str, item: open311_store.PublicRequest, zone: ZoneInfo
) -> dict[str, Any]:
    """One request in the spec's fields, as the public may see it."""
    topics = {t.code: t.name for t in config.cases.topics}
    hotline = config.hotline(hotline_id)
    unit = config.unit(item.responsible_unit) if item.responsible_unit else None
    names = (item.caller_name,)
    answered = item.status in (CaseStatus.ANSWERED, CaseStatus.CLOSED)
    if item.erased:
        notes = description = ""
    else:
        description = redact(item.summary, names=names)[:DESCRIPTION_MAX]
        if answered:
            notes = redact(item.answer, names=names)
        elif item.status == CaseStatus.REJECTED:
            notes = redact(item.rejection_reason, names=names)
        else:
            notes = ""
    return {
        "service_request_id": item.code,
        "status": "open" if item.status in OPEN_CASE_STATUSES else "closed",
        "status_notes": notes or None,
        "service_name": topics.get(item.topic or "", item.topic or ""),
        "service_code": item.topic,
        "description": description or None,
        "agency_responsible": unit.name if unit else (hotline.unit_name if hotline else None),
        "service_notice": None,
        "requested_datetime": w3(item.received_at, zone),
        "updated_datetime": w3(item.updated_at, zone),
        "expected_datetime": end_of_day(item.due_date, zone),
        "address": item.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": item.latitude,
        "long": item.longitude,
        "media_url": item.media_url or None,
    }
