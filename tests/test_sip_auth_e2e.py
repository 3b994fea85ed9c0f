"""Authenticated SIP phones, on the real Asterisk (issue 10, finding 4).

A SIPp phone REGISTERs as the agent's desk phone ``dtv-01``: without
credentials it is challenged (401) and no contact is bound; with the secret
the administrator read from ``hotline phones secret dtv-01`` it is bound, and a
citizen's call into the agent's queue rings it. An INVITE claiming to come
from a phone is challenged too, also for a phone with a static contact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ivr.asterisk.instance import AsteriskInstance
from ivr.config import HotlineConfig
from ivr.config.phone_secrets import phone_secret
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, SippAnswerer, SippCaller, free_port
from tests.rig.sip_register import register
from tests.rig.stack import HOTLINE_NUMBER, Ports, free_udp_port, start_asterisk, write_test_config

pytestmark = pytest.mark.asterisk

PHONE = "dtv-01"  # agent dtv01's desk phone in the example; it registers


@dataclass
class AuthRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    workdir: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.config.asterisk.sip.port}"

    def contacts(self) -> str:
        return self.asterisk.rx("pjsip show contacts")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[AuthRig]:
    base = tmp_path_factory.mktemp("sip-auth")

    def tweak(data: dict[str, Any]) -> None:
        # Only agent dtv01 (phone dtv-01, which registers) serves the operator queue.
        operator = next(q for q in data["queues"] if q["id"] == "operator")
        operator["members"] = ["dtv01"]

    config_path = write_test_config(
        base,
        Ports(),
        {p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")},
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=tweak,
    )
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config, parts=frozenset({"agi"}))
    try:
        yield AuthRig(asterisk, config, services, base)
    finally:
        await services.close()
        asterisk.stop()


async def test_register_without_credentials_is_challenged_and_binds_nothing(rig: AuthRig) -> None:
    done = await register(rig.workdir / "sipp", rig.target, PHONE, free_port())
    assert done.statuses == [401], done.log_text
    assert f"{PHONE}/sip:" not in rig.contacts()


async def test_register_with_a_wrong_secret_is_refused(rig: AuthRig) -> None:
    done = await register(rig.workdir / "sipp", rig.target, PHONE, free_port(), "wrong-secret-123")
    assert done.statuses[0] == 401 and done.statuses[-1] in (401, 403), done.log_text
    assert 200 not in done.statuses
    assert f"{PHONE}/sip:" not in rig.contacts()


@pytest.mark.parametrize("phone", [PHONE, "t-chair"])
async def test_an_invite_claiming_to_be_a_phone_is_challenged(rig: AuthRig, phone: str) -> None:
    # From 127.0.0.1, the trunk's own address: a phone's name in From still wins.
    result = await SippCaller(rig.workdir / "calls").call(
        target=rig.target, number=HOTLINE_NUMBER, caller_id=phone, steps=[], timeout_s=10
    )
    assert not result.answered and result.final_status == 401, result.log_text


async def test_a_phone_registered_with_its_secret_takes_its_queue_call(rig: AuthRig) -> None:
    port = free_port()
    secret = phone_secret(rig.config, PHONE)  # what `hotline phones secret dtv-01` prints
    done = await register(rig.workdir / "sipp", rig.target, PHONE, port, secret)
    assert done.statuses == [401, 200], done.log_text
    assert f"{PHONE}/sip:{PHONE}@127.0.0.1:{port}" in rig.contacts()

    async with SippAnswerer(rig.workdir / "sipp", PHONE, hold_ms=1000, port=port) as desk:
        call = await SippCaller(rig.workdir / "calls").call(
            target=rig.target,
            number=HOTLINE_NUMBER,
            caller_id="0912000777",
            steps=[Pause(600), Dtmf("0")],  # main menu 0: the operator queue
            timeout_s=40,
        )
        await desk.wait_answered(1, timeout=5)
    assert call.answered, call.log_text
    assert desk.calls[0].caller_id.endswith("912000777")
