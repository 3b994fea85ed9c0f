"""The JSON shapes of calls and cases: one place for the API, the pages'
fetch() calls and the CSV/XLSX exports, so they cannot drift apart."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from ivr.cases.models import Case

logger = logging.getLogger(__name__)


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def call_json(call: Any) -> dict[str, Any]:
    return {
        "uniqueid": call.uniqueid, "hotline_id": call.hotline_id,
        "caller_number": call.caller_number, "area_code": call.area_code,
        "keys_pressed": call.keys_pressed, "route_kind": call.route_kind,
        "route_target": call.route_target, "answered_by": call.answered_by,
        "started_at": iso(call.started_at), "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at), "outcome": call.outcome,
        "satisfaction": call.satisfaction,
    }  # fmt: skip


def case_json(case: Case, history: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": case.code, "status": case.status, "channel": case.channel,
        "hotline_id": case.hotline_id, "caller_number": case.caller_number,
        "caller_name": case.caller_name, "area_code": case.area_code, "topic": case.topic,
        "severity": case.severity, "summary": case.summary, "transcript": case.transcript,
        "responsible_unit": case.responsible_unit, "answer": case.answer,
        "received_at": iso(case.received_at), "due_date": iso(case.due_date),
        "closed_at": iso(case.closed_at), "call_uniqueid": case.call_uniqueid,
        "legal_hold": case.legal_hold, "legal_hold_reason": case.legal_hold_reason,
        "legal_hold_by": case.legal_hold_by, "legal_hold_at": iso(case.legal_hold_at),
        "erased_at": iso(case.erased_at),
        # Publication (staff only: the public page shows none of this).
        "publish_consent": case.publish_consent, "publish_consent_by": case.publish_consent_by,
        "publish_consent_at": iso(case.publish_consent_at), "public_id": case.public_id,
        "published_at": iso(case.published_at), "published_by": case.published_by,
    }  # fmt: skip
    if history:
        out["history"] = [
            {"at": iso(e.at), "actor": e.actor, "action": e.action,
             "from_status": e.from_status, "to_status": e.to_status, "note": e.note}
            for e in case.history
        ]  # fmt: skip
    return out
