"""``hotline demo``: the whole stack on the example config with one scripted call.

A private Asterisk is rendered from the config and started; the FastAGI server
runs in this process; SIPp plays the carrier behind the ``pstn`` trunk (so the
ward chairman's mobile "answers") and a citizen who dials the hotline, presses
5 (wards) and 03 (Đông Ngạc). The call record it wrote is printed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from ivr.asterisk.instance import AsteriskInstance, find_asterisk
from ivr.asterisk.render import RenderOptions, write_all
from ivr.config.schema import HotlineConfig
from ivr.db.migrate import upgrade
from ivr.prompt_setup import build_hotline_prompts
from ivr.reports.call_listing import format_call, recent_calls
from ivr.routing_table import write_routing_table
from ivr.service import start_services
from ivr.sim.polling import wait_for
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller

logger = logging.getLogger(__name__)

DEMO_CALLER = "0912345678"
DEMO_WARD_KEYS = ("5", "03")
# The demo dials this hotline by id: its keys are Bắc Từ Liêm's ward menu.
DEMO_HOTLINE = "bac-tu-liem"


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


async def run_demo(config: HotlineConfig, keep_running: bool = False) -> int:
    base = config.resolve_path(Path("../var/demo"))
    base.mkdir(parents=True, exist_ok=True)
    hotline = config.hotline(DEMO_HOTLINE)
    if hotline is None:
        raise SystemExit(f"the demo calls hotline {DEMO_HOTLINE!r}, which this config lacks")
    number = hotline.numbers[0]
    trunk = config.trunks[0]

    _say(f"Asterisk: {find_asterisk()}")
    _say("building prompts (espeak-ng, 8 kHz) and the database schema")
    await asyncio.to_thread(build_hotline_prompts, config)
    await asyncio.to_thread(upgrade, config.database_url)

    asterisk = AsteriskInstance(base / "asterisk")
    write_all(config, RenderOptions.from_config(config), asterisk.etc)
    write_routing_table(config)
    carrier = SippAnswerer(base / "sipp", "carrier", mode="answer", hold_ms=4000, port=trunk.port)
    services = None
    try:
        await carrier.start()
        _say(f"carrier SIP answerer on 127.0.0.1:{carrier.port} (trunk {trunk.id!r})")
        await asyncio.to_thread(asterisk.start)
        _say(f"Asterisk is up (SIP 127.0.0.1:{config.asterisk.sip.port}, config in {asterisk.etc})")
        services = await start_services(config, migrate=False)
        _say(f"FastAGI server on {config.asterisk.agi.host}:{services.agi_port}")

        ward = config.area("dong-ngac")
        _say(
            f"citizen {DEMO_CALLER} dials {number} ({hotline.name}), presses "
            f"{' then '.join(DEMO_WARD_KEYS)} for {ward.name if ward else 'a ward'}"
        )
        caller = SippCaller(base / "sipp")
        result = await caller.call(
            target=f"127.0.0.1:{config.asterisk.sip.port}",
            number=number,
            caller_id=DEMO_CALLER,
            steps=[Pause(1500), Dtmf(DEMO_WARD_KEYS[0]), Pause(1500), Dtmf(DEMO_WARD_KEYS[1])],
            hangup_after_ms=None,
            timeout_s=90,
        )
        _say(
            f"call {'answered' if result.answered else 'NOT answered'}; "
            f"the carrier was rung for: {', '.join(c.dialed for c in carrier.calls) or 'nobody'}"
        )
        await _wait_closed(config)
        _say("call record written by the FastAGI server and the hangup handler:")
        for call in recent_calls(config, limit=1):
            print(format_call(call))
        dial_lines = [
            line
            for line in asterisk.messages_log.read_text(errors="replace").splitlines()
            if "Dial(" in line or "answered" in line or "hotline-entry" in line
        ]
        _say("Asterisk's log of the routing:")
        print("\n".join(dial_lines[-8:]))
        if keep_running:
            _say("stack left running; Ctrl-C to stop")
            await asyncio.Event().wait()
        return 0 if result.answered else 1
    finally:
        if services is not None:
            await services.close()
        await asyncio.to_thread(asterisk.stop)
        await carrier.stop()


async def _wait_closed(config: HotlineConfig, timeout: float = 15) -> None:
    """Until the hangup handler has closed the newest call record; the demo
    prints whatever is there after ``timeout`` seconds."""

    def closed() -> bool:
        calls = recent_calls(config, limit=1)
        return bool(calls) and calls[0].ended_at is not None

    with contextlib.suppress(TimeoutError):
        await wait_for(closed, timeout, "the call record to close", interval=0.1)
