"""Typed AGI commands over one FastAGI session; hangup becomes an exception.

:class:`AgiRequest` is panoramisk's request with the reply reader replaced.
panoramisk 1.4 reads exactly one line per command, so the ``HANGUP`` line
Asterisk writes when the caller hangs up (asynchronously, between or during
commands) is taken for the reply of the command in flight, and that command's
real reply is then read as the answer to the next one: every reply after it is
off by one. A multi-line usage error (``520-...`` up to ``520 End of proper
usage.``) shifts the replies the same way, and a closed connection raises a
ValueError from its parser. Here the ``HANGUP`` line marks the session hung up
and the reader goes on to the command's own reply, so replies stay paired with
their commands whatever the timing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from panoramisk import fast_agi
from panoramisk.utils import parse_agi_result

logger = logging.getLogger(__name__)

HANGUP_LINE = "HANGUP"
# What a command gets when the caller hung up while it was in flight, or when
# Asterisk closed the session: the dictionary panoramisk gives a HANGUP line.
HUNG_UP: dict[str, Any] = {"error": "AGIResultHangup", "msg": "User hungup during execution"}

ALL_KEYS = "0123456789*#"


class CallerHungUp(Exception):
    """The caller hung up while we were talking to the channel."""


class AgiError(Exception):
    """Asterisk refused a command (bad syntax, unknown command)."""


class AgiTransport(Protocol):
    headers: Any

    async def send_command(self, command: str) -> dict[str, Any]: ...


def is_hangup(reply: dict[str, Any]) -> bool:
    """A reply meaning the caller is gone: ``HANGUP``, ``200 result=-1`` (panoramisk's
    AGIAppError) or ``511`` (command not permitted on a dead channel)."""
    return reply.get("error") in ("AGIResultHangup", "AGIAppError") or (
        reply.get("status_code") == 511
    )


class AgiRequest(fast_agi.Request):
    """panoramisk's FastAGI request whose replies stay paired with their commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hung_up = False  # Asterisk sent HANGUP in this session

    async def send_command(self, command: str) -> dict[str, Any]:
        try:
            self.writer.write((command + "\n").encode(self.encoding))
            await self.writer.drain()
        except ConnectionError:
            self.hung_up = True
            return dict(HUNG_UP)
        hangup_in_flight = False
        while True:
            line = await self._line()
            if line is None:  # Asterisk closed the session: the channel is gone
                self.hung_up = True
                return dict(HUNG_UP)
            if line == HANGUP_LINE:
                # Asterisk still answers the command in flight (result=-1 or 511);
                # that answer is read here and never taken for the next command's.
                self.hung_up = hangup_in_flight = True
                continue
            try:
                reply: dict[str, Any] = parse_agi_result(line)
            except ValueError:
                logger.warning("AGI reply not understood for %r: %r", command, line[:200])
                reply = {"error": "AGIProtocolError", "msg": line[:200], "status_code": 0}
            if reply.get("status_code") == 100:  # "100 Trying...": the answer follows
                continue
            if reply.get("error") == "AGIUsageError" and line.startswith("520-"):
                reply["msg"] = await self._usage(reply.get("msg", ""))
            break
        return dict(HUNG_UP) if hangup_in_flight else reply

    async def _line(self) -> str | None:
        raw = await self.reader.readline()
        if not raw.endswith(b"\n"):
            return None  # end of stream (a partial line is no reply either)
        return raw.decode(self.encoding, "replace").rstrip("\r\n")

    async def _usage(self, first: str) -> str:
        """The rest of a multi-line usage error, up to ``520 End of proper usage.``"""
        lines = [first]
        while True:
            line = await self._line()
            if line is None or line.startswith("520 "):
                return "\n".join(lines).strip()
            lines.append(line)


# Characters MSet's argument parser would take as separators, quotes or
# brackets, "$" that EXEC would expand (and AGI line ends).
_MSET_UNSAFE = frozenset("$,\"\\'()[]{}\n\r")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiChannel:
    """The AGI commands the hotline uses, with results as Python values."""

    def __init__(self, transport: AgiTransport) -> None:
        self._transport = transport
        self.env: dict[str, str] = dict(transport.headers)

    def arg(self, index: int) -> str:
        return self.env.get(f"agi_arg_{index}", "")

    async def _command(self, command: str) -> str:
        reply = await self._transport.send_command(command)
        error = reply.get("error")
        if is_hangup(reply):
            raise CallerHungUp(command)
        if error:
            raise AgiError(f"{command!r}: {error} {reply.get('msg', '')}".strip())
        result = reply.get("result", ("", ""))
        return str(result[0])

    async def stream_file(self, path: str, escape_digits: str = "") -> str:
        """Play ``path`` (no extension); returns the key that stopped it, or ''."""
        code = await self._command(f"STREAM FILE {path} {_quote(escape_digits)}")
        return chr(int(code)) if code not in ("", "0") and code.isdigit() else ""

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``path`` and read up to ``max_digits`` keys; '#' ends input early."""
        raw = await self._transport.send_command(f"GET DATA {path} {timeout_ms} {max_digits}")
        if raw.get("error") or is_hangup(raw):
            raise CallerHungUp("GET DATA")
        value = str(raw.get("result", ("", ""))[0])
        return value if value.replace("*", "").replace("#", "").isdigit() or value in "*#" else ""

    async def wait_for_digit(self, timeout_ms: int) -> str:
        code = await self._command(f"WAIT FOR DIGIT {timeout_ms}")
        return chr(int(code)) if code not in ("", "0") else ""

    async def get_full_variable(self, expression: str) -> str:
        """Evaluate ``${...}`` (functions included) on the channel; '' when unset."""
        reply = await self._transport.send_command(f"GET FULL VARIABLE {_quote(expression)}")
        if is_hangup(reply):  # result=-1 too: "" would pass for an unset variable
            raise CallerHungUp("GET FULL VARIABLE")
        result = reply.get("result", ("", ""))
        if str(result[0]) != "1":
            return ""
        return str(result[1]).strip("()")

    async def set_variable(self, name: str, value: str | int) -> None:
        await self._command(f"SET VARIABLE {name} {_quote(str(value))}")

    async def set_variables(self, values: dict[str, str]) -> None:
        """Several variables in one round trip (``EXEC MSet``) when every value is
        plain text MSet passes through unchanged; else one ``SET VARIABLE`` each."""
        if len(values) > 1 and not any(_MSET_UNSAFE.intersection(v) for v in values.values()):
            assignments = ",".join(f"{name}={value}" for name, value in values.items())
            code = await self._command(f"EXEC MSet {_quote(assignments)}")
            if code != "-2":  # -2: no such application
                return
        for name, value in values.items():
            await self.set_variable(name, value)

    async def verbose(self, message: str, level: int = 3) -> None:
        await self._command(f"VERBOSE {_quote(message)} {level}")
