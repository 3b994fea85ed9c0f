"""The FastAGI scripts the dialplan calls, each with its arguments by name.

One table for both ends: :mod:`ivr.asterisk.render` writes every
``AGI(agi://host:port/<name>,<arg1>,<arg2>…)`` line from it (the dialplan
expression of each argument given by name, in the order below), and
:mod:`ivr.agi.server` reads ``agi_arg_1…n`` into the script's dataclass by the
same order, so a handler names ``args.dial_status`` instead of ``arg(4)``.
Adding, removing or reordering an argument is one edit here.

Every argument is the dialplan's text as Asterisk expanded it ("" when the
variable was unset); the handler decides what an empty or odd value means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

Args = TypeVar("Args", covariant=True)


@dataclass(frozen=True, slots=True)
class EntryArgs:
    dialed: str  # the hotline number (HL_DIALED)
    linkedid: str  # the call's linkedid: links the legs of one call


@dataclass(frozen=True, slots=True)
class CallEndedArgs:
    uniqueid: str
    route: str  # HL_ROUTE as the dialplan last saw it
    answered: str  # label of the target dialled last (kept only if DIALSTATUS=ANSWER)
    dial_status: str  # DIALSTATUS
    answer_epoch: str  # HL_ANSWER_EPOCH: when the answering phone picked up
    queue_member: str  # MEMBERINTERFACE: the queue member that answered
    rec_base: str  # HL_REC_BASE: the recordings' path prefix
    # HL_HOTLINE: lets a process that never saw the call start write its record
    # (hung up before the entry AGI, or the entry served by another process).
    hotline: str


@dataclass(frozen=True, slots=True)
class SurveyArgs:
    uniqueid: str
    hotline: str


@dataclass(frozen=True, slots=True)
class CallbackRequestedArgs:
    uniqueid: str
    queue: str
    joined: str  # HL_QUEUE_JOINED: epoch seconds the caller joined the queue
    hotline: str


@dataclass(frozen=True, slots=True)
class CallbackAnsweredArgs:
    callback_id: str  # HL_CALLBACK_ID: the callback request's row id


@dataclass(frozen=True, slots=True)
class VoicemailSavedArgs:
    uniqueid: str
    rec_base: str
    hotline: str


@dataclass(frozen=True)
class AgiScript(Generic[Args]):
    """One FastAGI script: its name in ``agi://host:port/<name>`` and the
    dataclass whose fields are its arguments, in order."""

    name: str
    args_type: type[Args]

    @property
    def arguments(self) -> tuple[str, ...]:
        """The argument names, in the order the dialplan passes them."""
        return tuple(f.name for f in fields(self.args_type))  # type: ignore[arg-type]

    def parse(self, arg: Callable[[int], str]) -> Args:
        """The arguments of one request; ``arg(i)`` is AGI's ``agi_arg_<i>``
        (1-based), "" when absent."""
        values = {name: arg(index) for index, name in enumerate(self.arguments, start=1)}
        return self.args_type(**values)


ENTRY = AgiScript("hotline-entry", EntryArgs)
CALL_ENDED = AgiScript("call-ended", CallEndedArgs)  # the hangup handler
SURVEY = AgiScript("survey", SurveyArgs)
CALLBACK_REQUESTED = AgiScript("callback-requested", CallbackRequestedArgs)
CALLBACK_ANSWERED = AgiScript("callback-answered", CallbackAnsweredArgs)
VOICEMAIL_SAVED = AgiScript("voicemail-saved", VoicemailSavedArgs)

SCRIPTS: tuple[AgiScript[object], ...] = (
    ENTRY,
    CALL_ENDED,
    SURVEY,
    CALLBACK_REQUESTED,
    CALLBACK_ANSWERED,
    VOICEMAIL_SAVED,
)
BY_NAME = {script.name: script for script in SCRIPTS}
