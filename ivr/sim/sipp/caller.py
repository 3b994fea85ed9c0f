"""The SIPp caller: one call, or a load of calls from one process."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from ivr.sim.sipp.logs import LogTail, logs_text
from ivr.sim.sipp.ports import SippPorts
from ivr.sim.sipp.process import check_user, spawn_sipp, stop_sipp
from ivr.sim.sipp.results import CallResult, LoadResult, call_results
from ivr.sim.sipp.scenario import caller_scenario
from ivr.sim.sipp.steps import CallStep, steps_ms


class SippCaller:
    """Places calls from SIPp: one process per :meth:`call`, one for a whole
    :meth:`run_load`.  Each run gets its own folder under ``workdir``."""

    def __init__(self, workdir: Path, sipp_bin: str = "sipp") -> None:
        self.workdir = Path(workdir)
        self.sipp_bin = sipp_bin
        self._runs = itertools.count(1)

    def _run_dir(self, kind: str) -> Path:
        path = self.workdir / f"{kind}-{next(self._runs):03d}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    async def call(
        self,
        *,
        target: str,
        number: str,
        caller_id: str | None,
        steps: Sequence[CallStep] = (),
        hangup_after_ms: int | None = None,
        timeout_s: float = 60,
        ring_timeout_ms: int | None = None,
    ) -> CallResult:
        """Call ``number`` at ``target`` ("127.0.0.1:PORT"), run ``steps`` once
        answered, then hang up after ``hangup_after_ms`` more, or (``None``) wait
        for the far end's BYE until ``timeout_s`` is spent and hang up then.

        An unanswered call is cancelled after ``ring_timeout_ms`` (default: half
        of ``timeout_s``) counted from the last provisional response.  SIPp is
        killed if it runs ``timeout_s`` + 10 s; the result then says ``timed_out``.
        """
        run = self._run_dir("call")
        ring_ms = ring_timeout_ms if ring_timeout_ms is not None else int(timeout_s * 500)
        bye_wait_ms = max(1000, int(timeout_s * 1000) - steps_ms(steps) - 2000)
        scenario = caller_scenario(
            from_user=None if caller_id is None else check_user(caller_id, "caller_id"),
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            bye_wait_ms=bye_wait_ms,
            ring_timeout_ms=ring_ms,
            pcap_dir=run,
        )
        (run / "caller.xml").write_text(scenario, encoding="ascii")
        ports = SippPorts.allocate()
        args = [
            target, "-sf", "caller.xml", "-s", check_user(number, "number"),
            *ports.args(),
            "-m", "1", "-r", "1000", "-l", "1",  # a high rate places the call at once
            "-cid_str", f"hotline-{uuid.uuid4().hex[:12]}-%u@127.0.0.1",
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
            "-trace_msg", "-message_file", "messages.log",
        ]  # fmt: skip
        proc = await spawn_sipp(self.sipp_bin, args, run)
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s + 10)
        except TimeoutError:
            timed_out = True
        finally:
            exit_code = await stop_sipp(proc)
            ports.release()
        tail = LogTail(run / "events.log")
        tail.poll()
        results = call_results(tail.events)
        result = results.get(1) or CallResult(False, None, None, None, "", None)
        result.exit_code = None if timed_out else exit_code
        result.timed_out = timed_out
        result.log_text = logs_text(
            run / name for name in ("stderr.txt", "errors.log", "events.log", "messages.log")
        )
        return result

    async def run_load(
        self,
        *,
        target: str,
        number: str,
        calls: int,
        rate_cps: float,
        steps: Sequence[CallStep] = (),
        hangup_after_ms: int | None = None,
        caller_ids: Sequence[str] | None = None,
        max_concurrent: int | None = None,
        timeout_s: float = 300,
        call_timeout_s: float = 60,
    ) -> LoadResult:
        """``calls`` calls at ``rate_cps`` from one SIPp process (``-r``/``-m``).

        ``caller_ids`` are used in turn (anonymous when ``None``).  Each call
        behaves as in :meth:`call` with ``timeout_s=call_timeout_s``; the whole
        run is killed after ``timeout_s``.  No message trace is kept (too big).
        """
        run = self._run_dir("load")
        scenario = caller_scenario(
            from_user="[field0]" if caller_ids else None,
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            bye_wait_ms=max(1000, int(call_timeout_s * 1000) - steps_ms(steps) - 2000),
            ring_timeout_ms=int(call_timeout_s * 500),
            pcap_dir=run,
        )
        (run / "caller.xml").write_text(scenario, encoding="ascii")
        ports = SippPorts.allocate()
        args = [
            target, "-sf", "caller.xml", "-s", check_user(number, "number"),
            *ports.args(),
            "-m", str(calls), "-r", f"{rate_cps:g}",
            "-l", str(max_concurrent or calls),
            "-cid_str", f"hotline-{uuid.uuid4().hex[:12]}-%u@127.0.0.1",
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
            "-trace_screen", "-screen_file", "screen.log",
        ]  # fmt: skip
        if caller_ids:
            lines = ["SEQUENTIAL", *(f"{check_user(c, 'caller_id')};" for c in caller_ids)]
            (run / "callers.csv").write_text("\n".join(lines) + "\n", encoding="ascii")
            args += ["-inf", "callers.csv"]
        started = time.time()
        proc = await spawn_sipp(self.sipp_bin, args, run)
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            exit_code = await stop_sipp(proc)
            ports.release()
        elapsed = time.time() - started
        tail = LogTail(run / "events.log")
        tail.poll()
        results = [r for _, r in sorted(call_results(tail.events).items())]
        ok = sum(1 for r in results if r.answered and r.hung_up_by and r.ended_at)
        return LoadResult(
            successful=ok,
            failed=calls - ok,
            elapsed_s=elapsed,
            exit_code=exit_code,
            calls=results,
            timed_out=timed_out,
            log_text=logs_text(run / name for name in ("stderr.txt", "errors.log", "screen.log")),
        )
