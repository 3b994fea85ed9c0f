"""Idempotency keys: the same key twice on a channel of a hotline (a retried
webhook, a double submit, a resent mail) gives the first result back and
writes nothing. A key is written in the transaction that stores its message;
two copies racing past the look-up meet on the unique constraint
(``IntegrityError``), and the loser reads the winner's result.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from ivr.cases.models import Case
from ivr.intake.models import IntakeKey
from ivr.intake.types import IntakeResult

logger = logging.getLogger(__name__)

# Built once, values bound at execution: building and hashing the statement
# for every submission cost more than running it. On the tables, not the mapped
# classes: a plain query skips the ORM's result handling.
_KEYS, _CASES = IntakeKey.__table__.c, Case.__table__.c
_KEY_RESULT = (
    select(_KEYS.case_id, _KEYS.message_id, _KEYS.created, _CASES.code)
    .join_from(IntakeKey.__table__, Case.__table__, _CASES.id == _KEYS.case_id)
    .where(
        _KEYS.hotline_id == bindparam("hotline_id"),
        _KEYS.channel == bindparam("channel"),
        _KEYS.key == bindparam("key"),
    )
)
_INSERT_KEY = insert(cast(Table, IntakeKey.__table__))


def key_result(session: Session, hotline_id: str, channel: str, key: str) -> IntakeResult | None:
    """The result stored under this key, as a duplicate; None for a new key."""
    row = session.execute(
        _KEY_RESULT, {"hotline_id": hotline_id, "channel": channel, "key": key}
    ).one_or_none()
    if row is None:
        return None
    return IntakeResult(row.code, row.case_id, row.message_id, row.created, duplicate=True)


def record_key(
    session: Session,
    *,
    hotline_id: str,
    channel: str,
    key: str,
    case_id: int,
    message_id: int,
    created: bool,
    now: datetime,
) -> None:
    """Remember what this key stored. A plain INSERT, not an object for the
    session's flush (each flush costs more than its statement)."""
    session.execute(
        _INSERT_KEY,
        {
            "hotline_id": hotline_id, "channel": channel, "key": key,
            "case_id": case_id, "message_id": message_id, "created": created,
            "created_at": now,
        },
    )  # fmt: skip
