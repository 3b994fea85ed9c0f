"""The city-wide ward menu (all 126 units of Hà Nội) against the 13-ward one.

Both configs are the Bắc Từ Liêm example; in the "city" one key 5 leads to a
menu of every Hà Nội unit from the `vietnam-provinces` package (three-digit
codes, 0 and 9 under "#", the unit read back before ringing), built the way
`hotline areas import --province 01` builds it. Printed, for each and as a
ratio in the same run (best of --rounds, so another process on the machine
inflates neither side):

- check: reading and checking the file (schema, references, key ambiguity);
- flow build: HotlineFlow(config), which computes every menu's keymap once;
- keymap: menu_keys() of the ward menu alone;
- lookup: one key → destination lookup, over every key of the ward menu;
- call: one call through the pure flow generator, greeting to route, and per
  step (the city call has the read-back, so two steps more).

No PBX, no database: only the code that runs per config load and per call.

    .venv/bin/python bench/ward_menu.py [--rounds 30] [--calls 2000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.config import load_config  # noqa: E402
from ivr.config.area_import import province_area_data  # noqa: E402
from ivr.config.references import menu_keys  # noqa: E402
from ivr.config.schema import HotlineConfig  # noqa: E402
from ivr.flow.call_flow import HotlineFlow  # noqa: E402
from ivr.flow.steps import Collect, FlowResult, Input, Play  # noqa: E402

logger = logging.getLogger(__name__)

EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
WARD_MENU = "wards"


def city_data() -> dict[str, Any]:
    """The example with key 5 leading to every Hà Nội unit, each with a chairman."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    province = province_area_data("01")
    for number, unit in enumerate(province["children"], start=1):
        unit["chairman"] = f"tel:09{number:08d}@pstn"
        unit["fallbacks"] = ["queue:operator"]
    data["areas"] = [province]
    hotline = data["hotlines"][0]
    hotline["menus"][WARD_MENU] = {
        "prompt": "city_area_menu",
        "timeout_seconds": 6,
        "terminator": "#",
        "confirm_area": True,
        "areas_under": province["code"],
        "options": {"0": "queue:operator", "9": "voicemail", "*": "menu:main"},
    }
    return data


def best_of(rounds: int, work: Callable[[], object]) -> float:
    """The fastest of ``rounds`` runs, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def drive(flow: Generator[Any, Any, FlowResult], answers: list[str]) -> tuple[FlowResult, int]:
    """Answer the pure flow as a caller would (keys at each Collect, silence at
    each Play); returns the result and the number of steps."""
    pending = iter(answers)
    steps = 0
    step = flow.send(None)
    while True:
        steps += 1
        reply: Input | None = None
        if isinstance(step, Collect):
            reply = Input.keys(next(pending, ""))
        elif isinstance(step, Play):
            reply = Input.none()
        try:
            step = flow.send(reply)
        except StopIteration as stop:
            return stop.value, steps


def measure(name: str, config_path: Path, answers: list[str], rounds: int, calls: int) -> dict:
    config: HotlineConfig = load_config(config_path)
    hotline = config.hotlines[0]
    menu = hotline.menus[WARD_MENU]
    flow = HotlineFlow(config)
    keymap = menu_keys(menu, config)
    table = flow._keymaps[(hotline.id, WARD_MENU)]  # what calls read: built once
    assert table == keymap and type(table) is dict
    result, steps = drive(flow.run(hotline, MONDAY_10H_HANOI), answers)
    assert result.route is not None and result.route.area_code, (name, result)

    def one_call() -> None:
        for _ in range(calls):
            drive(flow.run(hotline, MONDAY_10H_HANOI), answers)

    every_key = list(keymap)

    def lookups() -> None:
        for _ in range(100):
            for key in every_key:
                table.get(key)

    per_call = best_of(rounds, one_call) / calls
    return {
        "name": name,
        "units": sum(1 for d in keymap.values() if d.kind.value == "area"),
        "check": best_of(rounds, lambda: load_config(config_path)),
        "flow build": best_of(rounds, lambda: HotlineFlow(config)),
        "keymap": best_of(rounds, lambda: menu_keys(menu, config)),
        "lookup": best_of(rounds, lookups) / (100 * len(every_key)),
        "call": per_call,
        "step": per_call / steps,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder) / "city.yaml"
        city.write_text(yaml.safe_dump(city_data(), allow_unicode=True), encoding="utf-8")
        # Both files sit in the same folder, so relative paths resolve alike.
        district = Path(folder) / "district.yaml"
        district.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
        small = measure("13 wards", district, ["5", "03"], args.rounds, args.calls)
        large = measure("126 units", city, ["5", "005", "1"], args.rounds, args.calls)
    print(f"{'':12} {small['name']:>14} {large['name']:>14} {'ratio':>8}")
    print(f"{'menu keys':12} {small['units']:>14} {large['units']:>14}")
    print(f"{'call steps':12} {small['steps']:>14} {large['steps']:>14}")
    for field in ("check", "flow build", "keymap", "lookup", "call", "step"):
        a, b = small[field], large[field]
        print(f"{field:12} {a * 1e6:>11.2f} µs {b * 1e6:>11.2f} µs {b / a:>7.2f}x")


if __name__ == "__main__":
    main()
