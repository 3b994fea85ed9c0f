"""AMI events per second through the whole edge, next to the model alone.

The edge: bytes from a TCP socket → :class:`ivr.asterisk.ami_protocol.AmiProtocol`
(cut at blank lines, whole-message UTF-8 decoding, header parsing) → the AMI
link's manager (response matching, event dispatch, callbacks isolated) →
:meth:`queue_manager.ami.AmiLink._on_event` → :class:`LiveModel`. A child
process plays Asterisk: it writes the recorded stream
(``bench/fixtures/ami_events.jsonl``, turned back into AMI wire text) as fast
as the socket takes it. The receiving process is pinned to one core (the
sender to the other, when there is one). The goal is at least 50,000 events/s
end to end; the model alone is measured the same run for comparison.

    .venv/bin/python bench/ami_edge.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.asterisk.ami_protocol import AmiProtocol
from queue_manager.ami import AmiLink, _Manager
from queue_manager.model import LiveModel

logger = logging.getLogger(__name__)

STREAM = Path(__file__).with_name("fixtures") / "ami_events.jsonl"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
QUEUES = {"operator": (30, 2), "field": (30, 0)}


def load_events() -> list[dict[str, Any]]:
    events = [json.loads(line) for line in STREAM.read_text(encoding="utf-8").splitlines()]
    for event in events:
        event.pop("content", None)
    return events


def wire(event: dict[str, Any]) -> bytes:
    lines = [
        f"{name}: {item}\r\n"
        for name, value in event.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    return ("".join(lines) + "\r\n").encode("utf-8")


def pin(core: int) -> None:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[core % len(cores)]})


def play_asterisk(listener: socket.socket, payload: bytes) -> None:
    """The child process: one connection, the whole stream, then close."""
    pin(1)
    connection, _ = listener.accept()
    connection.sendall(payload)
    connection.close()


async def through_the_edge(port: int, expected: int) -> tuple[int, float, Any]:
    loop = asyncio.get_running_loop()
    model = LiveModel("bench", queue_settings=QUEUES)
    link = AmiLink("bench", "127.0.0.1", port, "bench", "bench", model)
    lost = asyncio.Event()
    manager = _Manager(lost.set, loop=loop, ping_delay=10**6, forgetable_actions=())
    manager.register_event("*", link._on_event)
    start = time.perf_counter()
    made = asyncio.ensure_future(loop.create_connection(AmiProtocol, "127.0.0.1", port))
    await made
    manager.connection_made(made)
    await lost.wait()
    elapsed = time.perf_counter() - start
    if model.events_seen != expected:
        raise SystemExit(f"{model.events_seen} events reached the model, {expected} sent")
    return model.events_seen, elapsed, manager.counters


def model_alone(events: list[dict[str, Any]], rounds: int) -> tuple[int, float]:
    model = LiveModel("bench", queue_settings=QUEUES)
    start = time.perf_counter()
    for _ in range(rounds):
        for event in events:
            model.apply(dict(event))
    return rounds * len(events), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    events = load_events()
    payload = BANNER + b"".join(wire(e) for e in events) * args.rounds
    expected = len(events) * args.rounds

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    child = multiprocessing.get_context("fork").Process(
        target=play_asterisk, args=(listener, payload)
    )
    child.start()
    pin(0)
    seen, elapsed, counters = asyncio.run(through_the_edge(port, expected))
    child.join()
    listener.close()
    print(
        f"edge (socket → reader → manager → link → model): {seen} events, "
        f"{len(payload) / 1e6:.1f} MB in {elapsed:.3f} s: {seen / elapsed:,.0f} events/s "
        f"(skipped {counters.skipped()}, callback errors {counters.callback_errors})"
    )
    applied, alone = model_alone(events, args.rounds)
    print(
        f"model alone (the same events as dicts): {applied} events in {alone:.3f} s: "
        f"{applied / alone:,.0f} events/s"
    )
    only_queue = [e for e in events if e.get("Event", "").startswith(("Queue", "Agent"))]
    applied, alone = model_alone(only_queue, args.rounds * 3)
    print(
        f"model alone, queue/agent events only (bench/queue_events.py's harder case): "
        f"{applied} events in {alone:.3f} s: {applied / alone:,.0f} events/s"
    )
    goal = 50_000
    verdict = "meets" if seen / elapsed >= goal else "MISSES"
    print(f"end to end {verdict} the goal of {goal:,} events/s")
    return 0 if seen / elapsed >= goal else 1


if __name__ == "__main__":
    sys.exit(main())
