#!/usr/bin/env python3
"""Classic AGI fallback (pyst2, stdin/stdout) for when the FastAGI server is down.

The dialplan runs it in two ways:

- ``AGI(<venv python>,<this file>,<dialed>,<routing.json>,<hotline>)`` from
  ``[hotline-entry]``: it reads the routing table that ``hotline asterisk-config``
  rendered, asks for a ward code, and sets the same channel variables as the
  FastAGI server. Anything it cannot do ends in the operator queue.
- ``AGI(<venv python>,<this file>,call-ended,<routing.json>,<uniqueid>,<route>,
  <answered>,<dial status>,<answer epoch>,<queue member>,<rec base>,<hotline>)``
  from the hangup handler, when the call was served by this script or the
  server did not answer the hangup (a voicemail whose ``voicemail-saved`` could
  not reach the server is spooled this way: its end line names the recording).

Either way it appends one JSON line to the call spool named in the routing
table (``call_spool``): a "start" line once the call is routed (or the caller
hung up in the menu), an "end" line at hangup. ``hotline serve`` reads that
file into the call log when it starts and every few seconds after
(:mod:`ivr.fallback_calls`), so a call served while the server was down still
counts in the statistics. Appending a line needs no server and no database,
only a file the Asterisk user may write.

The names and values it shares with the dialplan are copies of
``ivr/contracts/channel_variables.py`` and ``ivr/contracts/statuses.py``: the
script imports nothing from the project, so it still routes calls when the
project's own code cannot start. ``tests/test_contracts.py`` keeps the copies
equal to the contract.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

from asterisk.agi import AGI  # type: ignore[import-untyped,unused-ignore]

ROUTE, QUEUE, TARGETS, FINAL = "HL_ROUTE", "HL_QUEUE", "HL_TARGETS", "HL_FINAL"
TARGET_SEPARATOR, FIELD_SEPARATOR = "^", "|"
DIAL_ROUTE, QUEUE_ROUTE = "dial", "queue"  # RouteKind values
FAILURE_ROUTE = "failure"  # the dialplan's "something broke" branch
ATTEMPTS = 3
CALL_ENDED = "call-ended"  # first argument of the hangup handler's invocation
# Spool lines: the fields ivr/fallback_calls.py reads (SPOOL_VERSION there too).
SPOOL_VERSION = 1


class Routed:
    """What the call log needs to know about the route taken."""

    def __init__(self) -> None:
        self.route = ""
        self.area = ""
        self.keys = ""


def route_ward(agi: Any, hotline: dict[str, Any], routed: Routed | None = None) -> bool:
    """Ask for a ward code; on a match set a dial route and return True
    (``routed`` learns the keys pressed and the ward, for the call spool)."""
    routed = routed if routed is not None else Routed()
    for menu in hotline.get("area_menus", []):
        for _ in range(ATTEMPTS):
            digits = str(agi.get_data(menu["prompt"], menu["timeout_ms"], menu["max_digits"]))
            routed.keys = (routed.keys + digits)[-128:]
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
            # After the chain a human always answers: the ward's final queue, or
            # (a chain ending in voicemail, an older table) the failure queue.
            final_queue = shortcut.get("final_queue") or hotline.get("failure_queue")
            if final_queue:
                agi.set_variable(FINAL, QUEUE_ROUTE)
                agi.set_variable(QUEUE, final_queue)
            agi.set_variable(ROUTE, DIAL_ROUTE)
            routed.route, routed.area = DIAL_ROUTE, str(shortcut.get("area") or "")
            return True
    return False


def append_spool_line(path: str, record: dict[str, Any]) -> None:
    """One JSON line, appended with a single write (O_APPEND): lines written by
    calls ending at the same moment never interleave. Group-writable, since
    Asterisk may run as another user than ``hotline serve``, which reads it."""
    if not path:
        return
    line = json.dumps({"v": SPOOL_VERSION, **record}, ensure_ascii=False) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o660)
    try:
        os.write(descriptor, line.encode("utf-8"))
    finally:
        os.close(descriptor)


def load_table(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        table: dict[str, Any] = json.load(handle)
    return table


def entry(agi: Any, argv: list[str]) -> int:
    """Route the call by ward code, then write its "start" line."""
    dialed = argv[1] if len(argv) > 1 else ""
    table_path = argv[2] if len(argv) > 2 else ""
    hotline_id = argv[3] if len(argv) > 3 else ""
    routed = Routed()
    spool = ""
    try:
        table = load_table(table_path)
        spool = str(table.get("call_spool") or "")
        # The hotline the dialplan set on the channel (HL_HOTLINE); never "the
        # first one": with several hotlines that would route a citizen to
        # another hotline's wards. Unknown: the dialplan's failure branch.
        hotline = table["hotlines"].get(hotline_id)
        if hotline is None:
            agi.verbose(f"hotline fallback script: unknown hotline {hotline_id!r}", 1)
            routed.route = FAILURE_ROUTE
            return 0
        agi.verbose(f"hotline fallback script for {hotline_id} ({dialed})", 2)
        if not route_ward(agi, hotline, routed):
            agi.set_variable(QUEUE, hotline["failure_queue"])
            agi.set_variable(ROUTE, QUEUE_ROUTE)
            routed.route = QUEUE_ROUTE
        return 0
    except Exception as exc:
        # Hung up in the menu (pyst2 raises), or a broken table: the dialplan's
        # failure branch answers whoever is still there; routed.route stays
        # empty for a hangup, so the record says "abandoned in the menu".
        routed.route = routed.route or ("" if "Hangup" in type(exc).__name__ else FAILURE_ROUTE)
        try:
            agi.verbose(f"hotline fallback script failed: {exc!r}", 1)
        except Exception:
            return 1
        return 0
    finally:
        _record_start(agi, spool, hotline_id, dialed, routed)


def _record_start(agi: Any, spool: str, hotline_id: str, dialed: str, routed: Routed) -> None:
    env = getattr(agi, "env", {})
    try:
        append_spool_line(
            spool,
            {
                "event": "start",
                "uniqueid": env.get("agi_uniqueid", ""),
                "hotline": hotline_id,
                "dialed": dialed,
                "caller": env.get("agi_callerid", ""),
                "channel": env.get("agi_channel", ""),
                "at": time.time(),
                "route": routed.route,
                "area": routed.area,
                "keys": routed.keys,
            },
        )
    except OSError as exc:
        with contextlib.suppress(Exception):  # the caller was routed all the same
            agi.verbose(f"hotline fallback script: call spool {spool} not written: {exc!r}", 1)


def call_ended(agi: Any, argv: list[str]) -> int:
    """Hangup handler: write the call's "end" line with what the dialplan saw."""
    fields = [*argv[2:], *[""] * 9][:9]
    table_path, uniqueid, route, answered, dial_status, answer_epoch, queue_member = fields[:7]
    # HL_REC_BASE and HL_HOTLINE: a voicemail left while the server was down
    # becomes its case when `hotline serve` reads this line, and a call whose
    # start never reached the server is recorded from it.
    rec_base, hotline_id = fields[7:]
    env = getattr(agi, "env", {})
    try:
        spool = str(load_table(table_path).get("call_spool") or "")
        append_spool_line(
            spool,
            {
                "event": "end",
                "uniqueid": uniqueid,
                "at": time.time(),
                "route": route,
                "answered": answered,
                "dial_status": dial_status,
                "answer_epoch": answer_epoch,
                "queue_member": queue_member,
                "rec_base": rec_base,
                "hotline": hotline_id,
                "caller": env.get("agi_callerid", ""),
                "channel": env.get("agi_channel", ""),
            },
        )
    except Exception as exc:
        try:
            agi.verbose(f"hotline fallback script: end of {uniqueid} not written: {exc!r}", 1)
        except Exception:
            return 1
    return 0


def main(argv: list[str]) -> int:
    agi = AGI()
    if len(argv) > 1 and argv[1] == CALL_ENDED:
        return call_ended(agi, argv)
    return entry(agi, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
