"""Starting and stopping SIPp processes, and the values that reach their command line."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import re
import signal
import sys
from pathlib import Path

_SAFE_USER = re.compile(r"[0-9A-Za-z+*._-]+")
_PR_SET_PDEATHSIG = 1  # prctl option: a signal for the child when its parent dies


def _die_with_parent() -> None:
    """Have the kernel SIGTERM SIPp if the test process dies without stopping it
    (an answerer otherwise serves, and spins, forever)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def spawn_sipp(sipp_bin: str, args: list[str], cwd: Path) -> asyncio.subprocess.Process:
    """SIPp with stdout discarded (it redraws its statistics screen there)."""
    with (cwd / "stderr.txt").open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sipp_bin,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


async def stop_sipp(proc: asyncio.subprocess.Process, grace: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL if SIPp has not gone after ``grace`` seconds."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return proc.returncode


def check_user(value: str, what: str) -> str:
    """``value`` if it is safe as a SIP user part and a SIPp argument, else ValueError."""
    if not _SAFE_USER.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match {_SAFE_USER.pattern}")
    return value
