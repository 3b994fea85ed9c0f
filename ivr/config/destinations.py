"""The destination vocabulary shared by menus, fallbacks, schedules and queues.

A destination is written in the config as ``kind:argument`` (``queue:operator``,
``area:00611``, ``tel:113``, ``callback:operator``). Keeping it one small closed
vocabulary means the call flow, the dialplan renderer and the validator all speak
the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class DestinationKind(StrEnum):
    QUEUE = "queue"  # an agent queue by name
    AREA = "area"  # the chairman of an administrative unit, with its fallbacks
    PHONE = "phone"  # a SIP phone (endpoint) by id
    TEL = "tel"  # an external number through a trunk: tel:0912345678 or tel:113@pstn
    DEPARTMENT = "department"  # a department by code
    MENU = "menu"  # another menu of the same hotline
    PROMPT = "prompt"  # play a prompt from the catalog, then return to the menu
    CASE_STATUS = "case_status"  # case status lookup by code
    VOICEMAIL = "voicemail"  # leave a message that becomes a case
    # Be called back from a queue (callback:<queue>): the case is opened and the
    # queue manager dials the caller once an agent of that queue is free, e.g.
    # after hours "press 1 to be called back when we open".
    CALLBACK = "callback"
    HANGUP = "hangup"


_NEEDS_ARGUMENT = {
    DestinationKind.QUEUE,
    DestinationKind.AREA,
    DestinationKind.PHONE,
    DestinationKind.TEL,
    DestinationKind.DEPARTMENT,
    DestinationKind.MENU,
    DestinationKind.PROMPT,
    DestinationKind.CALLBACK,
}
_TEL_PATTERN = re.compile(r"^\+?[0-9]{3,15}(@[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True, slots=True)
class Destination:
    kind: DestinationKind
    argument: str = ""

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Parse ``kind:argument``; raises ValueError with a message a person can act on."""
        if not isinstance(text, str):
            raise ValueError(f"expected a destination such as 'queue:operator', got {text!r}")
        kind_text, _, argument = text.strip().partition(":")
        try:
            kind = DestinationKind(kind_text)
        except ValueError:
            known = ", ".join(k.value for k in DestinationKind)
            raise ValueError(
                f"unknown destination kind {kind_text!r} in {text!r} (known: {known})"
            ) from None
        if kind in _NEEDS_ARGUMENT and not argument:
            raise ValueError(f"destination {text!r} needs an argument, e.g. '{kind}:name'")
        if kind not in _NEEDS_ARGUMENT and argument:
            raise ValueError(f"destination {kind.value!r} takes no argument, got {text!r}")
        if kind is DestinationKind.TEL and not _TEL_PATTERN.match(argument):
            raise ValueError(f"{text!r}: expected tel:<digits>[@trunk]")
        return cls(kind, argument)

    @property
    def tel_number(self) -> str:
        return self.argument.partition("@")[0]

    @property
    def tel_trunk(self) -> str | None:
        return self.argument.partition("@")[2] or None

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.argument}" if self.argument else self.kind.value
