"""A fake Asterisk on the far side of one FastAGI session, for unit tests.

It takes the place of panoramisk's request (``headers`` and ``send_command``),
answers each AGI command with the line Asterisk would send, parsed by
panoramisk's own result parser (so the channel's error handling meets the
same dictionaries it meets in production), records the commands, the prompts
played and the channel variables set, and plays a caller who presses keys,
stays silent or hangs up.

Facts of Asterisk 22 this follows (``res_agi.c``, ``app.c``):

- ``STREAM FILE f "<escape>"``: ``200 result=<ASCII code of the key>`` when a
  key in ``<escape>`` stopped playback, else ``200 result=0``.
- ``GET DATA f <ms> <max>``: ``200 result=<digits>``; ``#`` ends input and is
  not returned; ``200 result= (timeout)`` when nothing was pressed.
- ``WAIT FOR DIGIT <ms>``: ``200 result=<ASCII code>``, ``200 result=0`` on timeout.
- ``GET FULL VARIABLE "<expr>"``: ``200 result=1 (<value>)``, ``200 result=0``
  when the variable does not exist.
- The command during which the caller hangs up gets ``200 result=-1``; every
  later one ``511 Command Not Permitted on a dead channel``.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from panoramisk.utils import parse_agi_result

from ivr.flow.steps import Input, InputKind

logger = logging.getLogger(__name__)

DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercepted channel"


class AgiPeer:
    """One AGI session with a scripted caller.

    ``answers`` are what the caller does at each prompt that reads keys (GET
    DATA, or the first WAIT FOR DIGIT after a barge-in): keys, silence, and
    hang-up once they run out. ``barge_in`` keys are pressed during the first
    playback that may be interrupted. ``evaluate`` answers GET FULL VARIABLE
    expressions the variables set in the session do not (None: unset).
    """

    def __init__(
        self,
        headers: dict[str, str] | None = None,
        answers: Iterable[Input] = (),
        *,
        barge_in: str = "",
        evaluate: Callable[[str], str | None] | None = None,
    ) -> None:
        self.headers: dict[str, str] = dict(headers or {})
        self.commands: list[str] = []
        self.played: list[str] = []  # files given to STREAM FILE and GET DATA, in order
        self.variables: dict[str, str] = {}  # set with SET VARIABLE or EXEC MSet
        self.hung_up = False
        self._answers: Iterator[Input] = iter(answers)
        self._barge_in = barge_in
        self._typed = ""  # keys pressed and not yet read
        self._reading_answer = False  # WAIT FOR DIGIT is reading an answer's keys
        self._evaluate = evaluate or (lambda expression: None)

    async def send_command(self, command: str) -> dict[str, Any]:
        """What panoramisk's ``Request.send_command`` returns for ``command``."""
        self.commands.append(command)
        return dict(parse_agi_result(self._reply(command)))

    def _reply(self, command: str) -> str:
        if self.hung_up:
            return DEAD_CHANNEL
        words = shlex.split(command)
        verb = " ".join(words[:3]).upper()
        if verb.startswith("STREAM FILE"):
            self._reading_answer = False
            return self._stream_file(words[2], words[3] if len(words) > 3 else "")
        if verb.startswith("GET DATA"):
            self._reading_answer = False
            return self._get_data(words[2], int(words[4]) if len(words) > 4 else 1024)
        if verb.startswith("WAIT FOR DIGIT"):
            return self._wait_for_digit()
        if verb == "GET FULL VARIABLE":
            return self._get_full_variable(words[3])
        if verb.startswith("SET VARIABLE"):
            self.variables[words[2]] = words[3]
            return "200 result=1"
        if verb.startswith("EXEC MSET"):
            for assignment in words[2].split(","):
                name, _, value = assignment.partition("=")
                self.variables[name] = value
            return "200 result=0"
        if verb.startswith("VERBOSE") or verb.startswith("ANSWER"):
            return "200 result=1"
        return "510 Invalid or unknown command"

    def _next_answer(self) -> Input:
        answer = next(self._answers, Input.hangup())
        if answer.kind is InputKind.HANGUP:
            self.hung_up = True
        return answer

    def _stream_file(self, path: str, escape: str) -> str:
        self.played.append(path)
        if escape and self._barge_in:
            self._typed, self._barge_in = self._barge_in, ""
        if escape and self._typed and self._typed[0] in escape:
            key, self._typed = self._typed[0], self._typed[1:]
            return f"200 result={ord(key)} endpos=800"
        return "200 result=0 endpos=8000"

    def _get_data(self, path: str, max_digits: int) -> str:
        self.played.append(path)
        self._typed = ""
        answer = self._next_answer()
        if answer.kind is InputKind.HANGUP:
            return "200 result=-1"
        digits = answer.digits.split("#", 1)[0][:max_digits]
        return f"200 result={digits}" if digits else "200 result= (timeout)"

    def _wait_for_digit(self) -> str:
        if not self._typed:
            if self._reading_answer:  # the caller has typed all of this answer
                self._reading_answer = False
                return "200 result=0"
            answer = self._next_answer()
            if answer.kind is InputKind.HANGUP:
                return "200 result=-1"
            self._typed, self._reading_answer = answer.digits, True
            if not self._typed:
                return "200 result=0"
        key, self._typed = self._typed[0], self._typed[1:]
        return f"200 result={ord(key)}"

    def _get_full_variable(self, expression: str) -> str:
        value: str | None
        if expression.startswith("${") and expression[2:-1] in self.variables:
            value = self.variables[expression[2:-1]]
        else:
            value = self._evaluate(expression)
        return "200 result=0" if value is None else f"200 result=1 ({value})"
