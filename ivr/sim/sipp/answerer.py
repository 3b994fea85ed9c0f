"""SIPp answerers: the agents', chairmen's and carrier's phones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from ivr.sim.polling import wait_for
from ivr.sim.sipp.logs import LogTail, logs_text
from ivr.sim.sipp.pcap import AUDIO_PCAP
from ivr.sim.sipp.ports import SippPorts, port_bound
from ivr.sim.sipp.process import check_user, spawn_sipp, stop_sipp
from ivr.sim.sipp.scenario import AnswerMode, answerer_scenario


@dataclass
class AnsweredCall:
    """One INVITE an answerer received, and what became of it."""

    call_id: str
    caller_id: str  # user part of From ("anonymous" for a withheld number)
    dialed: str  # user part of the Request-URI (the number a trunk was asked for)
    rung_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: Literal["answerer", "remote", "cancel", "busy"] | None = None


class SippAnswerer:
    """A SIPp UAS playing one phone (agent, chairman, carrier), serving any
    number of calls, in sequence or at once, until stopped.

    Modes: ``answer`` (100, 180, 200 after ``ring_ms``; plays ``g711a.pcap`` so
    the PBX sees media; BYE after ``hold_ms``, or waits for the far end's BYE
    when ``hold_ms == 0``), ``no_answer`` (rings until CANCEL, then 487) and
    ``busy`` (486).

    ``advertise_media_port`` puts another RTP port in the SDP than SIPp's own,
    for tests that capture what the far end sends.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        mode: AnswerMode = "answer",
        hold_ms: int = 2000,
        sipp_bin: str = "sipp",
        *,
        ring_ms: int = 0,
        play_audio: bool = True,
        advertise_media_port: int | None = None,
        port: int | None = None,
    ) -> None:
        if mode not in ("answer", "no_answer", "busy"):
            raise ValueError(f"unknown answerer mode {mode!r}")
        self.name = check_user(name, "answerer name")
        self.mode: AnswerMode = mode
        self.hold_ms = hold_ms
        self.ring_ms = ring_ms
        self.sipp_bin = sipp_bin
        self.dir = Path(workdir) / name
        self._play_audio = play_audio
        self._advertise = advertise_media_port
        self._proc: asyncio.subprocess.Process | None = None
        self._ports: SippPorts | None = None
        self._tail = LogTail(self.dir / "events.log")
        self._calls: dict[str, AnsweredCall] = {}
        self._baseline = 0
        self._fixed_port = port  # e.g. the trunk port a config names; else a free one
        self.port = 0
        self.media_port = 0

    @property
    def contact(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError(f"answerer {self.name} already started")
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in ("events.log", "errors.log", "stderr.txt"):
            (self.dir / stale).unlink(missing_ok=True)
        self._tail = LogTail(self.dir / "events.log")
        self._calls, self._baseline = {}, 0
        self._ports = SippPorts.allocate(self._fixed_port)
        self.port, self.media_port = self._ports.sip, self._ports.media
        media = str(self._advertise) if self._advertise else "[media_port]"
        audio = AUDIO_PCAP if self._play_audio and AUDIO_PCAP.is_file() else None
        scenario = answerer_scenario(self.mode, self.hold_ms, self.ring_ms, media, audio)
        (self.dir / "answerer.xml").write_text(scenario, encoding="ascii")
        args = [
            "-sf", "answerer.xml",
            *self._ports.args(),
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
        ]  # fmt: skip
        self._proc = await spawn_sipp(self.sipp_bin, args, self.dir)
        await self._wait(lambda: port_bound(self.port), 10, "SIPp to bind its port")

    async def stop(self) -> None:
        if self._proc is not None:
            await stop_sipp(self._proc)
            self._proc = None
        if self._ports is not None:
            self._ports.release()
            self._ports = None
        self._refresh()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what happened

    def _refresh(self) -> None:
        for ev in self._tail.poll():
            call = self._calls.get(ev.call_id)
            if ev.kind == "INVITE":
                caller_id, _, dialed = ev.extra.partition("|")
                self._calls[ev.call_id] = AnsweredCall(ev.call_id, caller_id, dialed, ev.at)
                continue
            if call is None:
                continue
            match ev.kind:
                case "ANSWERED":
                    call.answered_at = ev.at
                case "BYE_TX":
                    call.ended_by = call.ended_by or "answerer"
                case "BYE_RX":
                    call.ended_by = call.ended_by or "remote"
                case "CANCEL_RX":
                    call.ended_by = "cancel"
                case "BUSY":
                    call.ended_by = "busy"
                case "END":
                    call.ended_at = ev.at

    @property
    def calls(self) -> list[AnsweredCall]:
        """Calls since the start or the last :meth:`reset`, in arrival order."""
        self._refresh()
        return list(self._calls.values())[self._baseline :]

    def reset(self) -> None:
        """Forget earlier calls (for session-wide phones shared by tests)."""
        self._refresh()
        self._baseline = len(self._calls)

    @property
    def rung_count(self) -> int:
        return len(self.calls)

    @property
    def ring_times(self) -> list[float]:
        return [c.rung_at for c in self.calls]

    @property
    def caller_ids(self) -> list[str]:
        return [c.caller_id for c in self.calls]

    @property
    def answered_count(self) -> int:
        return sum(1 for c in self.calls if c.answered_at is not None)

    def log_text(self) -> str:
        return logs_text(self.dir / name for name in ("stderr.txt", "errors.log", "events.log"))

    async def wait_rung(self, count: int = 1, timeout: float = 20) -> None:
        await self._wait(lambda: self.rung_count >= count, timeout, f"{count} INVITE(s)")

    async def wait_answered(self, count: int = 1, timeout: float = 20) -> None:
        await self._wait(lambda: self.answered_count >= count, timeout, f"{count} answer(s)")

    async def wait_ended(self, count: int = 1, timeout: float = 20) -> None:
        """Until ``count`` calls are over (SIPp has left the scenario)."""

        def ended() -> bool:
            return sum(1 for c in self.calls if c.ended_at is not None) >= count

        await self._wait(ended, timeout, f"{count} ended call(s)")

    async def _wait(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``probe`` holds: SIPp reports only by appending to its event log,
        so the log is read every 10 ms (each read is one small ``read()``)."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"answerer {self.name} is not running")

        def done() -> bool:
            if probe():
                return True
            if proc.returncode is not None:
                raise RuntimeError(
                    f"SIPp answerer {self.name} exited ({proc.returncode}) while "
                    f"waiting for {what}\n{self.log_text()}"
                )
            return False

        try:
            await wait_for(done, timeout, what, interval=0.01)
        except TimeoutError:
            raise TimeoutError(
                f"answerer {self.name} ({self.mode}, {self.contact}): no {what} within "
                f"{timeout}s; saw {len(self.calls)} call(s)\n{self.log_text()}"
            ) from None
