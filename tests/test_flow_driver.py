"""The flow test driver (tests/flow_driver.py) runs flows through the real AGI
executor against a fake Asterisk, so the flow tests cannot drift from what the
FastAGI server does with the same flow."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from ivr.config import load_config
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.steps import Collect, Input, InputKind, Play
from tests.flow_driver import ScriptedCaller, keys
from tests.rig.stack import EXAMPLE

MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_the_flow_tests_speak_agi_through_the_executor() -> None:
    flow = HotlineFlow(load_config(EXAMPLE))
    caller = ScriptedCaller(keys("5", "03"))
    caller.run(flow.run(flow.config.hotlines[0], MONDAY_10H_HANOI))
    assert caller.peer is not None
    assert caller.peer.commands == [
        'STREAM FILE greeting "0123456789*#"',
        'STREAM FILE recording_notice "0123456789*#"',
        "GET DATA main_menu 5000 1",
        "GET DATA area_menu 6000 2",
    ]
    assert caller.marks == ["greeting", "menu:main", "menu:wards", "route:dial"]


def test_a_key_during_the_greeting_stops_it() -> None:
    """Before: the driver counted the whole greeting as heard, although the
    executor stops playback at the key."""
    flow = HotlineFlow(load_config(EXAMPLE))
    caller = ScriptedCaller(keys("06"), barge_in="5")
    result = caller.run(flow.run(flow.config.hotlines[0], MONDAY_10H_HANOI))
    assert caller.prompts_heard == ["greeting", "area_menu"]
    assert result.route is not None and result.route.area_code == "minh-khai"


def _barge_then_collect() -> Generator[Any, Any, Any]:
    reply = yield Play(("greeting",), interruptible=True)
    return (yield Collect("menu", 5, 4, "#", already=reply.digits))


def test_keys_after_a_barge_in_are_added_to_it() -> None:
    """Before: the driver answered the rest of a barged-in input with the next
    answer alone, where the executor reads it key by key after the first."""
    caller = ScriptedCaller(keys("23"), barge_in="1")
    assert caller.run(_barge_then_collect()) == Input.keys("123")
    assert caller.prompts_heard == ["greeting"]  # the menu prompt is not replayed
    assert caller.peer is not None
    assert caller.peer.commands[1:] == ["WAIT FOR DIGIT 5000"] * 3


def test_running_out_of_answers_is_a_hang_up() -> None:
    caller = ScriptedCaller([])
    assert caller.run(_barge_then_collect()) == Input(InputKind.HANGUP)
    assert caller.peer is not None and caller.peer.hung_up
