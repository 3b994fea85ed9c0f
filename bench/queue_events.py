"""Replay a recorded AMI event stream through the live queue model; print events/s.

The stream (``bench/fixtures/ami_events.jsonl``) was recorded by the queue
manager's end-to-end test against a real Asterisk 22: every event the AMI user
receives (queue, agent, channel, bridge, device-state…), one JSON object per
line. The goal is at least 20,000 events/s on one core, so one manager keeps up
with many Asterisk nodes.

    .venv/bin/python bench/queue_events.py [--rounds 200] [--stream FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_manager.model import Change, LiveModel

logger = logging.getLogger(__name__)

DEFAULT_STREAM = Path(__file__).with_name("fixtures") / "ami_events.jsonl"


def load_stream(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def replay(events: list[dict[str, str]], rounds: int) -> tuple[int, float, int]:
    """Events applied, seconds taken, changes published (to one subscriber)."""
    model = LiveModel("bench", queue_settings={"operator": (30, 2), "field": (30, 0)})
    changes = 0

    def console(_change: Change) -> None:  # stands in for the web console
        nonlocal changes
        changes += 1

    model.subscribe(console)
    start = time.perf_counter()
    for _ in range(rounds):
        for event in events:
            model.apply(event)
    elapsed = time.perf_counter() - start
    return rounds * len(events), elapsed, changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", type=Path, default=DEFAULT_STREAM)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    events = load_stream(args.stream)
    applied, elapsed, changes = replay(events, args.rounds)
    print(
        f"whole stream: {len(events)} recorded events x {args.rounds} rounds = {applied} "
        f"in {elapsed:.3f} s: {applied / elapsed:,.0f} events/s ({changes} changes published)"
    )
    # The harder case: only the events the model acts on (as with an AMI event filter).
    only_queue = [e for e in events if e.get("Event", "").startswith(("Queue", "Agent"))]
    applied, elapsed, changes = replay(only_queue, args.rounds * 3)
    print(
        f"queue/agent events only: {len(only_queue)} x {args.rounds * 3} rounds = {applied} "
        f"in {elapsed:.3f} s: {applied / elapsed:,.0f} events/s ({changes} changes published)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
