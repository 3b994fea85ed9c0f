"""Each call's previous call by the same number, to the same hotline
(``calls.previous_call_at``) and to any (``previous_call_anywhere_at``).

The distinct callers of ``[start, end)`` are then exactly the calls of the
period with a number whose previous call is none or before ``start``: each
number's first call of the period, a count over an index instead of a hash of
a million numbers (ivr/reports/call_rollup.py, README "At a province's
scale"). The chain is kept when a call is recorded, in or out of time order
(:func:`link_previous_call`: the call log, the fallback spool, and any ORM
insert through the listener in ivr/db/models.py), and when retention replaces
numbers (:func:`relink_numbers`: a pseudonym is another number, an erased one
none)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from ivr.db.models import Call

_CALLS: Any = Call.__table__


def _previous(outer: Any, same_hotline: bool) -> Any:
    """The latest ``started_at`` of the same number's calls before ``outer``
    (ties in time broken by id, so two calls in the same instant are one
    caller's first and second)."""
    p = _CALLS.alias("p")
    conditions = [
        p.c.caller_number == outer.caller_number,
        p.c.id != outer.id,
        or_(
            p.c.started_at < outer.started_at,
            and_(p.c.started_at == outer.started_at, p.c.id < outer.id),
        ),
    ]
    if same_hotline:
        conditions.append(p.c.hotline_id == outer.hotline_id)
    return select(func.max(p.c.started_at)).where(*conditions).scalar_subquery()


def _following(same_hotline: bool) -> Any:
    """The id of the same number's first call after ``link_at`` (ties by id)."""
    n = _CALLS.alias("n")
    at = bindparam("link_at", type_=_CALLS.c.started_at.type)
    conditions = [
        n.c.caller_number == bindparam("link_number"),
        or_(n.c.started_at > at, and_(n.c.started_at == at, n.c.id > bindparam("link_id"))),
    ]
    if same_hotline:
        conditions.append(n.c.hotline_id == bindparam("link_hotline"))
    return (
        select(n.c.id).where(*conditions).order_by(n.c.started_at, n.c.id).limit(1)
    ).scalar_subquery()


# Built once, values passed at execution (the call log's hot path: building and
# hashing these statements per call cost more than running them).
_LINK = (
    update(_CALLS)
    .where(_CALLS.c.id == bindparam("link_id"))
    .values(
        previous_call_at=_previous(_CALLS.c, True),
        previous_call_anywhere_at=_previous(_CALLS.c, False),
    )
)
_LINK_FOLLOWING = [
    update(_CALLS)
    .where(_CALLS.c.id == _following(same_hotline))
    .values({column: bindparam("link_at", type_=_CALLS.c.started_at.type)})
    for column, same_hotline in (("previous_call_at", True), ("previous_call_anywhere_at", False))
]


def link_previous_call(
    connection: Connection,
    call_id: int,
    hotline_id: str,
    number: str | None,
    started_at: datetime | None,
) -> None:
    """Set the previous calls of the call just recorded, and make it the
    previous call of the one after it if it was recorded late (the fallback
    spool, or two calls written out of order). Index probes of
    ``ix_calls_caller_number_hotline_id`` and ``ix_calls_caller_number_started_at``;
    nothing for a withheld number."""
    if not number:
        return
    if started_at is None:  # an ORM default not read back: the row has it
        started_at = connection.scalar(select(_CALLS.c.started_at).where(_CALLS.c.id == call_id))
    values = {"link_id": call_id, "link_number": number, "link_hotline": hotline_id,
              "link_at": started_at}  # fmt: skip
    connection.execute(_LINK, {"link_id": call_id})
    for statement in _LINK_FOLLOWING:
        connection.execute(statement, values)


def relink_numbers(connection: Connection, numbers: Iterable[str], chunk: int = 500) -> int:
    """Recompute the previous calls of every call of ``numbers`` (after
    retention replaced some of their calls' numbers: the calls left with a
    number, and those given a pseudonym, each chain on their own)."""
    wanted = sorted({n for n in numbers if n})
    outer = _CALLS.c
    changed = 0
    for at in range(0, len(wanted), chunk):
        result = connection.execute(
            update(_CALLS)
            .where(_CALLS.c.caller_number.in_(wanted[at : at + chunk]))
            .values(
                previous_call_at=_previous(outer, True),
                previous_call_anywhere_at=_previous(outer, False),
            )
        )
        changed += result.rowcount or 0
    return changed
