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
    assert route.announce == ("area_dong-ngac", "transferring")
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
    caller = ScriptedCaller(keys("7", "5", "03"))
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
    caller = ScriptedCaller(keys("7", "7", "7"))
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


# --- issue 3 branches -----------------------------------------------------------------

from datetime import date  # noqa: E402

from ivr.flow.call_flow import case_status_prompts, survey_flow  # noqa: E402
from ivr.flow.steps import CaseInfo  # noqa: E402

CALLER = "+84912345678"


def run_as(flow: HotlineFlow, caller: ScriptedCaller, number: str | None = CALLER):
    return caller.run(flow.run(flow.config.hotlines[0], MONDAY_10H_HANOI, number))


def test_case_status_reads_code_status_and_due_date(flow: HotlineFlow) -> None:
    case = CaseInfo("25071234", "in_progress", date(2026, 12, 15))
    caller = ScriptedCaller(keys("4", "25071234#", "0"), cases={case.code: case})
    result = run_as(flow, caller)
    heard = caller.prompts_heard
    spoken = heard[heard.index("case_status_intro") :]
    assert spoken[:9] == [
        "case_status_intro",
        "digit_2",
        "digit_5",
        "digit_0",
        "digit_7",
        "digit_1",
        "digit_2",
        "digit_3",
        "digit_4",
    ]
    assert "case_status_in_progress" in spoken
    # "ngày mười lăm tháng mười hai"
    assert spoken[spoken.index("case_due_date_intro") + 1 :][:2] == ["number_ten", "number_lam"]
    # back to the main menu afterwards: 0 reaches the operator
    assert heard.count("main_menu") == 2
    assert result.route is not None and result.route.queue == "operator"
    assert result.keys_pressed == "4,25071234,0"


def test_unknown_case_code_says_not_found_and_retries(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("4", "999", "998", "997", "0"))
    result = run_as(flow, caller)
    assert caller.prompts_heard.count("case_not_found") == 3
    assert result.route is not None and result.route.queue == "operator"


def test_answered_case_says_answered_without_a_due_date() -> None:
    prompts = case_status_prompts(CaseInfo("1", "answered", date(2026, 1, 2)))
    assert prompts == ("case_status_intro", "digit_1", "case_status_answered")


def test_caller_with_an_open_case_is_offered_it_first(flow: HotlineFlow) -> None:
    open_case = CaseInfo("25070001", "received", date(2026, 12, 1))
    caller = ScriptedCaller(keys("1", "0"), caller_cases=[open_case])
    result = run_as(flow, caller)
    heard = caller.prompts_heard
    assert (
        heard.index("open_case_offer") < heard.index("case_status_intro") < heard.index("main_menu")
    )
    assert "case_status_received" in heard
    assert result.route is not None and result.route.queue == "operator"


def test_open_case_offer_can_be_declined_and_withheld_callers_are_not_asked(
    flow: HotlineFlow,
) -> None:
    open_case = CaseInfo("25070001", "received", date(2026, 12, 1))
    declined = ScriptedCaller(keys("", "3"), caller_cases=[open_case])
    assert run_as(flow, declined).route.queue == "field"  # type: ignore[union-attr]
    assert "case_status_intro" not in declined.prompts_heard
    withheld = ScriptedCaller(keys("3"), caller_cases=[open_case])
    assert run_as(flow, withheld, number=None).route.queue == "field"  # type: ignore[union-attr]
    assert "open_case_offer" not in withheld.prompts_heard


@pytest.mark.parametrize("key", ["1", "2", "3"])
def test_survey_keeps_each_rating_the_prompt_offers(key: str) -> None:
    rated = ScriptedCaller(keys(key))
    assert rated.run(survey_flow()) == int(key)
    assert rated.prompts_heard == ["survey", "survey_thanks"]


@pytest.mark.parametrize("key", ["4", "5", "9", "0"])
def test_survey_reprompts_a_key_the_prompt_does_not_offer(key: str) -> None:
    # Issue 12: the prompt offers 1-3 but 4 and 5 used to be stored as ratings.
    retried = ScriptedCaller(keys(key, "3"))
    assert retried.run(survey_flow()) == 3
    assert retried.prompts_heard == ["survey", "invalid_key", "survey", "survey_thanks"]


def test_survey_without_a_key_keeps_nothing() -> None:
    silent = ScriptedCaller(keys(""))
    assert silent.run(survey_flow()) is None


def test_survey_prompt_offers_exactly_the_scale_the_flow_keeps() -> None:
    """The scale is said (catalog, vi and en) and stored (SATISFACTION_SCALE) the same way."""
    import re

    import yaml

    from ivr.flow.call_flow import SATISFACTION_SCALE

    catalog = yaml.safe_load(
        (EXAMPLE.parents[1] / "prompts" / "catalog.yaml").read_text(encoding="utf-8")
    )
    assert list(SATISFACTION_SCALE) == [1, 2, 3]
    said_vi = [int(key) for key in re.findall(r"phím (\d)", catalog["survey"]["vi"])]
    said_en = [int(key) for key in re.findall(r"(\d) if", catalog["survey"]["en"])]
    assert said_vi == said_en == list(SATISFACTION_SCALE)


def _with(config: HotlineConfig, **hotline_changes: object) -> HotlineConfig:
    hotline = config.hotlines[0].model_copy(update=hotline_changes)
    return config.model_copy(update={"hotlines": [hotline]})


def test_out_of_hours_hotline_plays_the_hours_then_its_destination(
    config: HotlineConfig,
) -> None:
    closed = HotlineFlow(_with(config, schedule="office", out_of_hours=_dest("menu:wards")))
    caller = ScriptedCaller(keys("03"))
    result = caller.run(closed.run(closed.config.hotlines[0], SUNDAY_10H_HANOI))
    assert caller.prompts_heard[:2] == ["out_of_hours", "area_menu"]
    assert "greeting" not in caller.prompts_heard
    assert result.route is not None and result.route.area_code == "dong-ngac"


def test_holiday_counts_as_closed(config: HotlineConfig) -> None:
    tet = datetime(2026, 2, 17, 3, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Hà Nội
    closed = HotlineFlow(_with(config, schedule="office"))
    caller = ScriptedCaller([])
    closed_result = caller.run(closed.run(closed.config.hotlines[0], tet))
    assert caller.prompts_heard[0] == "out_of_hours"
    assert closed_result.route is not None and closed_result.route.kind is RouteKind.VOICEMAIL


def test_emergency_keys_route_without_announcement(flow: HotlineFlow) -> None:
    for key, number in (("1", "113"), ("2", "114"), ("3", "115")):
        caller = ScriptedCaller(keys("9", key))
        result = run(flow, caller)
        assert result.route is not None and result.route.kind is RouteKind.DIAL
        assert result.route.targets[0].dial_string == f"PJSIP/{number}@pstn"
        assert result.route.announce == ()
        assert caller.prompts_heard[-1] == "emergency_menu"  # nothing between key and ring


def test_out_of_scope_prompt_returns_to_the_menu(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("8", "0"))
    result = run(flow, caller)
    heard = caller.prompts_heard
    assert heard[heard.index("out_of_scope") + 1] == "main_menu"
    assert result.route is not None and result.route.queue == "operator"


def test_any_depth_area_tree_becomes_nested_menus(config: HotlineConfig) -> None:
    """A province menu whose units are districts without chairmen: each district is
    a menu of its wards."""
    from ivr.config.schema import Menu

    hotline = config.hotlines[0]
    province_menu = Menu(prompt="area_menu", terminator="#", areas_under="ha-noi")
    district = config.area("bac-tu-liem")
    assert district is not None
    areas = [
        config.areas[0].model_copy(
            update={"children": [district.model_copy(update={"shortcut": "21"})]}
        )
    ]
    nested = config.model_copy(
        update={
            "areas": areas,
            "hotlines": [
                hotline.model_copy(
                    update={
                        "menus": {**hotline.menus, "province": province_menu},
                        "main_menu": "province",
                    }
                )
            ],
        }
    )
    flow = HotlineFlow(nested)
    caller = ScriptedCaller(keys("21", "12"))
    result = caller.run(flow.run(nested.hotlines[0], MONDAY_10H_HANOI))
    assert caller.marks[1:3] == ["menu:province", "menu:area:bac-tu-liem"]
    assert result.route is not None and result.route.area_code == "xuan-dinh"


def _dest(text: str):  # type: ignore[no-untyped-def]
    from ivr.config.destinations import Destination

    return Destination.parse(text)


def test_busy_queue_announces_position_wait_and_the_callback_key(flow: HotlineFlow) -> None:
    from ivr.flow.steps import QueueLoadInfo

    busy = QueueLoadInfo(waiting=2, ready_agents=0, agents=2, average_hold_seconds=120)
    result = run(flow, ScriptedCaller(keys("0"), queue_load=busy))
    assert result.route is not None and result.route.queue == "operator"
    # 3rd in line, 3 calls × 2 min shared by 2 agents = 3 minutes
    assert result.route.announce == (
        "queue_all_busy",
        "queue_position_intro",
        "digit_3",
        "queue_position_outro",
        "queue_wait_intro",
        "digit_3",
        "minutes",
        "queue_callback_offer",
    )


def test_free_agent_means_no_queue_announcement(flow: HotlineFlow) -> None:
    result = run(flow, ScriptedCaller(keys("0")))
    assert result.route is not None and result.route.announce == ()


def test_expected_wait_is_whole_minutes_and_at_least_one() -> None:
    from ivr.flow.call_flow import expected_wait_minutes
    from ivr.flow.steps import QueueLoadInfo

    assert expected_wait_minutes(1, QueueLoadInfo(0, 0, 3, 20)) == 1
    assert expected_wait_minutes(7, QueueLoadInfo(6, 0, 2, 0)) == 11  # 7 × 180 s / 2


class RecordingTransport:
    """An AGI peer for the channel's command encoding only (the flow itself is
    proven against Asterisk in the e2e tests)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.commands: list[str] = []

    async def send_command(self, command: str) -> dict[str, object]:
        self.commands.append(command)
        return {"status_code": 200, "result": ("0", "")}


async def test_route_variables_go_in_one_mset_unless_a_value_would_be_mangled() -> None:
    from ivr.agi.channel import AgiChannel

    transport = RecordingTransport()
    channel = AgiChannel(transport)
    await channel.set_variables(
        {"HL_TARGETS": "PJSIP/t-chair|20|chairman:dong-ngac^PJSIP/0900@pstn|20|vice",
         "HL_ROUTE": "dial"}
    )  # fmt: skip
    assert transport.commands == [
        'EXEC MSet "HL_TARGETS=PJSIP/t-chair|20|chairman:dong-ngac^PJSIP/0900@pstn|20|vice,'
        'HL_ROUTE=dial"'
    ]
    transport.commands.clear()
    await channel.set_variables({"HL_QUEUE": "a,b", "HL_NOTE": "${EVIL}", "HL_ROUTE": "queue"})
    assert transport.commands == [
        'SET VARIABLE HL_QUEUE "a,b"',
        'SET VARIABLE HL_NOTE "${EVIL}"',
        'SET VARIABLE HL_ROUTE "queue"',
    ]
