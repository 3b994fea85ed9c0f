"""SIGTERM drains ``hotline serve --only agi`` within a bound.

The real command in its own process, on a free loopback port, with a fresh
database; the test plays Asterisk's side of FastAGI sessions over TCP.

Facts of the design this checks (ivr/agi/server.py ``drain``, ivr/service.py):
- on the first SIGTERM the server stops taking calls: a new ``hotline-entry``
  session is answered with no route at all (no command is sent, the session
  closes), so the dialplan takes its fallback branch (the classic script),
  and its record says ``fallback:server-stopping``;
- the listener itself stays open while calls are up, because each call's
  hangup handler (``call-ended``) is a new FastAGI session: closing the port
  at once left the records of calls up "in progress"
  (tests/test_call_path_storage_e2e.py);
- once no call is up the process flushes the call log and exits 0, without
  waiting for the bound; after exit the port refuses connections;
- the bound (``--drain-seconds``) passing, or a second SIGTERM, ends the wait
  for calls up; the process still exits 0 and the record of the call cut off
  is in the database (still open: the fallback spool or the next start's
  sweep closes it). From Python 3.12 the listener's ``wait_closed()`` also
  waits for open sessions, so this needs its own bound (ivr/service.py
  AGI_CLOSE_SECONDS): under Python 3.13 without it the process never exits
  while a caller sits in the menu (checked by hand with .venv313).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import Call
from ivr.sim.polling import wait_for
from tests.rig.serve import write_serve_config
from tests.rig.stack import REPO

pytestmark = pytest.mark.db

HOTLINE = "02437655555"
START_SECONDS = 90.0
EXIT_SECONDS = 60.0  # a timeout, far below the long bounds used where the exit must not wait


@dataclass
class AgiSession:
    """Asterisk's side of one FastAGI session: sends the channel's headers, then
    answers each command the server writes as Asterisk 22 would (res_agi.c),
    pressing ``keys`` at successive GET DATA prompts. ``hold_at_first_prompt``
    stops answering at the first GET DATA until ``release`` is set: a caller
    mid-menu."""

    port: int
    headers: dict[str, str]
    keys: list[str] = field(default_factory=list)
    hold_at_first_prompt: bool = False
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    at_prompt: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Future[None] | None = None  # set by start()

    def start(self) -> asyncio.Future[None]:
        self.task = asyncio.ensure_future(self.run())
        return self.task

    async def run(self) -> None:
        """Until the server closes the session."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
        writer.write(head.encode() + b"\n")
        await writer.drain()
        try:
            while line := await reader.readline():
                command = line.decode().rstrip("\n")
                self.commands.append(command)
                if command.upper().startswith("GET DATA") and not self.at_prompt.is_set():
                    self.at_prompt.set()
                    if self.hold_at_first_prompt:
                        await self.release.wait()
                writer.write(self._reply(command).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _reply(self, command: str) -> str:
        verb = command.upper()
        if verb.startswith("STREAM FILE"):
            return "200 result=0 endpos=8000"
        if verb.startswith("GET DATA"):
            return f"200 result={self.keys.pop(0)}" if self.keys else "200 result= (timeout)"
        if verb.startswith("WAIT FOR DIGIT"):
            return "200 result=0"
        if verb.startswith("GET FULL VARIABLE"):
            return "200 result=0"
        if verb.startswith("EXEC MSET"):
            for assignment in command.split(" ", 2)[2].strip('"').split(","):
                name, _, value = assignment.partition("=")
                self.variables[name] = value
            return "200 result=0"
        if verb.startswith("SET VARIABLE"):
            _, _, name, value = command.split(" ", 3)
            self.variables[name] = value.strip('"')
            return "200 result=1"
        return "200 result=1"


def entry_headers(port: int, uniqueid: str, caller: str) -> dict[str, str]:
    return {
        "agi_network": "yes",
        "agi_network_script": "hotline-entry",
        "agi_request": f"agi://127.0.0.1:{port}/hotline-entry",
        "agi_channel": f"PJSIP/pstn-{uniqueid}",
        "agi_language": "vi",
        "agi_uniqueid": uniqueid,
        "agi_callerid": caller,
        "agi_extension": HOTLINE,
        "agi_arg_1": HOTLINE,
        "agi_arg_2": uniqueid,
    }


def ended_headers(port: int, uniqueid: str, route: str, answered: str) -> dict[str, str]:
    return {
        "agi_network": "yes",
        "agi_network_script": "call-ended",
        "agi_request": f"agi://127.0.0.1:{port}/call-ended",
        "agi_uniqueid": uniqueid,
        "agi_arg_1": uniqueid,
        "agi_arg_2": route,
        "agi_arg_3": answered,
        "agi_arg_4": "ANSWER",
        "agi_arg_5": "",
        "agi_arg_6": "",
        "agi_arg_7": "",
    }


@dataclass
class AgiServe:
    process: subprocess.Popen[bytes]
    port: int
    database_url: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def exit_code(self) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"hotline serve did not exit:\n{self.log}") from None

    def record(self, uniqueid: str) -> Call | None:
        sessions = make_session_factory(make_engine(self.database_url))
        with sessions() as session:
            return session.scalars(select(Call).where(Call.uniqueid == uniqueid)).one_or_none()


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


@asynccontextmanager
async def agi_serve(base: Path, prompts: Path, drain_seconds: float) -> AsyncIterator[AgiServe]:
    """``hotline serve --only agi --drain-seconds N`` on a free port; killed at
    the end if the test left it running."""

    def tweak(data: dict[str, Any]) -> None:
        data.setdefault("paths", {})["prompts"] = str(prompts)  # built: nothing to synthesize

    config = write_serve_config(base, tweak=tweak)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    port = int(data["asterisk"]["agi"]["port"])
    log_path = base / f"serve-agi-{os.getpid()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "--config", str(config), "serve",
             "--only", "agi", "--drain-seconds", str(drain_seconds)],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = AgiServe(process, port, data["database"]["url"], log_path)

    async def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"hotline serve exited ({process.returncode}):\n{served.log}")
        return not await _refused(port)

    try:
        await wait_for(listening, START_SECONDS, "hotline serve --only agi", interval=0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _mid_menu(served: AgiServe, uniqueid: str, keys: list[str]) -> AgiSession:
    """A caller in the greeting menu: the server waits for their key."""
    session = AgiSession(served.port, entry_headers(served.port, uniqueid, "0912345678"),
                         keys=keys, hold_at_first_prompt=True)  # fmt: skip
    session.start()
    await asyncio.wait_for(session.at_prompt.wait(), 30)
    return session


async def _log_says(served: AgiServe, text: str) -> None:
    async def said() -> bool:
        return text in served.log

    await wait_for(said, 30, f"the log to say {text!r}", interval=0.05)


def _task(session: AgiSession) -> asyncio.Future[None]:
    assert session.task is not None
    return session.task


async def test_sigterm_lets_the_call_up_finish_refuses_new_calls_and_exits_0(
    tmp_path: Path, quick_prompts: Path
) -> None:
    """Before (as the issue found it) a second SIGTERM was ignored and nothing
    said the flow in progress was served to its end; here the drain bound is
    600 s and the exit comes as soon as the one call up has hung up."""
    async with agi_serve(tmp_path, quick_prompts, drain_seconds=600) as served:
        call = await _mid_menu(served, "1800000000.1", keys=["5", "03"])  # wards, Đông Ngạc
        served.process.send_signal(signal.SIGTERM)
        await _log_says(served, "waiting up to 600 s for 1 calls to end")

        # A new call while draining: no flow, no command; the dialplan falls back.
        late = AgiSession(served.port, entry_headers(served.port, "1800000000.2", "0912345679"))
        await asyncio.wait_for(late.run(), 30)
        assert late.commands == []
        assert served.process.poll() is None  # still draining: one call is up

        # The caller up presses their keys: the flow goes on to its route.
        call.release.set()
        await asyncio.wait_for(_task(call), 30)
        assert call.variables.get("HL_ROUTE") == "dial", call.commands
        assert "chairman:dong-ngac" in call.variables.get("HL_TARGETS", "")
        assert served.process.poll() is None  # its hangup handler has not come yet

        # Its hangup handler reaches the draining server; then the process exits.
        ended = AgiSession(served.port, ended_headers(served.port, "1800000000.1", "dial",
                                                      "chairman:dong-ngac"))  # fmt: skip
        await asyncio.wait_for(ended.run(), 30)
        assert await served.exit_code() == 0, served.log
        assert await _refused(served.port)

        record = served.record("1800000000.1")
        assert record is not None, served.log
        assert record.keys_pressed == "5,03"
        assert record.area_code == "dong-ngac"
        assert record.answered_by == "chairman:dong-ngac"
        assert record.outcome == "answered" and record.ended_at is not None
        late_record = served.record("1800000000.2")
        assert late_record is not None
        assert late_record.last_step == "fallback:server-stopping"


async def test_the_drain_bound_passing_exits_0_with_the_call_recorded(
    tmp_path: Path, quick_prompts: Path
) -> None:
    async with agi_serve(tmp_path, quick_prompts, drain_seconds=2) as served:
        call = await _mid_menu(served, "1800000001.1", keys=[])
        served.process.send_signal(signal.SIGTERM)
        # The caller never presses a key: the bound ends the wait.
        assert await served.exit_code() == 0, served.log
        assert "stopping with 1 calls still up" in served.log
        call.release.set()  # the caller presses nothing; their session was cut by the exit
        await asyncio.wait_for(_task(call), 30)
        assert call.variables == {}  # no route: Asterisk's AGISTATUS takes the fallback
        record = served.record("1800000001.1")
        assert record is not None, served.log  # the call's insert was flushed
        assert record.ended_at is None  # closed later by the spool or the sweep


async def test_a_second_sigterm_stops_waiting_for_calls_up(
    tmp_path: Path, quick_prompts: Path
) -> None:
    """Before: the second SIGTERM was ignored and the process waited out the
    whole bound (600 s here)."""
    async with agi_serve(tmp_path, quick_prompts, drain_seconds=600) as served:
        call = await _mid_menu(served, "1800000002.1", keys=[])
        served.process.send_signal(signal.SIGTERM)
        await _log_says(served, "waiting up to 600 s for 1 calls to end")
        served.process.send_signal(signal.SIGTERM)
        assert await served.exit_code() == 0, served.log
        assert "second stop signal: not waiting for 1 calls up" in served.log
        call.release.set()
        await asyncio.wait_for(_task(call), 30)
        assert served.record("1800000002.1") is not None, served.log
