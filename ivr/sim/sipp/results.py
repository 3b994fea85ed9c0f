"""What a caller's calls looked like, read from its SIPp event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ivr.sim.sipp.logs import SippEvent

HangupBy = Literal["caller", "remote"]


class KeyPress(NamedTuple):
    digit: str
    at: float  # epoch seconds, just before SIPp started sending the key


@dataclass
class CallResult:
    """What one call looked like from the caller's side.

    ``hung_up_by`` is ``"caller"`` when we sent BYE or CANCEL, ``"remote"`` when
    the far end sent BYE, ``None`` when there was no dialog to end (rejected,
    or SIPp gave up on its own).
    """

    answered: bool
    final_status: int | None
    hung_up_by: HangupBy | None
    exit_code: int | None
    log_text: str
    call_id: str | None
    started_at: float | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    dtmf_sent_at: list[KeyPress] = field(default_factory=list)
    bye_wait_timed_out: bool = False
    timed_out: bool = False  # killed by the Python-side guard
    call_number: int = 0  # SIPp's call counter (1-based): line N of the injection file

    @property
    def keys(self) -> str:
        return "".join(k.digit for k in self.dtmf_sent_at)


@dataclass
class LoadResult:
    """``elapsed_s`` is the SIPp run's wall time, which includes SIPp's wait of
    1 / rate before the first call; ``calls`` has each call's own timings."""

    successful: int  # answered and ended by a BYE from either side
    failed: int
    elapsed_s: float
    exit_code: int | None
    calls: list[CallResult]
    log_text: str
    timed_out: bool = False


def call_results(events: Sequence[SippEvent]) -> dict[int, CallResult]:
    by_call: dict[int, CallResult] = {}
    for ev in events:
        res = by_call.get(ev.call_number)
        if res is None:
            res = by_call[ev.call_number] = CallResult(
                answered=False,
                final_status=None,
                hung_up_by=None,
                exit_code=None,
                log_text="",
                call_id=ev.call_id,
                call_number=ev.call_number,
            )
        match ev.kind:
            case "INVITE_TX":
                res.started_at = ev.at
            case "RINGING":
                res.ringing_at = res.ringing_at or ev.at
            case "FINAL":
                res.final_status = int(ev.extra)
            case "ANSWERED":
                res.answered, res.answered_at = True, ev.at
            case "DTMF":
                res.dtmf_sent_at.append(KeyPress(ev.extra, ev.at))
            case "BYE_RX":
                res.hung_up_by = res.hung_up_by or "remote"
            case "BYE_TX" | "CANCEL_TX":
                res.hung_up_by = res.hung_up_by or "caller"
            case "BYE_WAIT_TIMEOUT":
                res.bye_wait_timed_out = True
            case "END":
                res.ended_at = ev.at
    return by_call
