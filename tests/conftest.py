"""Shared fixtures. The end-to-end ones start a real Asterisk and SIPp phones;
when either is missing the suite fails loudly rather than skipping the proof."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ivr.asterisk.instance import AsteriskInstance, AsteriskNotFound, find_asterisk
from ivr.config import HotlineConfig
from ivr.service import RunningServices, start_services
from tests.rig.stack import (
    HOTLINE_NUMBER,
    REPO,
    CallRecords,
    Ports,
    start_asterisk,
    write_test_config,
)

PROMPTS_DIR = REPO / "prompts"


@pytest.fixture(scope="session")
def asterisk_binary() -> Path:
    try:
        return find_asterisk()
    except AsteriskNotFound as exc:
        pytest.fail(f"{exc} — the end-to-end tests need a real Asterisk", pytrace=False)


@pytest.fixture(scope="session")
def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        pytest.fail("sipp not found: apt-get install sip-tester", pytrace=False)
    return found


@pytest.fixture(scope="session")
def built_prompts() -> Path:
    """The real prompts, synthesized once (idempotent: unchanged ones are kept)."""
    from ivr.config import load_config
    from ivr.prompt_setup import build_hotline_prompts

    build_hotline_prompts(load_config(REPO / "examples" / "bac-tu-liem.yaml"))
    return PROMPTS_DIR


@pytest.fixture(scope="session")
def quick_prompts(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Path:
    """Every prompt as a 0.3 s tone (see tests/rig/quick_prompts.py); one test
    uses the real ones."""
    from tests.rig.quick_prompts import write_quick_prompts

    return write_quick_prompts(built_prompts, tmp_path_factory.mktemp("quick-prompts"))


@dataclass
class Stack:
    """A running Asterisk with its SIPp phones; see tests/rig/stack.py."""

    asterisk: AsteriskInstance
    config: HotlineConfig
    ports: Ports
    phones: dict[str, object]  # phone id → SippAnswerer
    carrier: object  # SippAnswerer behind the pstn trunk
    records: CallRecords
    workdir: Path

    @property
    def sip_target(self) -> str:
        return f"127.0.0.1:{self.ports.sip}"

    async def call(
        self,
        caller: str,
        steps: list[Any],
        *,
        hangup_after_ms: int | None = None,
        timeout_s: float = 60,
        **kwargs: Any,
    ) -> Any:
        """A SIPp citizen ``caller`` dials the hotline and plays ``steps``;
        by default it waits for the far end to hang up."""
        from ivr.sim.sipp import SippCaller

        return await SippCaller(self.workdir / "calls").call(
            target=self.sip_target,
            number=HOTLINE_NUMBER,
            caller_id=caller,
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            timeout_s=timeout_s,
            **kwargs,
        )


_current_stack: Stack | None = None


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[Stack]:
    from ivr.sim.sipp import SippAnswerer

    global _current_stack
    base = tmp_path_factory.mktemp("stack")
    phones = {
        "t-chair": SippAnswerer(base / "sipp", "t-chair", mode="answer", hold_ms=1500),
        "t-chair-silent": SippAnswerer(base / "sipp", "t-chair-silent", mode="no_answer"),
        "t-vice": SippAnswerer(base / "sipp", "t-vice", mode="answer", hold_ms=1500),
        "t-agent": SippAnswerer(base / "sipp", "t-agent", mode="answer", hold_ms=1500),
    }
    carrier = SippAnswerer(base / "sipp", "carrier", mode="answer", hold_ms=1500)
    for phone in [*phones.values(), carrier]:
        await phone.start()
    ports = Ports()
    config_path = write_test_config(
        base,
        ports,
        {phone_id: phone.contact for phone_id, phone in phones.items()},
        quick_prompts,
        trunk_port=carrier.port,
    )
    asterisk, config = start_asterisk(base, config_path)
    result = Stack(asterisk, config, ports, phones, carrier, CallRecords(config), base)
    _current_stack = result
    try:
        yield result
    finally:
        _current_stack = None
        asterisk.stop()
        result.records.dispose()
        for phone in [*phones.values(), carrier]:
            await phone.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def services(stack: Stack) -> AsyncIterator[RunningServices]:
    """Our FastAGI server on the port the dialplan calls."""
    running = await start_services(stack.config)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def caller_number() -> Iterator[str]:
    """A distinct caller number per test, so records never mix."""
    caller_number.counter = getattr(caller_number, "counter", 0) + 1  # type: ignore[attr-defined]
    yield f"09120{os.getpid() % 1000:03d}{caller_number.counter:02d}"  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach the private Asterisk's log to a failing end-to-end test."""
    outcome = yield
    report = outcome.get_result()
    uses_stack = "stack" in getattr(item, "fixturenames", ())
    if report.failed and _current_stack is not None and uses_stack:
        report.sections.append(("asterisk log", _current_stack.asterisk.log_tail(150)))


# --- tiers ------------------------------------------------------------------------
# Every test gets exactly one tier marker, so `pytest -m unit` is the fast tier
# (`./hotline.sh check`), and the whole suite still runs everything:
# - e2e: the real Asterisk or the browser (markers asterisk, browser);
# - integration: one real part: a database (marker db), or a module below that
#   runs espeak-ng, vosk or SIPp;
# - unit: the rest, and a unit test that starts an external program fails.
INTEGRATION_MODULES = frozenset(
    {
        "test_prompts",  # espeak-ng, sox
        "test_sipp_rig",  # SIPp
        "test_transcription",  # vosk
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if item.get_closest_marker("asterisk") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.e2e)
        elif item.get_closest_marker("integration"):
            continue  # marked by the test itself (it runs one of our commands, say)
        elif item.get_closest_marker("db") or module in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_program(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit test that starts an external program belongs to another tier."""
    if request.node.get_closest_marker("unit") is None:
        return
    import asyncio
    import subprocess

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"a unit test started an external program ({args[0] if args else '?'}): "
            "mark it db/asterisk/browser or list its module in INTEGRATION_MODULES"
        )

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse)
