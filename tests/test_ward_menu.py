"""A city-wide ward menu: all 126 units of Hà Nội (from the `vietnam-provinces`
package) behind one menu with three-digit codes, "#" for shorter keys, and the
unit's name read back before its chairman is rung (``Menu.confirm_area``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from vietnam_provinces import Province, ProvinceCode, Ward

from ivr.config import ConfigError, load_config
from ivr.config.area_import import province_units
from ivr.config.destinations import Destination, DestinationKind
from ivr.config.references import menu_keys
from ivr.config.schema import HotlineConfig
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.steps import RouteKind
from ivr.routing_table import build_routing_table
from tests.flow_driver import ScriptedCaller, keys

MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
HANOI = ProvinceCode(1)
HANOI_CODE = "01"
UNITS_OF_HANOI = 126
# The last few units have no chairman yet, as an import brings them.
WITHOUT_CHAIRMAN = 6
BASE_PROMPTS = ["greeting", "recording_notice", "city_area_menu"]


def hanoi_units() -> list[tuple[str, str]]:
    """(area code, name) of every Hà Nội unit, as `hotline areas import` makes
    them: ordered by official code, which is also the order of their shortcuts."""
    _, wards = province_units(HANOI_CODE)
    return [(ward.slug, ward.name) for ward in wards]


def official_codes() -> dict[str, str]:
    _, wards = province_units(HANOI_CODE)
    return {ward.slug: ward.official_code for ward in wards}


def shortcut(index: int) -> str:
    return f"{index + 1:03d}"


def city_config_text(
    units: list[tuple[str, str]] | None = None,
    terminator: str = "#",
    shortcuts: dict[int, str] | None = None,
    confirm_area: bool = True,
) -> str:
    """A one-hotline config whose main menu is every unit's three-digit code,
    0 for the operator and 9 for a message (a caller who does not know the code)."""
    units = hanoi_units() if units is None else units
    shortcuts = shortcuts or {}
    province = Province.from_code(HANOI)
    official = official_codes()
    lines = [
        "asterisk:",
        "  ami: {username: hotline, secret: change-me-ami-secret}",
        "trunks:",
        "  - {id: pstn, host: 127.0.0.1, port: 5070}",
        "queues:",
        "  - {id: operator, title: Điện thoại viên}",
        "areas:",
        "  - code: ha-noi",
        f"    name: {province.name}",
        "    children:",
    ]
    for index, (code, name) in enumerate(units):
        lines += [
            f"      - code: {code}",
            f"        name: {name}",
            *([f'        official_code: "{official[code]}"'] if code in official else []),
            f'        shortcut: "{shortcuts.get(index, shortcut(index))}"',
        ]
        if index < len(units) - WITHOUT_CHAIRMAN:
            lines += [
                f"        chairman: tel:09{index + 1:08d}@pstn",
                "        fallbacks: [queue:operator]",
            ]
    lines += [
        "hotlines:",
        "  - id: ha-noi",
        "    name: Đường dây nóng UBND Thành phố Hà Nội",
        "    unit_name: Thành phố Hà Nội",
        '    numbers: ["02439999999"]',
        "    main_menu: wards",
        "    menus:",
        "      wards:",
        "        prompt: city_area_menu",
        "        timeout_seconds: 6",
        f'        terminator: "{terminator}"',
        f"        confirm_area: {'true' if confirm_area else 'false'}",
        "        areas_under: ha-noi",
        "        options:",
        '          "0": queue:operator',
        '          "9": voicemail',
        "        on_invalid: queue:operator",
    ]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ha-noi.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return found[occurrence - 1]


@pytest.fixture(scope="module")
def units() -> list[tuple[str, str]]:
    return hanoi_units()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> HotlineConfig:
    return load_config(_write(tmp_path_factory.mktemp("city"), city_config_text()))


@pytest.fixture(scope="module")
def flow(config: HotlineConfig) -> HotlineFlow:
    return HotlineFlow(config)


def run(flow: HotlineFlow, caller: ScriptedCaller):
    return caller.run(flow.run(flow.config.hotlines[0], MONDAY_10H_HANOI))


def test_the_package_gives_hanoi_its_126_units(units: list[tuple[str, str]]) -> None:
    """The menu's list is the package's, unit for unit."""
    in_package = {ward.name for ward in Ward.iter_all() if ward.province_code == HANOI}
    assert len(units) == UNITS_OF_HANOI == len(in_package)
    assert {name for _, name in units} == in_package
    assert ("phuong-hoan-kiem", "Phường Hoàn Kiếm") in units
    assert len({code for code, _ in units}) == UNITS_OF_HANOI


def test_code_is_read_back_and_1_rings_that_chairman_without_naming_it_again(
    flow: HotlineFlow, units: list[tuple[str, str]]
) -> None:
    code, _ = units[4]
    caller = ScriptedCaller(keys("005", "1"))
    result = run(flow, caller)
    route = result.route
    assert route is not None and route.kind is RouteKind.DIAL
    assert route.area_code == code
    assert route.targets[0].label == f"chairman:{code}"
    assert route.targets[0].dial_string == "PJSIP/0900000005@pstn"
    assert caller.prompts_heard == [*BASE_PROMPTS, f"area_{code}", "area_confirm"]
    assert route.announce == ("transferring",)  # the name was said and confirmed
    assert result.keys_pressed == "005,1"
    assert f"confirm_area:{code}" in caller.marks


def test_1_pressed_during_the_name_confirms_at_once(
    units: list[tuple[str, str]], tmp_path: Path
) -> None:
    """A caller who knows the answer need not wait for the question. (No greeting
    here, so the name is the first playback the scripted caller presses a key in.)"""
    text = city_config_text().replace(
        "    main_menu: wards\n", "    main_menu: wards\n    greeting_prompts: []\n"
    )
    config = load_config(_write(tmp_path, text))
    caller = ScriptedCaller(keys("005"), barge_in="1")
    result = caller.run(HotlineFlow(config).run(config.hotlines[0], MONDAY_10H_HANOI))
    assert caller.prompts_heard == ["city_area_menu", f"area_{units[4][0]}"]
    assert result.route is not None and result.route.area_code == units[4][0]
    assert result.keys_pressed == "005,1"


def test_2_enters_another_code_which_is_confirmed(
    flow: HotlineFlow, units: list[tuple[str, str]]
) -> None:
    first, second = units[4][0], units[16][0]
    caller = ScriptedCaller(keys("005", "2", "017", "1"))
    result = run(flow, caller)
    assert result.route is not None and result.route.area_code == second
    assert caller.prompts_heard == [
        *BASE_PROMPTS,
        f"area_{first}",
        "area_confirm",
        "city_area_menu",
        f"area_{second}",
        "area_confirm",
    ]
    assert result.keys_pressed == "005,2,017,1"


def test_a_wrong_key_at_the_read_back_enters_the_code_again(
    flow: HotlineFlow, units: list[tuple[str, str]]
) -> None:
    caller = ScriptedCaller(keys("005", "7", "005", "1"))
    result = run(flow, caller)
    assert "invalid_key" in caller.prompts_heard
    assert caller.prompts_heard.count("city_area_menu") == 2
    assert result.route is not None and result.route.area_code == units[4][0]


def test_silence_at_the_read_back_repeats_it_once_then_asks_the_code_again(
    flow: HotlineFlow, units: list[tuple[str, str]]
) -> None:
    code = units[4][0]
    caller = ScriptedCaller(keys("005", "", "", "005", "1"))
    result = run(flow, caller)
    assert caller.prompts_heard == [
        *BASE_PROMPTS,
        f"area_{code}",
        "area_confirm",
        f"area_{code}",
        "area_confirm",
        "no_input",
        "city_area_menu",
        f"area_{code}",
        "area_confirm",
    ]
    assert result.route is not None and result.route.area_code == code


def test_declining_every_attempt_goes_to_the_operator(flow: HotlineFlow) -> None:
    """ "2" counts as an attempt: nobody loops between code and read-back for ever."""
    caller = ScriptedCaller(keys("005", "2", "006", "2", "007", "2"))
    result = run(flow, caller)
    assert caller.prompts_heard[-1] == "to_operator"
    assert result.route is not None and result.route.queue == "operator"


def test_unknown_codes_go_to_the_operator_after_the_attempts(flow: HotlineFlow) -> None:
    caller = ScriptedCaller(keys("555", "777", "127"))
    result = run(flow, caller)
    assert caller.prompts_heard.count("invalid_key") == 2
    assert caller.prompts_heard[-1] == "to_operator"
    assert not any(name.startswith("area_") for name in caller.prompts_heard[3:])
    assert result.route is not None and result.route.queue == "operator"


@pytest.mark.parametrize("pressed", ["0#", "0"])  # "#" at once, or the timeout
def test_0_is_the_operator_for_a_caller_who_does_not_know_the_code(
    flow: HotlineFlow, pressed: str
) -> None:
    caller = ScriptedCaller(keys(pressed))
    result = run(flow, caller)
    assert caller.prompts_heard == BASE_PROMPTS  # no read-back for the operator
    assert result.route is not None and result.route.kind is RouteKind.QUEUE
    assert result.route.queue == "operator"


def test_9_hash_leaves_a_message_naming_the_unit(flow: HotlineFlow) -> None:
    result = run(flow, ScriptedCaller(keys("9#")))
    assert result.route is not None and result.route.kind is RouteKind.VOICEMAIL


def test_the_menu_reads_three_keys_and_hash_ends_a_shorter_one(flow: HotlineFlow) -> None:
    """GET DATA ends at its maximum (three keys: a code needs no "#") or at "#"."""
    caller = ScriptedCaller(keys("0#"))
    run(flow, caller)
    assert caller.peer is not None
    assert "GET DATA city_area_menu 6000 3" in caller.peer.commands


def test_a_code_begun_during_the_greeting_ends_on_its_third_key(
    flow: HotlineFlow, units: list[tuple[str, str]]
) -> None:
    """After a barge-in the executor reads key by key: it stops at the third
    key without waiting for "#" or the timeout, and at "#" for a shorter key."""
    caller = ScriptedCaller(keys("05", "1"), barge_in="0")
    result = run(flow, caller)
    assert caller.peer is not None
    reads = [c for c in caller.peer.commands if c.startswith("WAIT FOR DIGIT")]
    assert reads == ["WAIT FOR DIGIT 6000"] * 2  # "0", then "0" "5": three keys, done
    assert result.route is not None and result.route.area_code == units[4][0]

    operator = ScriptedCaller(keys("#"), barge_in="0")
    result = run(flow, operator)
    assert result.route is not None and result.route.queue == "operator"


def test_every_unit_has_one_code_and_every_code_rings_its_unit(
    flow: HotlineFlow, config: HotlineConfig, units: list[tuple[str, str]]
) -> None:
    keymap = menu_keys(config.hotlines[0].menus["wards"], config)
    area_keys = {k: d for k, d in keymap.items() if d.kind is DestinationKind.AREA}
    assert len(area_keys) == UNITS_OF_HANOI
    assert {d.argument for d in area_keys.values()} == {code for code, _ in units}
    assert all(len(key) == 3 for key in area_keys)
    for index, (code, _) in enumerate(units):
        assert keymap[shortcut(index)] == Destination(DestinationKind.AREA, code)
        caller = ScriptedCaller(keys(shortcut(index), "1"))
        result = run(flow, caller)
        assert caller.prompts_heard[3] == f"area_{code}", code
        route = result.route
        assert route is not None, code
        if index < UNITS_OF_HANOI - WITHOUT_CHAIRMAN:
            assert route.area_code == code and route.targets[0].label == f"chairman:{code}"
        else:
            assert route.queue == "operator", code


def test_a_unit_without_a_chairman_reaches_the_operator_not_a_crash(
    units: list[tuple[str, str]], tmp_path: Path
) -> None:
    """Before: the flow asked the routing table to ring a chairman that is not
    there and the call ended in an exception (both with and without read-back)."""
    last = len(units) - 1
    for confirm in (True, False):
        config = load_config(_write(tmp_path, city_config_text(confirm_area=confirm)))
        caller = ScriptedCaller(keys(shortcut(last), "1"))
        result = caller.run(HotlineFlow(config).run(config.hotlines[0], MONDAY_10H_HANOI))
        assert result.route is not None and result.route.queue == "operator"
        assert caller.prompts_heard[-1] == "to_operator"
        assert result.last_step == "route:queue"
        assert f"no_chairman:{units[last][0]}" in caller.marks


def test_without_read_back_the_name_is_announced_with_the_transfer(
    units: list[tuple[str, str]], tmp_path: Path
) -> None:
    config = load_config(_write(tmp_path, city_config_text(confirm_area=False)))
    caller = ScriptedCaller(keys("005"))
    result = caller.run(HotlineFlow(config).run(config.hotlines[0], MONDAY_10H_HANOI))
    assert caller.prompts_heard == BASE_PROMPTS
    assert result.route is not None
    assert result.route.announce == (f"area_{units[4][0]}", "transferring")


# --- check-config: the full list's keys --------------------------------------------


def _single_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    return str(caught.value.problems[0])


def test_the_full_list_with_0_and_9_under_hash_is_accepted(config: HotlineConfig) -> None:
    """'0' is the start of '001'…'099': fine, since the caller ends it with '#'."""
    menu = config.hotlines[0].menus["wards"]
    assert menu.terminator == "#" and menu.confirm_area


def test_a_duplicated_code_is_refused_at_its_line(
    units: list[tuple[str, str]], tmp_path: Path
) -> None:
    text = city_config_text(shortcuts={100: "005"})
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'shortcut: "005"', occurrence=2)
    assert error.startswith(f"{path}:{line}: areas[0].children[100].shortcut:")
    assert f"'005' of area {units[100][0]!r}" in error and units[4][0] in error


def test_a_code_clashing_with_an_option_is_refused_at_its_line(tmp_path: Path) -> None:
    text = city_config_text(shortcuts={30: "9"})
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'shortcut: "9"')
    assert error.startswith(f"{path}:{line}: areas[0].children[30].shortcut:")
    assert "also used by option '9'" in error


def test_without_hash_every_key_that_starts_another_is_counted(
    units: list[tuple[str, str]], tmp_path: Path
) -> None:
    """Before: only neighbours in sorted order were compared, so '0' starting
    99 codes was reported once, as if it clashed with '001' alone."""
    text = city_config_text(terminator="")
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'terminator: ""')
    assert error.startswith(f"{path}:{line}: hotlines[0].menus.wards.terminator:")
    first = f"area {units[0][0]!r} ({units[0][1]})"
    assert f"option '0' is the start of {first} and 98 more keys" in error
    assert "set terminator: '#'" in error


def test_without_hash_a_shorter_key_that_starts_nothing_is_refused(tmp_path: Path) -> None:
    """'9' starts no code, but without '#' the caller who presses it waits out the
    whole timeout: mixed lengths need the terminator (or keys of one length).
    Before: accepted."""
    text = city_config_text(terminator="").replace('"0": queue:operator', '"000": queue:operator')
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'terminator: ""')
    assert error.startswith(f"{path}:{line}: hotlines[0].menus.wards.terminator:")
    assert "option '9'" in error and "timeout" in error


def test_a_code_with_hash_is_refused_at_its_line(tmp_path: Path) -> None:
    """'#' ends the input, so a code holding it can never be keyed. Before: only
    menu options were checked for it, not units' shortcuts."""
    text = city_config_text(shortcuts={11: "01#"})
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'shortcut: "01#"')
    assert error.startswith(f"{path}:{line}: areas[0].children[11].shortcut:")
    assert "'#' ends input" in error


def test_the_fallback_routing_table_builds_for_the_full_list(config: HotlineConfig) -> None:
    """The table the fallback script reads while the server is down. Before: its
    build raised on the first unit without a chairman, so nothing was rendered."""
    [menu] = build_routing_table(config)["hotlines"]["ha-noi"]["area_menus"]
    with_chairman = UNITS_OF_HANOI - WITHOUT_CHAIRMAN
    assert sorted(menu["shortcuts"]) == [shortcut(i) for i in range(with_chairman)]
    assert menu["max_digits"] == 3


def test_a_call_reads_keymaps_built_once_with_the_flow(
    config: HotlineConfig, units: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key → unit path of a call is a dict lookup in a keymap computed when
    the flow is built, never a walk over the 126 units per call."""
    import ivr.flow.call_flow as call_flow

    flow = HotlineFlow(config)

    def walked(*_: object) -> None:
        raise AssertionError("menu keys computed during a call")

    monkeypatch.setattr(call_flow, "menu_keys", walked)
    result = run(flow, ScriptedCaller(keys("126", "2", "005", "1")))
    assert result.route is not None and result.route.area_code == units[4][0]
    assert type(flow._keymaps[("ha-noi", "wards")]) is dict
