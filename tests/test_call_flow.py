"""Every branch of the call flow, without a PBX."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.config.schema import HotlineConfig
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.steps import Collect, RouteKind
from tests.flow_driver import ScriptedCaller, keys

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SUNDAY_10H_HANOI = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def flow(config: HotlineConfig) -> HotlineFlow:
    return HotlineFlow(config)


def run(flow: HotlineFlow, caller: ScriptedCaller, when: datetime = MONDAY_10H_HANOI):
    return caller.run(flow.run(flow.config.hotlines[0], when))


def test_ward_shortcut_rings_chairman_then_fallbacks_then_operator(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("5", "03"))
    result = run(flow, caller)
    route = result.route
    assert route is not None and route.kind is RouteKind.DIAL
    assert route.area_code == "dong-ngac"
    assert [t.dial_string for t in route.targets] == [
        "PJSIP/0900000103@pstn",
        "PJSIP/0900000203@pstn",
        "PJSIP/vp-dong-ngac",
    ]
    assert route.targets[0].label == "chairman:dong-ngac"
    assert route.targets[0].ring_seconds == 20
    assert route.final is not None and route.final.queue == "operator"
    assert route.announce == ("area_dong-ngac",)
    assert result.keys_pressed == "5,03"
    assert caller.prompts_heard == ["greeting", "recording_notice", "main_menu", "area_menu"]


def test_ward_code_with_terminator_is_accepted(flow: HotlineFlow) -> None:
    result = run(flow, ScriptedCaller(keys("5", "12#")))
    assert result.route is not None and result.route.area_code == "xuan-dinh"


def test_barge_in_during_greeting_skips_it_and_counts_as_the_key(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("06"), barge_in="5")
    result = run(flow, caller)
    collects = [s for s in caller.steps if isinstance(s, Collect)]
    assert collects[0].already == "5"  # main menu takes the barge-in key
    assert result.route is not None and result.route.area_code == "minh-khai"


def test_wrong_key_reprompts_then_routes(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("9", "5", "03"))
    result = run(flow, caller)
    assert caller.prompts_heard.count("main_menu") == 2
    assert "invalid_key" in caller.prompts_heard
    assert result.route is not None and result.route.area_code == "dong-ngac"


def test_wrong_ward_code_reprompts_the_ward_menu(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("5", "99", "01"))
    result = run(flow, caller)
    assert caller.prompts_heard.count("area_menu") == 2
    assert result.route is not None and result.route.area_code == "co-nhue-1"


def test_three_wrong_keys_go_to_the_operator(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("9", "8", "7"))
    result = run(flow, caller)
    assert caller.prompts_heard[-1] == "to_operator"
    assert result.route is not None and result.route.kind is RouteKind.QUEUE
    assert result.route.queue == "operator"


def test_silence_goes_to_the_operator_after_the_attempts(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("", "", ""))
    result = run(flow, caller)
    assert caller.prompts_heard.count("no_input") == 2
    assert result.route is not None and result.route.queue == "operator"


def test_topic_keys_go_to_their_queues(flow: HotlineFlow) -> None:
    for key, queue in (("1", "procedures"), ("2", "conduct"), ("3", "field"), ("0", "operator")):
        result = run(flow, ScriptedCaller(keys(key)))
        assert result.route is not None and result.route.queue == queue, key


def test_closed_queue_on_sunday_goes_out_of_hours(flow: HotlineFlow) -> None:
    result = run(flow, ScriptedCaller(keys("1")), when=SUNDAY_10H_HANOI)
    assert result.route is not None
    assert result.route.announce == ("out_of_hours",)
    assert result.route.queue != "procedures"


def test_star_repeats_the_menu(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("*", "0"))
    result = run(flow, caller)
    assert caller.prompts_heard.count("main_menu") == 2
    assert result.route is not None and result.route.queue == "operator"


def test_department_extension(flow: HotlineFlow) -> None:
    result = run(flow, ScriptedCaller(keys("6", "203")))
    assert result.route is not None and result.route.kind is RouteKind.DIAL
    assert result.route.targets[0].dial_string == "PJSIP/pb-tu-phap"


def test_hangup_mid_menu_ends_with_the_last_step(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("5"))  # then hangs up in the ward menu
    result = run(flow, caller)
    assert result.route is None
    assert result.last_step == "menu:wards"
    assert result.keys_pressed == "5"
