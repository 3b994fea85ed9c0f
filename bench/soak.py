"""Soak: real calls at a steady rate through the whole stack for a bounded
time, with a fault injected every few minutes; then what became of each call.

The stack, all on loopback: a private Asterisk rendered from the test variant
of the example config (tests/rig/stack.py), the rig's PostgreSQL
(tests/rig/postgres.py; SQLite with --db sqlite), ``hotline serve`` with every
part (FastAGI, AMI queue manager, web console) as a child process so it can be
killed, SIPp citizens and SIPp phones that answer:

- ``ward``: 5 then 03 → Phường Đông Ngạc's chairman answers (t-chair);
- ``queue``: 3 → the "field" queue → its SIPp agent answers (t-field);
- ``voicemail``: 5 then 05 → Liên Mạc's chairman does not answer (3 s), the
  caller leaves a message (a case) and hangs up.

Faults, one every ``--fault-every`` seconds, in turn:

- ``pg-pause``: every PostgreSQL process stopped (SIGSTOP) for 10 s;
- ``ami-cut``: the AMI link reset and refused for 5 s (serve reaches AMI
  through a relay, tests/rig/tcp_relay.py: no root, no iptables needed);
- ``asterisk-restart``: Asterisk stopped (``core stop now``) and started again;
- ``serve-kill``: ``hotline serve`` SIGKILLed and started again 3 s later (as
  systemd's Restart= would). Last in the cycle, so the first life of serve is
  the longest, for the memory figure.

Each call is judged from the SIPp results and the answerers' logs and the
call log: it reached the right human, the operator (the fallback), the
message, or nothing (dead-ended). Calls placed while Asterisk was down are
counted apart: they could not start, through no fault of ours.

    nice -n 5 .venv/bin/python bench/soak.py --minutes 30 --rate 1
    .venv/bin/python bench/soak.py --minutes 3 --fault-every 40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.sim.sipp import (  # noqa: E402
    AUDIO_PCAP,
    CallResult,
    Dtmf,
    Pause,
    PlayAudio,
    SippAnswerer,
    SippCaller,
)
from tests.rig.quick_prompts import write_quick_prompts  # noqa: E402
from tests.rig.stack import (  # noqa: E402
    HOTLINE_NUMBER,
    Ports,
    free_tcp_port,
    start_asterisk,
    write_test_config,
)
from tests.rig.tcp_relay import TcpRelay  # noqa: E402

FAULTS = ("pg-pause", "ami-cut", "asterisk-restart", "serve-kill")
PG_PAUSE_SECONDS = 10.0
AMI_CUT_SECONDS = 5.0
SERVE_DOWN_SECONDS = 3.0
WARM_UP_SECONDS = 60.0  # RSS "after warm-up": imports, pools and caches filled
SAMPLE_SECONDS = 5.0

WARD = [Pause(600), Dtmf("5"), Pause(600), Dtmf("03")]
QUEUE = [Pause(600), Dtmf("3")]
# 3 s of ringing the silent chairman, the intro and the beep (quick prompts:
# 0.3 s tones), then 7 s of speech and # to end the message: the server opens
# the case, reads its code back and hangs up. A message without sound opens
# no case (a bare WAV header), so the caller must speak.
VOICEMAIL = [
    Pause(600), Dtmf("5"), Pause(600), Dtmf("05"), Pause(4500), PlayAudio(AUDIO_PCAP), Dtmf("#"),
]  # fmt: skip
KINDS = ("ward", "queue", "voicemail")
RIGHT_HUMAN = {"ward": "t-chair", "queue": "t-field"}


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Life:
    """One life of a process: its RSS samples (seconds since soak start, KiB)."""

    what: str
    pid: int
    started: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    ended: float | None = None

    def sample(self, now: float) -> None:
        value = rss_kib(self.pid)
        if value is not None:
            self.samples.append((now, value))

    def figures(self) -> dict[str, Any]:
        if not self.samples:
            return {"what": self.what, "pid": self.pid}
        first, last = self.samples[0][1], self.samples[-1][1]
        warm = next((v for t, v in self.samples if t - self.started >= WARM_UP_SECONDS), None)
        span = self.samples[-1][0] - self.started
        return {
            "what": self.what,
            "pid": self.pid,
            "from_s": round(self.started),
            "lived_s": round(span),
            "start_mib": first / 1024,
            "warm_mib": None if warm is None else warm / 1024,
            "end_mib": last / 1024,
            "growth_pct": 100 * (last - first) / first,
            "growth_after_warmup_pct": None if warm is None else 100 * (last - warm) / warm,
        }


@dataclass
class Placed:
    number: int
    kind: str
    caller: str
    at: float  # seconds since soak start
    result: CallResult | None = None
    verdict: str = ""
    record: str = ""  # "closed", "open", "missing"
    rows: list[str] = field(default_factory=list)  # outcome/route/step/answered_by/uniqueid
    message: bool = False  # a case (voicemail) was opened from the call
    message_on_disk: bool = False  # a spoken message was recorded (whether or not a case)


@dataclass
class FaultDone:
    kind: str
    began: float
    ended: float
    note: str = ""


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base = Path(args.workdir or tempfile.mkdtemp(prefix="hotline-soak-"))
        self.t0 = time.monotonic()
        self.placed: list[Placed] = []
        self.faults: list[FaultDone] = []
        self.serve_lives: list[Life] = []
        self.asterisk_lives: list[Life] = []
        self.asterisk_down: list[tuple[float, float]] = []  # windows when calls cannot start
        self.serve: subprocess.Popen[bytes] | None = None
        self._serve_count = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def log(self, text: str) -> None:
        print(f"[{self.now():7.1f}s] {text}", flush=True)

    # --- the stack ----------------------------------------------------------------

    async def start(self) -> None:
        if self.args.db == "postgresql":
            os.environ["HOTLINE_TEST_DB"] = "postgresql"
        self.phones = {
            "t-chair": SippAnswerer(self.base / "sipp", "t-chair", hold_ms=2000, play_audio=False),
            "t-chair-silent": SippAnswerer(self.base / "sipp", "t-chair-silent", mode="no_answer"),
            "t-vice": SippAnswerer(self.base / "sipp", "t-vice", hold_ms=2000, play_audio=False),
            "t-agent": SippAnswerer(self.base / "sipp", "t-agent", hold_ms=2000, play_audio=False),
            "t-field": SippAnswerer(self.base / "sipp", "t-field", hold_ms=2000, play_audio=False),
        }
        self.carrier = SippAnswerer(self.base / "sipp", "carrier", hold_ms=1000, play_audio=False)
        for phone in [*self.phones.values(), self.carrier]:
            await phone.start()
        self.ports = Ports()
        web_port = free_tcp_port()
        var = self.base / "var"
        var.mkdir(parents=True, exist_ok=True)

        def tweak(data: dict[str, Any]) -> None:
            data["agents"].append({"id": "t-field", "name": "Điện thoại viên hiện trường",
                                   "phone": "t-field"})  # fmt: skip
            queue = next(q for q in data["queues"] if q["id"] == "field")
            queue.update(members=["t-field"], ring_seconds=5, wrapup_seconds=0, auto_pause=False)
            data["web"] = {
                **(data.get("web") or {}),
                "bind": "127.0.0.1",
                "port": web_port,
                "cookie_secure": False,
                "secret_file": str(var / "web-secret"),
            }
            data["sms"] = {"kind": "file", "path": str(var / "sms-outbox.jsonl")}

        # Built (or brought up to date) as the suite's fixture does: the quick
        # tones carry the built manifest, and a stale one makes Asterisk's rig
        # rebuild every prompt in real speech (a 10 s intro: the caller's message
        # then came before the beep and no voicemail was left).
        from ivr.config import load_config
        from ivr.prompt_setup import build_hotline_prompts

        build_hotline_prompts(load_config(REPO / "examples" / "bac-tu-liem.yaml"))
        real_prompts = REPO / "prompts"
        config_path = write_test_config(
            self.base,
            self.ports,
            {pid: phone.contact for pid, phone in self.phones.items()},
            write_quick_prompts(real_prompts, self.base / "prompts"),
            trunk_port=self.carrier.port,
            tweak=tweak,
        )
        self.asterisk, self.config = start_asterisk(self.base, config_path)
        self._asterisk_life()
        # serve reaches AMI through the relay, so the link can be cut.
        self.relay = TcpRelay(upstream_port=self.ports.ami)
        await self.relay.start()
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        data["asterisk"]["ami"]["port"] = self.relay.port
        self.serve_config = self.base / "hotline-serve.yaml"
        self.serve_config.write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        self.web_port = web_port
        await self.start_serve()
        self.caller = SippCaller(self.base / "calls")
        self.log(
            f"stack up in {self.base}: Asterisk SIP {self.ports.sip}, AGI {self.ports.agi}, "
            f"AMI {self.ports.ami} (relay {self.relay.port}), web {web_port}, "
            f"db {self.config.database_url.split('@')[-1]}"
        )

    def _asterisk_life(self) -> None:
        assert self.asterisk.process is not None
        life = Life("asterisk", self.asterisk.process.pid, self.now())
        life.sample(self.now())
        self.asterisk_lives.append(life)

    async def start_serve(self) -> None:
        self._serve_count += 1
        log = (self.base / f"serve-{self._serve_count}.log").open("wb")
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "--config", str(self.serve_config), "serve"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        for port in (self.ports.agi, self.web_port):
            while not await _listening(port):
                if self.serve.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hotline serve did not start; see {self.base}/serve-*.log")
                await asyncio.sleep(0.1)
        life = Life("serve", self.serve.pid, self.now())
        life.sample(self.now())
        self.serve_lives.append(life)
        self.log(f"hotline serve #{self._serve_count} up (pid {self.serve.pid})")

    async def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.serve.wait, 40)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        with contextlib.suppress(Exception):
            await self.relay.stop()
        with contextlib.suppress(Exception):
            self.asterisk.stop()
        for phone in [*self.phones.values(), self.carrier]:
            with contextlib.suppress(Exception):
                await phone.stop()

    # --- faults -------------------------------------------------------------------

    async def fault(self, kind: str) -> None:
        began = self.now()
        note = ""
        self.log(f"fault: {kind}")
        if kind == "pg-pause":
            from tests.rig.stall import stalled_database

            async with stalled_database(self.config.database_url, at_least=PG_PAUSE_SECONDS):
                pass
        elif kind == "ami-cut":
            cut = await self.relay.cut(AMI_CUT_SECONDS)
            note = f"{cut} link(s) reset"
        elif kind == "asterisk-restart":
            self._end_life(self.asterisk_lives)
            await asyncio.to_thread(self.asterisk.stop)
            await asyncio.to_thread(self.asterisk.start)
            self._asterisk_life()
            self.asterisk_down.append((began, self.now()))
        elif kind == "serve-kill":
            assert self.serve is not None
            self._end_life(self.serve_lives)
            self.serve.kill()
            await asyncio.to_thread(self.serve.wait)
            await asyncio.sleep(SERVE_DOWN_SECONDS)
            await self.start_serve()
        self.faults.append(FaultDone(kind, began, self.now(), note))
        self.log(f"fault {kind} over after {self.now() - began:.1f} s {note}")

    def _end_life(self, lives: list[Life]) -> None:
        lives[-1].sample(self.now())
        lives[-1].ended = self.now()

    # --- calls --------------------------------------------------------------------

    async def place(self, number: int) -> None:
        kind = KINDS[number % len(KINDS)]
        caller = f"0916{self.args.run_id:02d}{number:04d}"
        placed = Placed(number, kind, caller, self.now())
        self.placed.append(placed)
        steps = {"ward": WARD, "queue": QUEUE, "voicemail": VOICEMAIL}[kind]
        try:
            placed.result = await self.caller.call(
                target=f"127.0.0.1:{self.ports.sip}",
                number=HOTLINE_NUMBER,
                caller_id=caller,
                steps=steps,
                hangup_after_ms=None,
                timeout_s=60,
                ring_timeout_ms=10000,
            )
        except Exception as exc:  # a SIPp that could not start is a failed call, not a crash
            self.log(f"call {number} ({kind}) could not run: {exc!r}")

    async def run(self) -> None:
        minutes, rate = self.args.minutes, self.args.rate
        end = minutes * 60
        faults = list(self.args.faults)
        next_fault = self.args.fault_every
        fault_task: asyncio.Task[None] | None = None
        number = 0
        next_call = self.now()
        next_sample = 0.0
        while self.now() < end:
            now = self.now()
            if now >= next_call:
                number += 1
                task = asyncio.create_task(self.place(number))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                next_call += 1 / rate
            if now >= next_sample:
                self.serve_lives[-1].sample(now)
                self.asterisk_lives[-1].sample(now)
                next_sample = now + SAMPLE_SECONDS
            if (
                faults
                and now >= next_fault
                and (fault_task is None or fault_task.done())
                and end - now > 20  # leave time for a fault to end inside the run
            ):
                kind = faults[len(self.faults) % len(faults)]
                fault_task = asyncio.create_task(self.fault(kind))
                next_fault += self.args.fault_every
            await asyncio.sleep(min(0.05, max(0.0, next_call - self.now())))
        if fault_task is not None:
            await fault_task
        self.log(f"{number} calls placed; waiting for the last ones to end")
        await asyncio.gather(*list(self._tasks))
        self.serve_lives[-1].sample(self.now())
        self.asterisk_lives[-1].sample(self.now())

    # --- judging ------------------------------------------------------------------

    async def judge(self) -> dict[str, Any]:
        from sqlalchemy import select

        from ivr.cases.models import Case
        from ivr.db.engine import make_engine
        from ivr.db.models import Call

        callers = {p.caller: p for p in self.placed}
        engine = make_engine(self.config.database_url)
        records: dict[str, list[Any]] = {}
        messages: set[str] = set()

        def read() -> int:
            records.clear()
            with engine.connect() as connection:
                rows = connection.execute(
                    select(
                        Call.caller_raw, Call.uniqueid, Call.ended_at, Call.outcome,
                        Call.route_kind, Call.last_step, Call.answered_by,
                    ).where(Call.caller_raw.in_(list(callers)))
                ).all()  # fmt: skip
                # A message reached us when the call opened a case (voicemail).
                messages.clear()
                messages.update(
                    connection.scalars(
                        select(Case.call_uniqueid).where(Case.call_uniqueid.is_not(None))
                    )
                )
            for row in rows:
                records.setdefault(row.caller_raw, []).append(row)
            return sum(1 for rows in records.values() for r in rows if r.ended_at is not None)

        # The writer catches up (and serve ingests the fallback script's spool).
        deadline, previous = time.monotonic() + self.args.settle, -1
        while time.monotonic() < deadline:
            closed = read()
            if closed == previous and closed >= len(self.placed):
                break
            previous = closed
            await asyncio.sleep(3)
        read()
        engine.dispose()

        answered = {name: _answered_by(phone) for name, phone in self.phones.items()}
        for p in self.placed:
            rows = records.get(p.caller, [])
            p.record = (
                "missing"
                if not rows
                else ("closed" if all(r.ended_at is not None for r in rows) else "open")
            )
            p.rows = [
                f"{r.outcome}/{r.route_kind}/{r.last_step}/{r.answered_by}/{r.uniqueid}"
                for r in rows
            ]
            p.message = any(r.uniqueid in messages for r in rows)
            p.message_on_disk = p.kind == "voicemail" and any(
                _spoken(self.base / "recordings", r.uniqueid) for r in rows
            )
            p.verdict = self._verdict(p, rows, answered)
        return self.report(records)

    def _in_asterisk_down(self, at: float, slack: float = 2.0) -> bool:
        return any(a - slack <= at <= b + slack for a, b in self.asterisk_down)

    def _verdict(self, p: Placed, rows: list[Any], answered: dict[str, set[str]]) -> str:
        result = p.result
        up = result is not None and result.answered
        right = RIGHT_HUMAN.get(p.kind)
        if right and p.caller in answered[right]:
            return "right human"
        if p.kind == "voicemail" and p.message:
            return "message"
        if p.message_on_disk:  # the caller spoke to the machine, but no case came of it
            return "message, no case"
        if p.caller in answered["t-agent"]:
            return "operator"
        if p.caller in answered["t-vice"]:
            return "other human"
        if not up and self._in_asterisk_down(p.at):
            return "no start (Asterisk down)"
        if up and result is not None and result.ended_at is not None:
            ended = result.ended_at - (time.time() - time.monotonic()) - self.t0
            if self._in_asterisk_down(ended):
                return "cut (Asterisk restart)"
        return "dead-ended"

    def report(self, records: dict[str, list[Any]]) -> dict[str, Any]:
        verdicts = Counter(p.verdict for p in self.placed)
        no_start = verdicts["no start (Asterisk down)"]
        could_start = [p for p in self.placed if p.verdict != "no start (Asterisk down)"]
        lost = [p for p in could_start if p.record == "missing"]
        open_records = [p for p in could_start if p.record == "open"]
        duplicates = sum(1 for rows in records.values() if len(rows) > 1)
        dead = [p for p in self.placed if p.verdict == "dead-ended"]
        no_case = [p for p in self.placed if p.verdict == "message, no case"]
        summary = {
            "minutes": self.args.minutes,
            "rate": self.args.rate,
            "placed": len(self.placed),
            "by_kind": dict(Counter(p.kind for p in self.placed)),
            "verdicts": dict(verdicts),
            "records_written": sum(len(rows) for rows in records.values()),
            "records_closed": sum(
                1 for rows in records.values() for r in rows if r.ended_at is not None
            ),
            "callers_with_two_records": duplicates,
            "no_start_asterisk_down": no_start,
            "dead_ended": [asdict_short(p) for p in dead],
            "lost_records": [asdict_short(p) for p in lost],
            "messages_without_case": [asdict_short(p) for p in no_case],
            "open_records": [asdict_short(p) for p in open_records],
            "faults": [asdict(f) for f in self.faults],
            "serve_lives": [life.figures() for life in self.serve_lives],
            "asterisk_lives": [life.figures() for life in self.asterisk_lives],
            "workdir": str(self.base),
        }
        (self.base / "soak-summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print_table(summary, self.placed)
        return summary


def _spoken(recordings: Path, uniqueid: str) -> bool:
    """A voicemail file with sound in it (more than a bare 44-byte WAV header)."""
    return any(f.stat().st_size > 44 for f in recordings.rglob(f"{uniqueid}-voicemail.wav"))


def _answered_by(phone: SippAnswerer) -> set[str]:
    return {call.caller_id for call in phone.calls if call.answered_at is not None}


def asdict_short(p: Placed) -> dict[str, Any]:
    r = p.result
    return {
        "n": p.number, "kind": p.kind, "caller": p.caller, "at_s": round(p.at, 1),
        "verdict": p.verdict, "record": p.record,
        "sip_answered": None if r is None else r.answered,
        "sip_status": None if r is None else r.final_status,
        "hung_up_by": None if r is None else r.hung_up_by,
        "records": p.rows,
    }  # fmt: skip


def print_table(s: dict[str, Any], placed: list[Placed]) -> None:
    v = s["verdicts"]
    rows = [
        ("calls placed", s["placed"], ", ".join(f"{k} {n}" for k, n in s["by_kind"].items())),
        ("reached the right human", v.get("right human", 0), "ward → chairman, queue → agent"),
        ("reached the message", v.get("message", 0), "voicemail calls that opened a case"),
        ("MESSAGE BUT NO CASE", v.get("message, no case", 0), "spoken message on disk only"),
        ("reached the operator", v.get("operator", 0), "fallback queue answered"),
        ("reached another human", v.get("other human", 0), ""),
        ("could not start", s["no_start_asterisk_down"], "placed while Asterisk restarted"),
        ("cut by Asterisk restart", v.get("cut (Asterisk restart)", 0), "up when it stopped"),
        ("DEAD-ENDED (goal 0)", len(s["dead_ended"]), ""),
        ("call records written", s["records_written"],
         f"closed {s['records_closed']}; callers with 2+ records {s['callers_with_two_records']}"),
        ("LOST RECORDS (goal 0)", len(s["lost_records"]), "calls that started, no record"),
        ("records left open", len(s["open_records"]), "no end time written"),
    ]  # fmt: skip
    print()
    print(f"Soak: {s['minutes']:g} min at {s['rate']:g} call/s; faults: "
          + ", ".join(f"{f['kind']}@{f['began']:.0f}s" for f in s["faults"]))  # fmt: skip
    print(f"{'':<26} {'count':>7}  note")
    for name, count, note in rows:
        print(f"{name:<26} {count:>7}  {note}")
    print()
    print(f"{'process life':<14} {'pid':>8} {'from':>6} {'lived':>6} {'RSS start':>10} "
          f"{'after 60s':>10} {'end':>8} {'growth':>7} {'after 60s':>10}")  # fmt: skip
    for life in [*s["serve_lives"], *s["asterisk_lives"]]:
        if "start_mib" not in life:
            continue
        warm = life["warm_mib"]
        warm_growth = life["growth_after_warmup_pct"]
        print(
            f"{life['what']:<14} {life['pid']:>8} {life['from_s']:>5}s {life['lived_s']:>5}s "
            f"{life['start_mib']:>8.1f}Mi {'-' if warm is None else f'{warm:.1f}Mi':>10} "
            f"{life['end_mib']:>6.1f}Mi {life['growth_pct']:>6.1f}% "
            f"{'-' if warm_growth is None else f'{warm_growth:.1f}%':>10}"
        )
    bad = s["dead_ended"] + s["lost_records"] + s["messages_without_case"]
    if bad:
        print("\ncalls to look at (dead-ended or without a record):")
        for p in bad[:40]:
            print("  ", p)
    print(f"\nsummary and logs: {s['workdir']}")


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    runner = Soak(args)
    try:
        await runner.start()
        await runner.run()
        return await runner.judge()
    finally:
        await runner.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="calls per second")
    parser.add_argument("--fault-every", type=float, default=180, metavar="SECONDS")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"in turn, comma-separated, from {','.join(FAULTS)}")  # fmt: skip
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--settle", type=float, default=90, help="seconds to wait for records")
    parser.add_argument("--workdir", help="default: a new folder under /tmp")
    parser.add_argument("--run-id", type=int, default=os.getpid() % 100)
    args = parser.parse_args(argv)
    args.faults = [f for f in args.faults.split(",") if f]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}: choose from {FAULTS}")
    return args


def main() -> None:
    summary = asyncio.run(soak(parse_args()))
    failed = summary["dead_ended"] or summary["lost_records"] or summary["messages_without_case"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
