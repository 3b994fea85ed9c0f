"""Computed holidays end to end on a real Asterisk (issue 16): Hà Nội's public
administration line (examples/ha-noi-public-admin.yaml, ``holidays_from:
vietnam``) keeps office hours; on Monday 8 February 2027 at 10:00, the third
day of Tết as the ``holidays`` package computes it (no one typed that date in
the file), a citizen's call takes the out-of-hours path; the same hour on the
Thursday after Tết it is answered by the greeting.

The FastAGI server runs on a clock the test sets (as in
tests/test_examples_e2e.py); prompts are short tones, and Asterisk's log says
which file it played.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig, load_config
from ivr.db.models import Call
from ivr.prompt_setup import CATALOG, write_pcm_wav
from ivr.prompts import load_catalog
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Pause, SippCaller
from tests.rig.stack import REPO, CallRecords, Ports, free_udp_port, point_at_rig, start_asterisk

pytestmark = pytest.mark.asterisk

PUBLIC_ADMIN = REPO / "examples" / "ha-noi-public-admin.yaml"
HCC = "02400000100"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
TET_MONDAY_10H = datetime(2027, 2, 8, 10, 0, tzinfo=ZONE)  # Mùng ba Tết Đinh Mùi
THURSDAY_AFTER_TET_10H = datetime(2027, 2, 11, 10, 0, tzinfo=ZONE)


class SettableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Rig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    ports: Ports
    records: CallRecords
    workdir: Path
    clock: SettableClock

    async def call(self, caller: str) -> Call:
        result = await SippCaller(self.workdir / "calls").call(
            target=f"127.0.0.1:{self.ports.sip}", number=HCC, caller_id=caller,
            steps=[Pause(500)], hangup_after_ms=4000, timeout_s=30,
        )  # fmt: skip
        assert result.answered, result.log_text
        return await self.records.wait_closed("+84" + caller[1:])

    def heard(self, call: Call) -> list[str]:
        text = self.asterisk.messages_log.read_text(errors="replace")
        return [
            Path(line.split("Playing '", 1)[1].split("'", 1)[0]).stem
            for line in text.splitlines()
            if call.channel and call.channel in line and "Playing '" in line
        ]


def _tone_prompts(config: HotlineConfig, root: Path) -> None:
    """A 0.3 s tone under every name the line's flow may play."""
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 660 * n / 8000)) for n in range(2400)))
    catalog = load_catalog(CATALOG)
    for hotline in config.hotlines:
        names = [*catalog.with_texts(hotline.prompts).names, "area_ha-noi", "beep"]
        for language in ("vi", "en"):
            for name in names:
                write_pcm_wav(root / hotline.id / language / f"{name}.wav", tone)
    write_pcm_wav(root / "moh" / "hotline-hold.wav", tone)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, asterisk_binary: Path, sipp_binary: str
) -> AsyncIterator[Rig]:
    base = tmp_path_factory.mktemp("holiday")
    data = yaml.safe_load(PUBLIC_ADMIN.read_text(encoding="utf-8"))
    assert data["holidays_from"] == "vietnam"
    # Nothing of 2027 is written in the file: the days come from the package.
    assert not [h for h in data["holidays"] if str(h["date"]).startswith("2027")]
    ports, prompts = Ports(), base / "prompts"
    point_at_rig(data, base, ports, prompts, trunk_port=free_udp_port())
    data["sms"]["path"] = str(base / "sms-outbox.jsonl")
    path = base / "ha-noi-public-admin-test.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    _tone_prompts(load_config(path), prompts)
    asterisk, config = start_asterisk(base, path)
    result = Rig(asterisk, config, ports, CallRecords(config), base, SettableClock(TET_MONDAY_10H))
    try:
        yield result
    finally:
        asterisk.stop()
        result.records.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(rig: Rig) -> AsyncIterator[RunningServices]:
    running = await start_services(rig.config, clock=rig.clock)
    try:
        yield running
    finally:
        await running.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_call_on_a_computed_tet_day_takes_the_out_of_hours_path(
    rig: Rig, services: RunningServices
) -> None:
    rig.clock.at = TET_MONDAY_10H
    record = await rig.call("0913800001")
    heard = rig.heard(record)
    assert record.hotline_id == "ha-noi-hcc"
    assert heard[0] == "out_of_hours" and "after_hours_menu" in heard, heard
    assert "greeting" not in heard and "main_menu" not in heard
    # The same hour once Tết is over: office hours, the greeting.
    rig.clock.at = THURSDAY_AFTER_TET_10H
    record = await rig.call("0913800002")
    heard = rig.heard(record)
    assert "greeting" in heard and "out_of_hours" not in heard, heard
