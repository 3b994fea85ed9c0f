"""The one polling helper (ivr/sim/polling.py) that the rig, the demo and the
tests wait with."""

from __future__ import annotations

import pytest

from ivr.sim.polling import wait_for


async def test_returns_what_the_probe_found_plain_or_async() -> None:
    answers = iter([None, 0, "ready"])
    assert await wait_for(lambda: next(answers), 5, "a value", interval=0) == "ready"

    async def found() -> dict[str, int]:
        return {"calls": 1}

    assert await wait_for(found, 5, "a value") == {"calls": 1}


async def test_names_what_it_waited_for_when_time_is_up() -> None:
    asked = 0

    def never() -> bool:
        nonlocal asked
        asked += 1
        return False

    with pytest.raises(TimeoutError, match="waiting for the chairman to ring"):
        await wait_for(never, 0, "the chairman to ring", interval=0)
    assert asked >= 1


async def test_an_error_in_the_probe_ends_the_wait_at_once() -> None:
    def died() -> bool:
        raise RuntimeError("SIPp exited")

    with pytest.raises(RuntimeError, match="SIPp exited"):
        await wait_for(died, 60, "SIPp to answer")
