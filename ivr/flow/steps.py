"""The vocabulary between the call flow and whatever executes it (AGI, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

# The route kinds are the contract with the dialplan; kept importable from here
# because they are the flow's vocabulary too.
from ivr.contracts.statuses import RouteKind as RouteKind


@dataclass(frozen=True, slots=True)
class Play:
    """Play prompts in order. With ``interruptible`` a key press stops playback
    and is returned (barge-in), to be used as the start of the next input."""

    prompts: tuple[str, ...]
    interruptible: bool = False


@dataclass(frozen=True, slots=True)
class Collect:
    """Play ``prompt`` and collect up to ``max_digits`` keys.

    ``already`` holds keys pressed during earlier barge-in playback; the
    executor then waits for the remaining keys without replaying the prompt.
    """

    prompt: str
    timeout_seconds: int
    max_digits: int
    terminator: str = ""
    already: str = ""


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """The caller chose another language (the hotline's ``english_key``): the
    executor plays every later prompt, its own and the dialplan's, from that
    language's folder. Answered with ``None``."""

    language: str


@dataclass(frozen=True, slots=True)
class Mark:
    """Tell the executor where the caller is now (written to the call record)."""

    step: str


@dataclass(frozen=True, slots=True)
class FindCases:
    """Ask the executor for cases: by ``code``, or the open cases of ``caller``.

    The flow stays pure: the executor reads the database and answers with
    :class:`CasesFound`.
    """

    code: str | None = None
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class CaseInfo:
    code: str
    status: str
    due_date: date | None = None
    unit: str | None = None
    # The local day the case was answered (answered or closed cases), read to the
    # caller after its status; None while open or when the day is not known.
    answered_on: date | None = None


@dataclass(frozen=True, slots=True)
class CasesFound:
    cases: tuple[CaseInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """Ask the executor how busy a queue is; answered with :class:`QueueLoadInfo`."""

    queue: str


@dataclass(frozen=True, slots=True)
class QueueLoadInfo:
    waiting: int  # callers already waiting
    ready_agents: int  # logged in, not paused, not on a call
    agents: int  # logged in
    average_hold_seconds: int  # Asterisk's running average wait (0 when unknown)


class InputKind(StrEnum):
    KEYS = "keys"
    NO_INPUT = "no_input"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class Input:
    """What the executor answers to :class:`Play` and :class:`Collect`."""

    kind: InputKind
    digits: str = ""

    @classmethod
    def keys(cls, digits: str) -> Input:
        return cls(InputKind.KEYS, digits) if digits else cls(InputKind.NO_INPUT)

    @classmethod
    def none(cls) -> Input:
        return cls(InputKind.NO_INPUT)

    @classmethod
    def hangup(cls) -> Input:
        return cls(InputKind.HANGUP)


@dataclass(frozen=True, slots=True)
class DialTarget:
    dial_string: str  # e.g. PJSIP/chair-phone or PJSIP/0912345678@pstn
    ring_seconds: int
    label: str  # what the call record says was rung


@dataclass(frozen=True, slots=True)
class Route:
    """The flow's final decision; the dialplan does the bridging."""

    kind: RouteKind
    targets: tuple[DialTarget, ...] = ()
    queue: str | None = None
    final: Route | None = None  # where a DIAL goes when no target answers
    area_code: str | None = None
    description: str = ""
    announce: tuple[str, ...] = field(default=())
    # A call-back from this queue was chosen (``callback:<queue>``): the server
    # writes the request and opens its case, reads the code back, and the call
    # then takes this route (hangup).
    callback_queue: str | None = None


@dataclass(frozen=True, slots=True)
class FlowResult:
    """What the flow hands back when it ends: a route, or the caller hung up."""

    route: Route | None
    keys_pressed: str
    last_step: str
    language: str | None = None  # the caller's chosen language; None: the hotline's
