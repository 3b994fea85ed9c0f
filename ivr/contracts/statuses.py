"""Status words stored in the database, shown in the console and passed to the
dialplan, each defined once as a ``StrEnum``.

Values are the strings the rows and templates have always held: a member
compares equal to its string and renders as it, so stored rows, SQL filters and
templates need no change.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    """Where a case stands, in the order a case normally moves (iHanoi's words)."""

    RECEIVED = "received"  # chờ tiếp nhận
    CLASSIFIED = "classified"  # chờ xử lý
    ASSIGNED = "assigned"  # chuyển xử lý
    IN_PROGRESS = "in_progress"  # đang xử lý
    ANSWERED = "answered"  # đã xử lý
    CLOSED = "closed"
    REJECTED = "rejected"  # từ chối (out of scope, with a reason)


OPEN_CASE_STATUSES = (
    CaseStatus.RECEIVED,
    CaseStatus.CLASSIFIED,
    CaseStatus.ASSIGNED,
    CaseStatus.IN_PROGRESS,
)


class RouteKind(StrEnum):
    """The dialplan branch (``hotline-route`` context) that bridges the call:
    the value of ``HL_ROUTE`` the call flow hands over. (The dialplan and the
    server may also set ``failure`` and ``callback``: see
    :mod:`ivr.contracts.channel_variables`.)"""

    DIAL = "dial"  # ring targets in turn, then ``final``
    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


class CallOutcome(StrEnum):
    """``calls.outcome``: one word for reports. A call that ended on a branch
    none of these name keeps that branch's ``HL_ROUTE`` (voicemail, hangup…)."""

    IN_PROGRESS = "in_progress"  # the call is up (or its end never reached us yet)
    INTERRUPTED = "interrupted"  # its hangup never came: closed by the stale sweep
    ANSWERED = "answered"
    ABANDONED_IN_IVR = "abandoned_in_ivr"  # hung up before a route was chosen
    NO_ANSWER = "no_answer"
    ABANDONED = "abandoned"  # hung up while a target rang
    BUSY = "busy"
    CONGESTION = "congestion"
    CHANUNAVAIL = "chanunavail"
    ABANDONED_IN_QUEUE = "abandoned_in_queue"
    ENDED = "ended"


class QueueCallOutcome(StrEnum):
    """``queue_calls.outcome``: what became of one caller's time in the queues."""

    WAITING = "waiting"
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # hung up while waiting
    LEFT = "left"  # left unanswered (timeout, key 1); an abandon overrides it
    LOST = "lost"  # gone from the queue when the picture was resynced


class ForwardStatus(StrEnum):
    """Where a case forwarded to one responsible unit stands (``case_forwards.status``)."""

    SENT = "sent"  # đã chuyển
    RECEIVED = "received"  # đơn vị đã tiếp nhận
    IN_PROGRESS = "in_progress"  # đang xử lý
    ANSWERED = "answered"  # đã trả lời
    RETURNED = "returned"  # trả lại: không thuộc thẩm quyền
    EXTENSION_REQUESTED = "extension_requested"  # xin gia hạn
    EXTENSION_GRANTED = "extension_granted"  # được gia hạn


# A forward in these still owes the hotline an answer (its deadline runs).
OPEN_FORWARD_STATUSES = (
    ForwardStatus.SENT,
    ForwardStatus.RECEIVED,
    ForwardStatus.IN_PROGRESS,
    ForwardStatus.EXTENSION_REQUESTED,
    ForwardStatus.EXTENSION_GRANTED,
)
