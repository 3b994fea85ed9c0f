"""Open311 intake rate: N ``POST requests.json`` per second for S seconds
against a running ``hotline serve --only web`` (the real command, the real
intake), on SQLite or on PostgreSQL (the test rig's throwaway Debian server),
then a count that every submission made exactly one case.

- Open loop: submission i is sent at ``start + i / rate`` whatever the answers
  before it (a slow server shows as latency, not as a lower rate); latency is
  from that scheduled moment to the answer, so queueing in the client counts.
- Every submission has its own ``Idempotency-Key`` and a marker in its
  description. A share of them is sent twice with the same key: half at the
  same moment (two requests racing in the server), half a little later (an
  app retrying after a timeout). Both must answer the first case's code.
- After the run, from the database: one open311 case per submission, each
  marker in exactly one case, no case without a submission (no lost, no
  duplicate), and every retry answered with its original's code.

    nice -n 10 .venv/bin/python bench/intake_rate.py --backend sqlite
    nice -n 10 .venv/bin/python bench/intake_rate.py --backend postgresql

Prints figures; asserts only the counts. Goal (issue 14): p99 < 100 ms.

Facts this relies on: ``hotline serve`` migrates before it listens
(tests/rig/serve.py); the key comes from ``hotline open311-keys add``, whose
second output line is the key.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from sqlalchemy import select

from ivr.cases.models import Case
from ivr.config import load_config
from ivr.db.engine import make_engine, make_session_factory
from tests.rig.postgres import postgres_server
from tests.rig.serve import running_serve, write_serve_config

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
MARKER = "bench-submission-"


@dataclass
class Outcome:
    index: int
    retry: bool
    status: int
    code: str | None
    latency_ms: float
    error: str = ""


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # how late the client sent


def _key(config_path: Path, hotline_id: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "--config", str(config_path), "open311-keys", "add",
         "--hotline", hotline_id, "--app", "bench"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()[1]


async def _send(
    http: ClientSession, url: str, key: str, index: int, retry: bool, at: float, run: Run,
    topic: str,
) -> None:  # fmt: skip
    delay = at - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    run.late_ms.append(max(0.0, time.perf_counter() - at) * 1000)
    data = {
        "api_key": key, "service_code": topic, "lat": f"{21.0 + index % 1000 / 10000:.4f}",
        "long": "105.76", "description": f"Đèn đường hỏng, ngõ {index % 97} ({MARKER}{index}.)",
        "device_id": f"bench-device-{index % 50}",
    }  # fmt: skip
    headers = {"Idempotency-Key": f"bench-{index}"}
    try:
        async with http.post(url, data=data, headers=headers) as answer:
            body = await answer.json(content_type=None)
            status = answer.status
    except Exception as exc:  # a refused connection, a timeout: counted, not raised
        run.outcomes.append(
            Outcome(index, retry, 0, None, (time.perf_counter() - at) * 1000, repr(exc))
        )
        return
    latency = (time.perf_counter() - at) * 1000
    code = body[0].get("service_request_id") if status == 200 else None
    error = "" if status == 200 else str(body)[:200]
    run.outcomes.append(Outcome(index, retry, status, code, latency, error))


async def _load(base_url: str, key: str, topic: str, rate: float, seconds: float,
                retry_share: float) -> Run:  # fmt: skip
    url = base_url + "/open311/v2/requests.json"
    total = int(rate * seconds)
    chosen = random.Random(14)
    run = Run()
    tasks = []
    async with ClientSession(
        connector=TCPConnector(limit=0), timeout=ClientTimeout(total=60)
    ) as http:
        start = time.perf_counter() + 0.5
        for index in range(total):
            at = start + index / rate
            tasks.append(asyncio.create_task(_send(http, url, key, index, False, at, run, topic)))
            if chosen.random() < retry_share:
                # Half race the original, half come back 0.2–2 s later.
                later = 0.0 if index % 2 else chosen.uniform(0.2, 2.0)
                tasks.append(
                    asyncio.create_task(_send(http, url, key, index, True, at + later, run, topic))
                )
        await asyncio.gather(*tasks)
    return run


def _postgres_cpu_seconds(data_dir: Path | None) -> float:
    """CPU of the rig's PostgreSQL server so far: its postmaster and every
    backend (their parent), from /proc; 0 on SQLite."""
    if data_dir is None:
        return 0.0
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a core (Linux
    schedstat, summed over threads alive now): what other programs on the
    machine cost it."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _check(run: Run, config_path: Path, total: int) -> list[str]:
    """What went wrong in the counts (empty: every submission one case)."""
    problems = []
    failed = [o for o in run.outcomes if o.status != 200]
    if failed:
        kinds = Counter((o.status, o.error[:80]) for o in failed)
        problems.append(f"{len(failed)} requests failed: {kinds.most_common(3)}")
    first = {o.index: o.code for o in run.outcomes if not o.retry and o.code}
    for outcome in run.outcomes:
        if outcome.retry and outcome.code and first.get(outcome.index) != outcome.code:
            problems.append(f"retry of {outcome.index} answered {outcome.code}, not "
                            f"{first.get(outcome.index)}")  # fmt: skip
    config = load_config(config_path)
    engine = make_engine(config.database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(Case.code, Case.summary).where(Case.channel == "open311")
            ).all()
    finally:
        engine.dispose()
    markers: Counter[int] = Counter()
    for _code, summary in rows:
        start = summary.find(MARKER)
        if start < 0:
            problems.append(f"a case without a bench marker: {summary[:60]!r}")
            continue
        markers[int(summary[start + len(MARKER) :].split(".")[0])] += 1
    lost = [i for i in range(total) if markers[i] == 0]
    doubled = [i for i, n in markers.items() if n > 1]
    if len(rows) != total:
        problems.append(f"{len(rows)} cases for {total} submissions")
    if lost:
        problems.append(f"{len(lost)} submissions made no case (first: {lost[:5]})")
    if doubled:
        problems.append(f"{len(doubled)} submissions made several cases (first: {doubled[:5]})")
    codes = {code for code, _ in rows}
    answered = {o.code for o in run.outcomes if o.code}
    if answered - codes:
        problems.append(f"{len(answered - codes)} answered codes have no case")
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rate", type=float, default=200.0, help="submissions per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--retry-share", type=float, default=0.05,
                        help="share of submissions sent twice with the same key")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="hotline-intake-bench-"))
    database_url = None
    pg_data: Path | None = None
    if args.backend == "postgresql":
        database_url = postgres_server().new_database()
        pg_data = postgres_server().data

    def tweak(data: dict[str, Any]) -> None:
        # The bench is one app: its key's budget must not be what is measured.
        data["channels"] = {"open311": {"enabled": True, "requests_per_minute": 1_000_000,
                                        "reads_per_minute": 1_000_000}}  # fmt: skip

    config_path = write_serve_config(base, database_url=database_url, tweak=tweak)
    config = load_config(config_path)
    key = _key(config_path, config.hotlines[0].id)
    topic = config.cases.topics[0].code
    total = int(args.rate * args.seconds)
    async with running_serve(config_path) as served:
        cpu_before = _cpu_seconds(served.process.pid)
        db_cpu_before = _postgres_cpu_seconds(pg_data)
        wait_before = _runqueue_wait_seconds(served.process.pid)
        began = time.perf_counter()
        run = await _load(served.base_url, key, topic, args.rate, args.seconds, args.retry_share)
        elapsed = time.perf_counter() - began
        cpu = _cpu_seconds(served.process.pid) - cpu_before
        db_cpu = _postgres_cpu_seconds(pg_data) - db_cpu_before
        waited = _runqueue_wait_seconds(served.process.pid) - wait_before
        log = served.log
    latencies = [o.latency_ms for o in run.outcomes if o.status == 200]
    retries = sum(1 for o in run.outcomes if o.retry)
    rate = len(run.outcomes) / elapsed
    print(f"backend {args.backend}: {total} submissions + {retries} retries in {elapsed:.1f} s "
          f"({rate:.0f} requests/s), cpu cores {os.cpu_count()}")  # fmt: skip
    if latencies:
        print(f"latency ms: p50 {statistics.median(latencies):.1f}  "
              f"p95 {_percentile(latencies, 0.95):.1f}  p99 {_percentile(latencies, 0.99):.1f}  "
              f"max {max(latencies):.1f}")  # fmt: skip
    per_request = cpu * 1000 / len(run.outcomes)
    print(f"hotline serve CPU: {cpu:.1f} s, {per_request:.2f} ms per request "
          f"(one process: about {1000 / per_request:.0f} requests/s per core it gets)")  # fmt: skip
    if pg_data is not None:
        print(f"PostgreSQL server CPU: {db_cpu:.1f} s, "
              f"{db_cpu * 1000 / len(run.outcomes):.2f} ms per request")  # fmt: skip
    print(f"hotline serve waited for a core: {waited:.1f} s in all "
          f"({waited * 1000 / len(run.outcomes):.2f} ms per request), load average "
          f"{os.getloadavg()[0]:.1f}, niceness {os.nice(0)}")  # fmt: skip
    print(
        f"client lateness ms: p99 {_percentile(run.late_ms, 0.99):.1f} "
        "(time the load generator itself sent late)"
    )
    problems = _check(run, config_path, total)
    for problem in problems:
        print("PROBLEM:", problem)
    if problems:
        print(log[-3000:])
        print(f"kept for a look: {base}")
        return 1
    shutil.rmtree(base, ignore_errors=True)
    print(f"counts: {total} submissions, {total} cases, every retry answered its original's code")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
