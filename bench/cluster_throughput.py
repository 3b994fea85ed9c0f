"""Throughput through Kamailio and two Asterisk nodes against one node alone
(issue 15), side by side in one run.

Both set-ups serve the two hotlines of tests/test_tenancy.py; every call
presses 9 in the main menu and is put through to a SIPp phone that answers,
holds ``--hold-ms`` and hangs up (a bridged call, not only an IVR). Half the
calls dial hotline A's number, half hotline B's.

- **one node**: one private Asterisk rendered for a single node
  (``asterisk-config``), the phone at a fixed contact, ``hotline serve --only
  agi`` as its own process.
- **cluster**: Kamailio on 127.0.0.1 (``kamailio-config``), ``node-a``
  (127.0.0.2, owner of A) and ``node-b`` (127.0.0.3, owner of B), the phone
  registered through Kamailio so each node rings it there, the same
  ``hotline serve --only agi`` serving both nodes.

Per rate: calls placed, completed (SIPp saw the answer and the BYE and the
call record shows the phone answered), failed, the calls/s achieved, and the
CPU milliseconds per call of each process (from /proc, every process of its
group: Kamailio forks workers). Prints figures; asserts nothing about time.

    nice -n 10 .venv/bin/python bench/cluster_throughput.py --calls 200 --rates 10,20,40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from ivr.db.engine import make_engine, make_session_factory  # noqa: E402
from ivr.db.models import Call  # noqa: E402
from ivr.sim.polling import wait_for  # noqa: E402
from ivr.sim.sipp import Dtmf, LoadResult, Pause, SippAnswerer, SippCaller  # noqa: E402
from tests.rig.cluster import A_NUMBER, CHAIR_PHONE, prompts_for_both, start_cluster  # noqa: E402
from tests.rig.quick_prompts import write_quick_prompts  # noqa: E402
from tests.rig.stack import Ports, free_udp_port, start_asterisk, write_test_config  # noqa: E402
from tests.test_tenancy import B_NUMBER, add_second_hotline  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEY = "9"


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime (and reaped children's) of every live process in a
    process group, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            total += sum(int(x) for x in fields[11:15])
    return total / CLOCK_TICKS


def to_chair(data: dict[str, Any]) -> None:
    """Key 9 of both hotlines' main menus puts the caller through to t-chair."""
    for hotline in data["hotlines"]:
        hotline["announce_selection"] = False
        menu = hotline["menus"][hotline.get("main_menu", "main")]
        menu["options"][KEY] = f"phone:{CHAIR_PHONE}"


@dataclass
class Setup:
    name: str
    target: str  # where the carrier sends calls
    processes: dict[str, int]  # label → process group id
    database_url: str


async def _load(setup: Setup, base: Path, calls: int, rate: float, tag: str) -> list[LoadResult]:
    """Half the calls to each hotline's number, at half the rate each, at once."""
    caller = SippCaller(base / "calls")
    runs = []
    for index, number in enumerate((A_NUMBER, B_NUMBER)):
        ids = [f"091{tag}{index}{n:04d}" for n in range(calls // 2)]
        runs.append(
            caller.run_load(
                target=setup.target,
                number=number,
                calls=len(ids),
                rate_cps=rate / 2,
                steps=[Pause(500), Dtmf(KEY)],
                hangup_after_ms=None,
                caller_ids=ids,
                timeout_s=calls / rate + 120,
                call_timeout_s=40,
            )
        )
    return list(await asyncio.gather(*runs))


def _completed(database_url: str, tag: str) -> int:
    """Calls of this pass whose record says t-chair answered."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.scalars(
                select(Call).where(Call.caller_number.like(f"+8491{tag}%"))
            ).all()
            return sum(1 for r in rows if r.ended_at and r.answered_by == f"phone:{CHAIR_PHONE}")
    finally:
        engine.dispose()


async def measure(setup: Setup, base: Path, calls: int, rates: list[float], first_tag: int) -> None:
    for number, rate in enumerate(rates):
        tag = f"{first_tag + number:02d}"
        before = {label: group_cpu_seconds(pgid) for label, pgid in setup.processes.items()}
        results = await _load(setup, base, calls, rate, tag)
        placed = sum(len(r.calls) for r in results)
        sipp_ok = sum(r.successful for r in results)
        # The records are closed by the hangup handler just after the BYE.
        with contextlib.suppress(TimeoutError):  # the missing ones count as failures below
            await wait_for(
                lambda t=tag, n=sipp_ok: _completed(setup.database_url, t) >= n, 30, "records"
            )
        ok = min(sipp_ok, _completed(setup.database_url, tag))
        starts = sorted(c.started_at for r in results for c in r.calls if c.started_at)
        span = starts[-1] - starts[0] if len(starts) > 1 else float("nan")
        cpu = {
            label: group_cpu_seconds(pgid) - before[label]
            for label, pgid in setup.processes.items()
        }
        per_call = "  ".join(f"{label} {1000 * s / max(ok, 1):6.2f}" for label, s in cpu.items())
        print(
            f"{setup.name:<10} {rate:>5g} {placed:>6} {ok:>5} {placed - ok:>6} "
            f"{(ok - 1) / span if span else float('nan'):>7.1f}   {per_call}",
            flush=True,
        )


async def one_node(base: Path, prompts: Path, hold_ms: int) -> tuple[Setup, Any]:
    chair = SippAnswerer(
        base / "sipp", CHAIR_PHONE, mode="answer", hold_ms=hold_ms, play_audio=False
    )
    await chair.start()
    ports = Ports()

    def tweak(data: dict[str, Any]) -> None:
        add_second_hotline(data)
        to_chair(data)

    contacts = {p: chair.contact for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")}
    config_path = write_test_config(
        base, ports, contacts, prompts, trunk_port=free_udp_port(), tweak=tweak
    )
    asterisk, config = start_asterisk(base, config_path)
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/hotline"), "-c", str(config_path), "serve", "--only", "agi"],
        stdout=subprocess.DEVNULL, stderr=(base / "serve.log").open("wb"),
        start_new_session=True,
    )  # fmt: skip

    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", ports.agi)
        except OSError:
            return False
        writer.close()
        return True

    await wait_for(listening, 60, "hotline serve to listen", interval=0.2)
    assert asterisk.process is not None
    setup = Setup(
        "one node", f"127.0.0.1:{ports.sip}",
        {"asterisk": asterisk.process.pid, "serve": server.pid}, config.database_url,
    )  # fmt: skip

    async def close() -> None:
        server.terminate()
        server.wait(timeout=15)
        asterisk.stop()
        await chair.stop()

    return setup, close


async def run(calls: int, rates: list[float], hold_ms: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="hotline-cluster-bench-"))
    real = REPO / "prompts"
    prompts = prompts_for_both(write_quick_prompts(real, base / "quick"), base)
    print(f"{os.cpu_count()} cores; {calls} calls per rate (half to each hotline); "
          f"the phone holds {hold_ms} ms; work in {base}")  # fmt: skip
    print(f"{'set-up':<10} {'rate':>5} {'placed':>6} {'ok':>5} {'failed':>6} {'calls/s':>7}   "
          "CPU ms per completed call, per process")  # fmt: skip
    single, close_single = await one_node(base / "one-node", prompts, hold_ms)
    try:
        await measure(single, base / "one-node", calls, rates, 10)
    finally:
        await close_single()
    rig = await start_cluster(
        base / "cluster", prompts, node_ids=("node-a", "node-b"), agent_hold_ms=hold_ms,
        phone_ids=(CHAIR_PHONE,), serve_process=True, tweak=to_chair,
    )  # fmt: skip
    try:
        assert rig.registrations[CHAIR_PHONE][-1] == 200, rig.registrations
        assert rig.kamailio.pid is not None and rig.serve_process is not None
        processes = {"kamailio": rig.kamailio.pid}
        for node_id, node in rig.nodes.items():
            assert node.asterisk.process is not None
            processes[node_id] = node.asterisk.process.pid
        processes["serve"] = rig.serve_process.pid
        setup = Setup("cluster", rig.proxy, processes, rig.config.database_url)
        await measure(setup, base / "cluster", calls, rates, 50)
        shares = {n: node.processed_calls() for n, node in rig.nodes.items()}
        print(f"calls processed per node (Asterisk's count): {shares}")
    finally:
        await rig.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rates", default="10,20,40")
    parser.add_argument("--hold-ms", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.calls, [float(r) for r in args.rates.split(",")], args.hold_ms))


if __name__ == "__main__":
    main()
