"""The example configs under examples/: each passes `hotline check-config FILE` as a
newcomer types it, has its own README paragraph, and says what its README paragraph
promises (hours, 24/7, the city-wide ward menu, the combined deployment)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from vietnam_provinces import Ward

from ivr.cli import main as hotline
from ivr.config import HotlineConfig, load_config
from ivr.config.schema import iter_areas
from ivr.flow.schedule import OpeningHours

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# The four single-hotline examples the combined deployment puts together.
COMBINED_PARTS = {
    "bac-tu-liem-2026": "bac-tu-liem-2026.yaml",
    "ha-noi-hcc": "ha-noi-public-admin.yaml",
    "tong-dai-1022": "1022-contact-center.yaml",
    "thanh-xuan": "thanh-xuan.yaml",
}


def _example(name: str) -> HotlineConfig:
    return load_config(REPO / "examples" / name)


def test_every_seed_hotline_has_an_example() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "bac-tu-liem.yaml",
        "bac-tu-liem-2026.yaml",
        "ha-noi-public-admin.yaml",
        "1022-contact-center.yaml",
        "thanh-xuan.yaml",
        "combined.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_passes_check_config_as_typed(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hotline check-config examples/NAME.yaml`, from the repository root, with no
    warning (an official code the package no longer has would be one)."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    code = hotline(["check-config", f"examples/{path.name}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"examples/{path.name}: OK"), out
    assert "warning" not in err.lower() and "error" not in err.lower(), err


def _examples_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Examples\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert match, "README.md has no '## Examples' section"
    return match.group(1)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_has_its_own_readme_paragraph(path: Path) -> None:
    """A paragraph of README's Examples section starts with the file's path."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", _examples_section())]
    own = [
        p
        for p in paragraphs
        if re.match(rf"^(\*\*|- )?\*{{0,2}}`examples/{re.escape(path.name)}`", p)
    ]
    assert len(own) == 1, f"no README paragraph starts with `examples/{path.name}`"
    assert len(own[0]) > 200, f"the paragraph on {path.name} says too little: {own[0]!r}"


# --- what the paragraphs promise -----------------------------------------------------


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)


def test_public_admin_line_keeps_office_hours_with_a_lunch_break() -> None:
    config = _example("ha-noi-public-admin.yaml")
    hours = OpeningHours(config)
    line = config.hotlines[0]
    assert hours.is_open(line.schedule, _at(2026, 11, 23, 10, 0))  # Monday morning
    assert not hours.is_open(line.schedule, _at(2026, 11, 23, 12, 30))  # lunch
    assert hours.is_open(line.schedule, _at(2026, 11, 23, 16, 30))
    assert not hours.is_open(line.schedule, _at(2026, 11, 23, 17, 30))
    assert not hours.is_open(line.schedule, _at(2026, 11, 28, 10, 0))  # Saturday
    assert not hours.is_open(line.schedule, _at(2026, 9, 2, 10, 0))  # Quốc khánh, Wednesday
    # After hours: 1 a call-back when the switchboard opens, 2 or nothing a message.
    assert str(line.out_of_hours) == "menu:after-hours"
    after_hours = line.menus["after-hours"]
    assert {k: str(d) for k, d in after_hours.options.items()} == {
        "1": "callback:hcc-tong-dai",
        "2": "voicemail",
    }
    assert str(after_hours.on_no_input) == "voicemail"
    assert "{opening_hours}" in line.prompts["out_of_hours"]["vi"]


def test_1022_center_answers_round_the_clock_in_three_shifts_of_six() -> None:
    config = _example("1022-contact-center.yaml")
    hours = OpeningHours(config)
    line = config.hotlines[0]
    assert hours.is_open(line.schedule, _at(2026, 2, 17, 3, 0))  # a Tết night
    assert len(config.agents) == 20
    assert len(config.roster.shifts) == 3
    front = [e for e in config.roster.assignments if e.queue == "c1022-tong-dai"]
    assert sorted(len(e.agents) for e in front) == [6, 6, 6]
    emergency = line.menus["emergency"].options
    assert {str(emergency[k]) for k in "123"} == {"tel:113@pstn", "tel:114@pstn", "tel:115@pstn"}
    assert str(line.menus["main"].options["8"]) == "prompt:out_of_scope"
    assert line.english_key == "9"


def test_2026_ward_menu_lists_every_ha_noi_unit_of_the_package() -> None:
    """126 units with three-digit shortcuts, read back before ringing; names and
    codes as vietnam-provinces has them."""
    config = _example("bac-tu-liem-2026.yaml")
    city = config.area("ha-noi")
    assert city is not None and city.official_code == "01"
    official = {
        f"{int(ward.code):05d}": ward.name
        for ward in Ward.iter_all()
        if int(ward.province_code) == 1
    }
    units = {unit.official_code: unit.name for unit in city.children}
    assert len(city.children) == 126
    assert units == official
    assert all(re.fullmatch(r"[0-9]{3}", unit.shortcut or "") for unit in city.children)
    wards = config.hotlines[0].menus["wards"]
    assert wards.areas_under == "ha-noi" and wards.confirm_area and wards.terminator == "#"
    with_chairman = sorted(unit.name for unit in city.children if unit.chairman is not None)
    assert with_chairman == sorted(
        ["Phường Thượng Cát", "Phường Đông Ngạc", "Phường Xuân Đỉnh", "Phường Tây Tựu",
         "Phường Phú Diễn"]
    )  # fmt: skip


def test_combined_deployment_is_the_four_examples_kept_apart() -> None:
    """Each hotline of the combined file is the one of its own example (so they do
    not drift apart), with its numbers, queues and agents, and owners written."""
    combined = _example("combined.yaml")
    assert [h.id for h in combined.hotlines] == list(COMBINED_PARTS)
    numbers = [n for h in combined.hotlines for n in h.numbers]
    assert len(numbers) == len(set(numbers))
    for hotline_id, name in COMBINED_PARTS.items():
        alone = _example(name)
        assert combined.hotline(hotline_id) == alone.hotlines[0], hotline_id
        for queue in alone.queues:
            together = combined.queue(queue.id)
            assert together is not None and together.hotline == hotline_id
            assert together.model_copy(update={"hotline": None}) == queue
        agents = {agent.id: agent for agent in combined.agents}
        for agent in alone.agents:
            assert agents[agent.id].hotline == hotline_id
            assert agents[agent.id].model_copy(update={"hotline": None}) == agent
        phones = {phone.id: phone for phone in combined.phones}
        assert all(phones[phone.id] == phone for phone in alone.phones)
        for schedule_id, schedule in alone.schedules.items():
            assert combined.schedules[schedule_id] == schedule
        # Responsible units (issue 13): the same, owned by the hotline there.
        for unit in alone.units:
            together_unit = combined.unit(unit.code)
            assert together_unit is not None and together_unit.hotline == hotline_id
            assert together_unit.model_copy(update={"hotline": None}) == unit
    units = {area.code: area for area in iter_areas(combined.areas)}
    city = _example("bac-tu-liem-2026.yaml").area("ha-noi")
    assert city is not None and all(units[u.code] == u for u in city.children)


@pytest.mark.parametrize("name", ["bac-tu-liem-2026.yaml", "combined.yaml"])
def test_ha_noi_units_are_what_the_import_writes_so_a_re_import_changes_nothing(
    name: str,
) -> None:
    """`hotline areas import --province 01` on the example finds every unit up to
    date and leaves the file byte for byte (the chairmen added by hand stay)."""
    from ivr.config.area_import import import_areas_text

    text = (REPO / "examples" / name).read_text(encoding="utf-8")
    result = import_areas_text(text, "01")
    assert (len(result.added), len(result.updated), len(result.vanished)) == (0, 0, 0)
    assert result.text == text
