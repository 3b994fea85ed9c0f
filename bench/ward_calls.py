"""Load benchmark: N real SIP calls through greeting + ward key + chairman route.

Starts a private Asterisk rendered from the test variant of the example config,
our FastAGI server as a separate process (`hotline serve --only agi`, so its CPU
is measured alone), a SIPp chairman that answers, and one SIPp caller process
placing calls at each rate. Prints, per rate: calls placed, answered, failed,
calls/s achieved, CPU seconds per call of Asterisk and of our server (and their
ratio), and p50/p99 of the time from the caller's last key to the chairman's
phone ringing.

With ``--stall-db SECONDS`` each rate runs twice, the second time with the
database stalled for SECONDS from the start of the pass (SQLite: an exclusive
lock held by another connection; the rig's PostgreSQL with HOTLINE_TEST_DB=
postgresql: its processes stopped with SIGSTOP): key→ring must not change, and
every call record must still be written, complete, once the database is back.

    .venv/bin/python bench/ward_calls.py --calls 300 --rates 10,25,50,100
    .venv/bin/python bench/ward_calls.py --calls 100 --rates 10,25 --stall-db 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.sim.polling import wait_for  # noqa: E402
from ivr.sim.sipp import (  # noqa: E402
    CallResult,
    Dtmf,
    Pause,
    SippAnswerer,
    SippCaller,
    dtmf_end_offset_ms,
)
from tests.rig.quick_prompts import write_quick_prompts  # noqa: E402
from tests.rig.stack import (  # noqa: E402
    HOTLINE_NUMBER,
    Ports,
    start_asterisk,
    write_test_config,
)
from tests.rig.stall import stalled_database  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def quick_prompts(root: Path) -> Path:
    """0.3 s tones for every prompt name, so a call's IVR part takes ~1 s."""
    real = REPO / "prompts"
    if not (real / "vi").is_dir():
        subprocess.run([str(REPO / ".venv/bin/hotline"), "prompts", "build"], check=True)
    return write_quick_prompts(real, root)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(
    calls: int,
    rates: list[float],
    hold_ms: int,
    profile: str | None = None,
    stall_db: float = 0.0,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    chairman = SippAnswerer(
        base / "sipp", "t-chair", mode="answer", hold_ms=hold_ms, play_audio=False
    )
    await chairman.start()
    ports = Ports()

    def no_announcement(data: dict) -> None:  # type: ignore[type-arg]
        data["hotlines"][0]["announce_selection"] = False

    config_path = write_test_config(
        base,
        ports,
        {
            "t-chair": chairman.contact,
            "t-chair-silent": chairman.contact,
            "t-vice": chairman.contact,
            "t-agent": chairman.contact,
        },
        quick_prompts(base / "prompts"),
        trunk_port=chairman.port,
        tweak=no_announcement,
    )
    asterisk, config = start_asterisk(base, config_path)
    assert asterisk.process is not None
    command = [str(REPO / ".venv/bin/hotline")]
    if profile:  # cProfile of the server, written when it stops (SIGTERM → clean exit)
        command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "ivr.cli"]
    server = subprocess.Popen(
        [*command, "--config", str(config_path), "serve", "--only", "agi"],
        stdout=subprocess.DEVNULL,
        stderr=(base / "server.log").open("wb"),
    )
    try:
        await _wait_port(ports.agi)
        print(
            f"Asterisk {asterisk.rx('core show version').split()[1]}, "
            f"{os.cpu_count()} cores; {calls} calls per rate; chairman holds {hold_ms} ms"
        )
        print(
            f"{'rate':>6} {'db stall':>8} {'placed':>7} {'ok':>5} {'failed':>6} {'calls/s':>8} "
            f"{'ast ms/call':>11} {'agi ms/call':>11} {'agi/ast':>8} "
            f"{'key→ring p50':>12} {'p99':>8}"
        )
        stalls = [0.0, stall_db] if stall_db else [0.0]
        passes = [(rate, stall) for rate in rates for stall in stalls]
        for number, (rate, stall) in enumerate(passes):
            chairman.reset()
            ast_before, agi_before = cpu_seconds(asterisk.process.pid), cpu_seconds(server.pid)
            caller_ids = [f"0913{number:02d}{n:04d}" for n in range(calls)]
            started = time.monotonic()
            load = SippCaller(base / "calls").run_load(
                target=f"127.0.0.1:{ports.sip}",
                number=HOTLINE_NUMBER,
                calls=calls,
                rate_cps=rate,
                steps=[Pause(500), Dtmf("5"), Pause(200), Dtmf("03")],
                hangup_after_ms=None,
                caller_ids=caller_ids,
                timeout_s=calls / rate + 120,
                call_timeout_s=40,
            )
            if stall:
                result, _ = await asyncio.gather(load, _stall(config.database_url, stall))
            else:
                result = await load
            # Achieved rate: answered calls over the span in which they were
            # placed (the last calls' talk time is not part of the rate).
            starts = sorted(c.started_at for c in result.calls if c.started_at)
            span = (starts[-1] - starts[0]) if len(starts) > 1 else time.monotonic() - started
            ast_cpu = cpu_seconds(asterisk.process.pid) - ast_before
            agi_cpu = cpu_seconds(server.pid) - agi_before
            latencies = _key_to_ring(result.calls, chairman, caller_ids)
            routed = await _routed_to_chairman(config.database_url, caller_ids, result.successful)
            # A call counts as successful only if SIPp completed it AND the
            # call log shows it reached the chairman with the keys pressed.
            ok = min(result.successful, routed)
            failed = calls - ok
            print(
                f"{rate:>6g} {f'{stall:g} s' if stall else '-':>8} {calls:>7} {ok:>5} "
                f"{failed:>6} {(ok - 1) / span:>8.1f} "
                f"{1000 * ast_cpu / max(ok, 1):>11.2f} {1000 * agi_cpu / max(ok, 1):>11.2f} "
                f"{agi_cpu / ast_cpu if ast_cpu else float('nan'):>8.2f} "
                + (
                    f"{1000 * percentile(latencies, 0.5):>10.1f}ms "
                    f"{1000 * percentile(latencies, 0.99):>6.1f}ms"
                    if latencies
                    else "n/a"
                ),
                flush=True,
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        asterisk.stop()
        await chairman.stop()


def _key_to_ring(
    results: list[CallResult], chairman: SippAnswerer, caller_ids: list[str]
) -> list[float]:
    """Seconds from the end of each caller's last key (when the RFC 2833 end
    event is sent, see ``dtmf_end_offset_ms``) to its chairman's INVITE."""
    rung = {call.caller_id: call.rung_at for call in chairman.calls}
    latencies = []
    for call in results:
        if not call.dtmf_sent_at or not call.call_number:
            continue
        ring = rung.get(caller_ids[(call.call_number - 1) % len(caller_ids)])
        if ring is not None:
            last = call.dtmf_sent_at[-1]
            latencies.append(ring - last.at - dtmf_end_offset_ms(last.digit) / 1000)
    return latencies


async def _stall(database_url: str, seconds: float) -> None:
    async with stalled_database(database_url, at_least=seconds):
        pass


async def _routed_to_chairman(database_url: str, caller_ids: list[str], expected: int) -> int:
    """Calls the call log shows reaching the chairman, once ``expected`` records
    are closed (after a database stall the writer catches up first)."""
    from sqlalchemy import func, select

    from ivr.db.engine import make_engine
    from ivr.db.models import Call

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            closed_calls = select(func.count()).where(
                Call.caller_raw.in_(caller_ids), Call.ended_at.is_not(None)
            )

            def all_closed() -> bool:
                connection.rollback()  # a fresh snapshot for each look
                return (connection.scalar(closed_calls) or 0) >= expected

            with contextlib.suppress(TimeoutError):  # then count what is there
                await wait_for(all_closed, 60, f"{expected} closed records", interval=0.1)
            return int(
                connection.scalar(
                    select(func.count()).where(
                        Call.caller_raw.in_(caller_ids),
                        Call.keys_pressed == "5,03",
                        Call.answered_by == "chairman:dong-ngac",
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


async def _wait_port(port: int, timeout: float = 20) -> None:
    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    await wait_for(listening, timeout, f"the FastAGI server to listen on {port}", interval=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rates", default="10,25,50")
    parser.add_argument("--hold-ms", type=int, default=300)
    parser.add_argument("--profile", help="write a cProfile of the FastAGI server here")
    parser.add_argument(
        "--stall-db",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run each rate again with the database stalled for SECONDS",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    asyncio.run(run(args.calls, rates, args.hold_ms, args.profile, args.stall_db))


if __name__ == "__main__":
    main()
