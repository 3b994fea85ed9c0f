#!/usr/bin/env python3
"""Classic AGI fallback (pyst2, stdin/stdout) for when the FastAGI server is down.

The dialplan runs it as ``AGI(<venv python>,<this file>,<dialed>,<routing.json>)``.
It needs no server, no database and no config schema: it reads the routing
table that ``hotline asterisk-config`` rendered, asks for a ward code, and sets
the same channel variables as the FastAGI server. Anything it cannot do ends
in the operator queue.

The names and values it shares with the dialplan are copies of
``ivr/contracts/channel_variables.py`` and ``ivr/contracts/statuses.py``: the
script imports nothing from the project, so it still routes calls when the
project's own code cannot start. ``tests/test_contracts.py`` keeps the copies
equal to the contract.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from asterisk.agi import AGI  # type: ignore[import-untyped]

ROUTE, QUEUE, TARGETS, FINAL = "HL_ROUTE", "HL_QUEUE", "HL_TARGETS", "HL_FINAL"
TARGET_SEPARATOR, FIELD_SEPARATOR = "^", "|"
DIAL_ROUTE, QUEUE_ROUTE = "dial", "queue"  # RouteKind values
ATTEMPTS = 3


def route_ward(agi: Any, hotline: dict[str, Any]) -> bool:
    """Ask for a ward code; on a match set a dial route and return True."""
    for menu in hotline.get("area_menus", []):
        for _ in range(ATTEMPTS):
            digits = str(agi.get_data(menu["prompt"], menu["timeout_ms"], menu["max_digits"]))
            shortcut = menu["shortcuts"].get(digits.rstrip("#"))
            if shortcut is None:
                continue
            # "<dial>|<ring>|<label>" per target joined by "^", as the server does
            agi.set_variable(
                TARGETS,
                TARGET_SEPARATOR.join(
                    f"{t['dial']}{FIELD_SEPARATOR}{t['ring']}{FIELD_SEPARATOR}{t['label']}"
                    for t in shortcut["targets"]
                ),
            )
            if shortcut.get("final_queue"):
                agi.set_variable(FINAL, QUEUE_ROUTE)
                agi.set_variable(QUEUE, shortcut["final_queue"])
            agi.set_variable(ROUTE, DIAL_ROUTE)
            return True
    return False


def main(argv: list[str]) -> int:
    agi = AGI()
    dialed = argv[1] if len(argv) > 1 else ""
    table_path = argv[2] if len(argv) > 2 else ""
    failure_queue = "operator"
    try:
        with open(table_path, encoding="utf-8") as handle:
            table = json.load(handle)
        hotline = next(
            (h for h in table["hotlines"].values() if dialed in h["numbers"]),
            next(iter(table["hotlines"].values())),
        )
        failure_queue = hotline["failure_queue"]
        agi.verbose(f"hotline fallback script for {dialed}", 2)
        if route_ward(agi, hotline):
            return 0
    except Exception as exc:
        try:
            agi.verbose(f"hotline fallback script failed: {exc!r}", 1)
        except Exception:
            return 1
    agi.set_variable(QUEUE, failure_queue)
    agi.set_variable(ROUTE, QUEUE_ROUTE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
