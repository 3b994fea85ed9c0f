"""The routing table the classic AGI fallback script reads when FastAGI is down.

It holds only what that script needs to route ward shortcut keys without the
server, the database or the config schema: plain JSON, written next to the
rendered Asterisk configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivr.config.destinations import DestinationKind
from ivr.config.references import menu_keys
from ivr.config.schema import HotlineConfig
from ivr.flow.routing import RoutingTable


def call_spool_path(config: HotlineConfig) -> Path:
    """Where the fallback script appends a JSON line per call it serves (and
    per hangup the server did not take): beside the routing table, in the
    folder Asterisk already reads; ``hotline serve`` ingests it
    (:mod:`ivr.fallback_calls`)."""
    return config.resolve_path(config.paths.routing_table).with_name("fallback-calls.jsonl")


def build_routing_table(config: HotlineConfig) -> dict[str, Any]:
    routing = RoutingTable(config)
    prompts = config.resolve_path(config.paths.prompts)
    hotlines: dict[str, Any] = {}
    for hotline in config.hotlines:
        area_menus = []
        for menu in hotline.menus.values():
            if not menu.areas_under:
                continue
            shortcuts = {}
            for key, destination in menu_keys(menu, config).items():
                if destination.kind is not DestinationKind.AREA:
                    continue
                area = routing.area(destination.argument)
                if area is None or area.chairman is None:
                    continue  # an imported unit with nobody to ring yet: the script's invalid key
                route = routing.route_for(destination, hotline)
                # The script can only queue after the chain: a chain ending in
                # voicemail (or anything else the script cannot do) ends in the
                # hotline's failure queue, a human, never a dead end.
                final = route.final.queue if route.final else None
                shortcuts[key] = {
                    "area": destination.argument,
                    "targets": [
                        {"dial": t.dial_string, "ring": t.ring_seconds, "label": t.label}
                        for t in route.targets
                    ],
                    "final_queue": final or hotline.failure_destination.argument,
                }
            area_menus.append(
                {
                    # The hotline's own folder (<prompts>/<hotline id>/<language>/).
                    "prompt": str(prompts / hotline.id / hotline.language / menu.prompt),
                    "timeout_ms": menu.timeout_seconds * 1000,
                    "max_digits": max(len(k) for k in shortcuts) if shortcuts else 1,
                    "shortcuts": shortcuts,
                }
            )
        hotlines[hotline.id] = {
            "numbers": hotline.numbers,
            "failure_queue": hotline.failure_destination.argument,
            "area_menus": area_menus,
        }
    return {"version": 1, "call_spool": str(call_spool_path(config)), "hotlines": hotlines}


def write_routing_table(config: HotlineConfig, path: Path | None = None) -> Path:
    target = path or config.resolve_path(config.paths.routing_table)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(build_routing_table(config), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    tmp.replace(target)  # atomic: the script never reads half a file
    return target
