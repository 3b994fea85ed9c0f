"""Call-back requests: a caller left the queue keeping their place, and the
queue manager dials them back. The FastAGI server records the request and
its answer, the queue manager dials; both change the table only through
these functions and statuses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from ivr.queue_records.models import CallbackRequest

# Statuses of a call-back request (stored as these strings).
PENDING, DIALING, DONE, FAILED = "pending", "dialing", "done", "failed"


def add_request(
    session: Session,
    *,
    queue: str,
    hotline_id: str,
    caller_number: str,
    call_uniqueid: str,
    case_code: str,
    joined_at: float,
    requested_at: datetime,
) -> None:
    """A caller pressed the call-back key; ``joined_at`` keeps their place.
    ``requested_at`` is the FastAGI server's clock (the one that judged the
    opening hours), so the request is due from then on that same clock."""
    session.add(
        CallbackRequest(
            queue=queue,
            hotline_id=hotline_id,
            caller_number=caller_number,
            call_uniqueid=call_uniqueid,
            case_code=case_code,
            joined_at=joined_at,
            requested_at=requested_at,
            next_attempt_at=requested_at,
        )
    )


def mark_answered(sessions: sessionmaker[Session], request_id: int) -> None:
    """The citizen picked up the call back (called from the dialplan via FastAGI)."""
    with sessions.begin() as session:
        session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == request_id)
            .values(status=DONE, last_result="answered")
        )
