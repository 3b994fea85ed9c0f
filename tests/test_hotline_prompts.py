"""Prompts per hotline: one folder each, the hotline's own texts, the hours said
from its own schedule, and English as the caller's choice (issue 12)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.agi.channel import AgiChannel
from ivr.agi.executor import PromptFiles, execute_flow
from ivr.agi.server import HotlineAgi
from ivr.asterisk.render import RenderOptions, render_extensions, render_queues
from ivr.config import ConfigError, load_config
from ivr.config.schema import HotlineConfig, Schedule
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.hours_text import opening_hours_text, spoken_schedule
from ivr.flow.steps import Collect, Play, SetLanguage
from ivr.prompt_setup import CATALOG, prompt_variables
from ivr.prompts import build_prompts, load_catalog
from ivr.routing_table import build_routing_table
from tests.flow_driver import ScriptedCaller, keys
from tests.rig.agi_peer import AgiPeer

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
GREETING_LINE = "    greeting_prompts: [greeting, recording_notice]\n"


@pytest.fixture(scope="module")
def example() -> HotlineConfig:
    return load_config(EXAMPLE)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _with_hotline_lines(tmp_path: Path, lines: str) -> tuple[Path, str]:
    """The example with ``lines`` added to its hotline (after greeting_prompts)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(GREETING_LINE) == 1
    text = text.replace(GREETING_LINE, GREETING_LINE + lines)
    return _write(tmp_path, text), text


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(problem) for problem in caught.value.problems]


# --- the hours, said from the schedule ---------------------------------------------


def test_example_office_hours_say_saturday_and_the_lunch_break(example: HotlineConfig) -> None:
    schedule = spoken_schedule(example, example.hotlines[0])
    assert opening_hours_text(schedule, "vi") == (
        "từ thứ Hai đến thứ Sáu, sáng từ 8 giờ đến 12 giờ, chiều từ 13 giờ 30 đến 17 giờ; "
        "thứ Bảy từ 8 giờ đến 11 giờ 30; nghỉ các ngày lễ, Tết"
    )
    assert opening_hours_text(schedule, "en") == (
        "Monday to Friday, 8 a.m. to noon and 1:30 p.m. to 5 p.m.; "
        "Saturday, 8 a.m. to 11:30 a.m.; closed on public holidays"
    )


def test_after_hours_prompt_of_the_example_says_its_own_hours(example: HotlineConfig) -> None:
    # The bug: the catalog said "từ 8 giờ đến 17 giờ, từ thứ Hai đến thứ Sáu" whatever
    # the schedule; the example also opens Saturday mornings and closes for lunch.
    catalog = load_catalog(CATALOG)
    hotline = example.hotlines[0]
    vi = catalog.text("out_of_hours", "vi").format_map(prompt_variables(example, hotline, "vi"))
    en = catalog.text("out_of_hours", "en").format_map(prompt_variables(example, hotline, "en"))
    assert "thứ Bảy từ 8 giờ đến 11 giờ 30" in vi
    assert "chiều từ 13 giờ 30 đến 17 giờ" in vi
    assert "Saturday, 8 a.m. to 11:30 a.m." in en


def test_round_the_clock_schedule() -> None:
    always = Schedule(always=True)
    assert opening_hours_text(always, "vi") == "24 giờ mỗi ngày, kể cả ngày lễ, Tết"
    assert opening_hours_text(None, "en") == "24 hours a day, every day, including public holidays"
    whole_days = Schedule.model_validate(
        {"weekly": {day: ["00:00-00:00"] for day in WEEK}, "closed_on_holidays": False}
    )
    assert opening_hours_text(whole_days, "vi") == "24 giờ mỗi ngày, kể cả ngày lễ, Tết"


WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_days_with_the_same_hours_are_said_together() -> None:
    schedule = Schedule.model_validate(
        {
            "weekly": {
                "mon": ["07:00-19:00"],
                "tue": ["07:00-19:00"],
                "wed": ["08:00-17:00"],
                "thu": ["07:00-19:00"],
                "fri": ["07:00-19:00"],
                "sat": ["22:00-06:00"],
                "sun": ["08:00-12:00"],
            },
            "closed_on_holidays": False,
        }
    )
    assert opening_hours_text(schedule, "vi") == (
        "thứ Hai, thứ Ba, thứ Năm và thứ Sáu từ 7 giờ đến 19 giờ; thứ Tư từ 8 giờ đến 17 giờ; "
        "thứ Bảy từ 22 giờ đến 6 giờ hôm sau; Chủ nhật từ 8 giờ đến 12 giờ; kể cả ngày lễ, Tết"
    )
    weekend = Schedule.model_validate({"weekly": {"sat": ["08:00-12:00"], "sun": ["08:00-12:00"]}})
    assert opening_hours_text(weekend, "en") == (
        "Saturday and Sunday, 8 a.m. to noon; closed on public holidays"
    )


def test_a_hotline_with_office_hours_speaks_its_own_schedule(example: HotlineConfig) -> None:
    # The example hotline is round the clock, so its queues' hours are said; a
    # hotline with hours of its own says those.
    own = example.hotlines[0].model_copy(update={"schedule": "round-the-clock"})
    assert spoken_schedule(example, own) is example.schedules["office"]  # via its queues
    office = example.hotlines[0].model_copy(update={"schedule": "office"})
    assert spoken_schedule(example, office) is example.schedules["office"]


# --- the hotline's own texts and its English key, checked with the config -----------


def test_hotline_text_with_unknown_placeholder_names_file_line_field(tmp_path: Path) -> None:
    path, text = _with_hotline_lines(
        tmp_path,
        "    prompts:\n      main_menu:\n        vi: Đường dây nóng {hotline_name}, {unit}\n",
    )
    [problem] = _problems(path)
    line = _line_of(text, "Đường dây nóng {hotline_name}, {unit}")
    assert problem.startswith(f"{path}:{line}: hotlines[0].prompts.main_menu.vi: ")
    assert "unknown placeholder {unit}" in problem


def test_english_key_needs_english_texts_and_a_free_key(tmp_path: Path) -> None:
    path, text = _with_hotline_lines(
        tmp_path,
        '    english_key: "9"\n    prompts:\n      main_menu:\n        vi: Xin mời chọn.\n',
    )
    problems = _problems(path)
    key_line = _line_of(text, 'english_key: "9"')
    text_line = _line_of(text, "      main_menu:")
    assert any(
        p.startswith(f"{path}:{key_line}: hotlines[0].english_key: ")
        and "also starts main-menu choice '9'" in p
        for p in problems
    ), problems
    assert any(
        p.startswith(f"{path}:{text_line}: hotlines[0].prompts.main_menu: ") and "no 'en' text" in p
        for p in problems
    ), problems
    assert len(problems) == 2


def test_hotline_texts_replace_catalog_entries(tmp_path: Path) -> None:
    path, _ = _with_hotline_lines(
        tmp_path,
        "    prompts:\n      greeting:\n        vi: Xin chào, đây là {hotline_name}.\n",
    )
    config = load_config(path)
    hotline = config.hotlines[0]
    catalog = load_catalog(CATALOG).with_texts(hotline.prompts)
    values = prompt_variables(config, hotline, "vi")
    assert catalog.text("greeting", "vi").format_map(values) == (
        "Xin chào, đây là Đường dây nóng Chủ tịch UBND quận Bắc Từ Liêm."
    )
    # English keeps the catalog's text where the hotline wrote none.
    assert catalog.text("greeting", "en") == load_catalog(CATALOG).text("greeting", "en")


# --- one folder per hotline -----------------------------------------------------------


def _tone_wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x10\x00\xf0" * 2000)
    return path


def test_studio_recording_of_one_hotline_comes_before_the_shared_one(tmp_path: Path) -> None:
    catalog = load_catalog(CATALOG)
    custom = tmp_path / "custom"
    shared = _tone_wav(custom / "vi" / "goodbye.wav")
    own = _tone_wav(custom / "ha-noi" / "vi" / "goodbye.wav")
    own.write_bytes(own.read_bytes()[:-400])  # a shorter take: tell them apart
    for hotline in ("ha-noi", "thanh-xuan"):
        build_prompts(
            catalog,
            tmp_path / "out" / hotline,
            "vi",
            {},
            overrides_root=[custom / hotline, custom],
            names=["goodbye"],
        )
    frames = {}
    for hotline in ("ha-noi", "thanh-xuan"):
        with wave.open(str(tmp_path / "out" / hotline / "vi" / "goodbye.wav")) as built:
            frames[hotline] = built.getnframes()
    assert frames["ha-noi"] < frames["thanh-xuan"]  # its own take, not the shared one
    assert shared.exists()


def test_prompt_files_read_the_hotline_folder_and_switch_language(tmp_path: Path) -> None:
    _tone_wav(tmp_path / "ha-noi" / "vi" / "greeting.wav")
    _tone_wav(tmp_path / "ha-noi" / "en" / "main_menu.wav")
    _tone_wav(tmp_path / "vi" / "main_menu.wav")  # the old shared layout: not read
    prompts = PromptFiles(tmp_path, "ha-noi", "vi")
    assert prompts.path("greeting") == str(tmp_path / "ha-noi" / "vi" / "greeting")
    assert prompts.path("main_menu") is None
    english = prompts.in_language("en")
    assert english.path("main_menu") == str(tmp_path / "ha-noi" / "en" / "main_menu")
    assert prompts.in_language("en") is english and english.in_language("vi") is prompts


def test_executor_switches_folders_and_the_channel_language(tmp_path: Path) -> None:
    for language in ("vi", "en"):
        _tone_wav(tmp_path / "ha-noi" / language / "greeting.wav")
        _tone_wav(tmp_path / "ha-noi" / language / "main_menu.wav")

    def flow() -> Generator[Any, Any, None]:
        yield Play(("greeting",))
        yield SetLanguage("en")
        yield Play(("main_menu",))

    peer = AgiPeer({"agi_uniqueid": "1.1"})
    asyncio.run(execute_flow(flow(), AgiChannel(peer), PromptFiles(tmp_path, "ha-noi", "vi")))
    assert peer.played == [
        str(tmp_path / "ha-noi" / "vi" / "greeting"),
        str(tmp_path / "ha-noi" / "en" / "main_menu"),
    ]
    # The dialplan's prompts (voicemail, queue) follow: ${CHANNEL(language)} is en.
    assert peer.variables["CHANNEL(language)"] == "en"


# --- English as the caller's choice -------------------------------------------------


@pytest.fixture
def english_config(tmp_path: Path) -> HotlineConfig:
    path, _ = _with_hotline_lines(tmp_path, '    english_key: "7"\n')
    return load_config(path)


def test_english_key_in_the_greeting_switches_the_call_to_english(
    english_config: HotlineConfig,
) -> None:
    flow = HotlineFlow(english_config)
    caller = ScriptedCaller(keys("5", "03"), barge_in="7")
    result = caller.run(flow.run(english_config.hotlines[0], MONDAY_10H_HANOI))
    greeting = caller.steps[1]
    assert greeting == Play(("greeting", "recording_notice", "english_offer"), interruptible=True)
    assert SetLanguage("en") in caller.steps
    # The greeting again, then the menus, from the English folder.
    assert caller.prompts_heard == [
        "greeting",
        "en/greeting",
        "en/recording_notice",
        "en/main_menu",
        "en/area_menu",
    ]
    assert result.language == "en"
    assert result.keys_pressed == "7,5,03"
    assert result.route is not None and result.route.area_code == "dong-ngac"


def test_other_keys_in_the_greeting_still_go_to_the_main_menu(
    english_config: HotlineConfig,
) -> None:
    flow = HotlineFlow(english_config)
    caller = ScriptedCaller(keys("03"), barge_in="5")
    result = caller.run(flow.run(english_config.hotlines[0], MONDAY_10H_HANOI))
    assert not any(isinstance(step, SetLanguage) for step in caller.steps)
    assert next(s for s in caller.steps if isinstance(s, Collect)).already == "5"
    assert result.language is None
    assert result.route is not None and result.route.area_code == "dong-ngac"


def test_no_english_offer_without_the_key(example: HotlineConfig) -> None:
    caller = ScriptedCaller(keys("0"))
    caller.run(HotlineFlow(example).run(example.hotlines[0], MONDAY_10H_HANOI))
    assert caller.steps[1] == Play(("greeting", "recording_notice"), interruptible=True)
    catalog = load_catalog(CATALOG)
    # Said in English inside the Vietnamese greeting too.
    assert catalog.entries["english_offer"].voice == "en"
    assert catalog.text("english_offer", "vi") == "For English, press {english_key}."


# --- the dialplan and queues.conf read the hotline's folder -------------------------


def test_dialplan_plays_from_the_hotline_folder_in_the_channel_language(
    example: HotlineConfig,
) -> None:
    dialplan = render_extensions(example)
    prompts = example.resolve_path(example.paths.prompts)
    assert f"Playback({prompts}/${{HL_HOTLINE}}/${{CHANNEL(language)}}/voicemail_intro)" in (
        dialplan
    )
    assert f"Playback({prompts}/${{CHANNEL(language)}}/" not in dialplan


def test_each_queue_announces_from_its_own_hotline_folder(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for section in ("queues", "agents"):
        for item in data[section]:
            item["hotline"] = "bac-tu-liem"
    data["queues"].append({"id": "tx-operator", "title": "Thanh Xuân", "hotline": "thanh-xuan"})
    data["hotlines"].append(
        {
            "id": "thanh-xuan",
            "name": "Đường dây nóng quận Thanh Xuân",
            "unit_name": "quận Thanh Xuân",
            "numbers": ["02435581111"],
            "language": "en",
            "failure_destination": "queue:tx-operator",
            "menus": {
                "main": {
                    "prompt": "main_menu",
                    "options": {"0": "queue:tx-operator"},
                    "on_invalid": "queue:tx-operator",
                    "on_no_input": "queue:tx-operator",
                }
            },
        }
    )
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config = load_config(path)
    queues = render_queues(config, RenderOptions(tmp_path / "p", tmp_path / "m", tmp_path / "r"))
    sections = {block.split("]", 1)[0]: block for block in queues.split("\n[")}
    assert (
        f"periodic-announce={tmp_path}/p/thanh-xuan/en/queue_callback_offer"
        in (sections["tx-operator"])
    )
    assert (
        f"periodic-announce={tmp_path}/p/bac-tu-liem/vi/queue_callback_offer"
        in (sections["operator"])
    )


def test_fallback_script_reads_area_menus_from_the_hotline_folder(example: HotlineConfig) -> None:
    table = build_routing_table(example)
    prompts = example.resolve_path(example.paths.prompts)
    [menu] = table["hotlines"]["bac-tu-liem"]["area_menus"]
    assert menu["prompt"] == str(prompts / "bac-tu-liem" / "vi" / "area_menu")


class _RatingsOnly:
    """The one call-log method the survey handler uses."""

    def __init__(self) -> None:
        self.ratings: list[tuple[str, int]] = []

    def rated(self, uniqueid: str, rating: int) -> None:
        self.ratings.append((uniqueid, rating))


@pytest.mark.parametrize(
    ("english_key", "channel_language", "folder"),
    [("7", "en", "en"), ("7", "vi", "vi"), (None, "en", "vi")],
)
def test_survey_speaks_the_language_the_caller_chose(
    tmp_path: Path,
    english_config: HotlineConfig,
    english_key: str | None,
    channel_language: str,
    folder: str,
) -> None:
    # After the agent hangs up, the survey runs in a new AGI session: the caller's
    # choice reaches it as the channel's language (agi_language). Asterisk's default
    # "en" on a hotline without the key stays Vietnamese.
    hotline = english_config.hotlines[0].model_copy(update={"english_key": english_key})
    config = english_config.model_copy(
        update={
            "hotlines": [hotline],
            "paths": english_config.paths.model_copy(update={"prompts": tmp_path / "p"}),
        }
    )
    for language in ("vi", "en"):
        for name in ("survey", "survey_thanks"):
            _tone_wav(tmp_path / "p" / hotline.id / language / f"{name}.wav")
    ratings = _RatingsOnly()
    agi = HotlineAgi(config, ratings, None, clock=lambda: MONDAY_10H_HANOI)  # type: ignore[arg-type]
    peer = AgiPeer(
        {
            "agi_network_script": "survey",
            "agi_uniqueid": "1.1",
            "agi_language": channel_language,
            "agi_arg_1": "1.1",
            "agi_arg_2": hotline.id,
        },
        keys("1"),
    )
    try:
        asyncio.run(agi.survey(peer))
    finally:
        asyncio.run(agi.close())
    assert peer.played == [
        str(tmp_path / "p" / hotline.id / folder / "survey"),
        str(tmp_path / "p" / hotline.id / folder / "survey_thanks"),
    ]
    assert ratings.ratings == [("1.1", 1)]
