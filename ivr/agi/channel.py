"""Typed AGI commands over one panoramisk request; hangup becomes an exception."""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"


class CallerHungUp(Exception):
    """The caller hung up while we were talking to the channel."""


class AgiError(Exception):
    """Asterisk refused a command (bad syntax, unknown command)."""


class AgiTransport(Protocol):
    headers: Any

    async def send_command(self, command: str) -> dict[str, Any]: ...


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
        if error in ("AGIResultHangup", "AGIAppError") or reply.get("status_code") == 511:
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
        if raw.get("error") or raw.get("status_code") == 511:
            raise CallerHungUp("GET DATA")
        value = str(raw.get("result", ("", ""))[0])
        return value if value.replace("*", "").replace("#", "").isdigit() or value in "*#" else ""

    async def wait_for_digit(self, timeout_ms: int) -> str:
        code = await self._command(f"WAIT FOR DIGIT {timeout_ms}")
        return chr(int(code)) if code not in ("", "0") else ""

    async def get_full_variable(self, expression: str) -> str:
        """Evaluate ``${...}`` (functions included) on the channel; '' when unset."""
        reply = await self._transport.send_command(f"GET FULL VARIABLE {_quote(expression)}")
        if reply.get("error") == "AGIResultHangup" or reply.get("status_code") == 511:
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
