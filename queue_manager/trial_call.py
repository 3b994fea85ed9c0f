"""The "test call" (trial call) of the console's ward form: Asterisk rings a
number the way a citizen's call would ring it (the same dial string the routing builds) and, when
it is answered, plays one of the hotline's own prompts, so the clerk hears the
new chairman's phone work before (or after) the change is applied.

Nothing typed reaches AMI: the dial string comes from the routing table of a
checked config (a configured phone's id, or digits through a configured trunk)
and the prompt path from the config's prompts folder; both are checked again
here against the narrow shapes they can have, and every action still passes the
AMI gate (:mod:`ivr.asterisk.ami_gate`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

# PJSIP/<phone id> or PJSIP/<prefix><digits>@<trunk id> (ivr/flow/routing.py).
_DIAL_STRING = re.compile(r"^PJSIP/[A-Za-z0-9_.+-]{1,80}(@[A-Za-z0-9_.-]{1,64})?$")
# An absolute path without the delimiters of an application's arguments.
_PROMPT = re.compile(r"^/[^,|&\s;]{1,400}$")
_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")

Sender = Callable[[dict[str, Any]], Awaitable[Any]]


class TrialCallRefused(ValueError):
    """The target or prompt is not of a shape a test call may use; nothing was sent."""


def trial_call_action(
    dial_string: str, prompt: str, caller_number: str, ring_seconds: int
) -> dict[str, Any]:
    """The AMI Originate of a test call: ring ``dial_string`` for
    ``ring_seconds``, show the hotline's number, play ``prompt`` when answered."""
    if not _DIAL_STRING.fullmatch(dial_string):
        raise TrialCallRefused(f"not a dial string a test call may ring: {dial_string!r}")
    if not _PROMPT.fullmatch(prompt):
        raise TrialCallRefused("the prompt path holds characters Playback would split on")
    if not _NUMBER.fullmatch(caller_number):
        raise TrialCallRefused(f"not a hotline number: {caller_number!r}")
    if not 3 <= ring_seconds <= 120:
        raise TrialCallRefused(f"ring time out of range: {ring_seconds}")
    return {
        "Action": "Originate",
        "Channel": dial_string,
        "Application": "Playback",
        "Data": prompt,
        "CallerID": f"<{caller_number}>",
        "Timeout": str(ring_seconds * 1000),
        # Queued: the answer says the call was placed, not how it ended (the
        # clerk hears that on the phone).
        "Async": "true",
    }


async def originate_trial_call(
    send: Sender, dial_string: str, prompt: str, caller_number: str, ring_seconds: int
) -> None:
    """Place the test call through ``send`` (a node's AMI link)."""
    action = trial_call_action(dial_string, prompt, caller_number, ring_seconds)
    await send(action)
    logger.info("trial call to %s placed", dial_string)
