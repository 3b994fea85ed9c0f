"""`hotline areas import --province CODE`: official units from the `vietnam-provinces`
package into the config's area tree (issue 12), and check-config's warning on an
official code the package no longer has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from vietnam_provinces import ProvinceCode, Ward

from ivr.cli import main
from ivr.config import load_config
from ivr.config.schema import Area, iter_areas

SMALL_CONFIG = """\
# Đường dây nóng thử nghiệm: một thành phố, các phường/xã từ dữ liệu chính thức.
timezone: Asia/Ho_Chi_Minh
asterisk:
  ami:
    secret: change-me-ami-secret   # test only

phones:
  - id: vp-hoan-kiem
    name: Văn phòng UBND phường Hoàn Kiếm
  - id: vp-ba-dinh
    name: Văn phòng UBND phường Ba Đình

# Filled by `hotline areas import --province 01`.
areas: []

queues:
  - id: operator
    title: Tổng đài viên

hotlines:
  - id: ha-noi
    name: Đường dây nóng Thành phố Hà Nội
    unit_name: UBND Thành phố Hà Nội
    numbers: ["02400001022"]
    menus:
      main:
        prompt: main_menu
        options:
          "0": queue:operator
"""

# Hà Nội as the package has it: official code "00070" → name, and its codename.
HA_NOI_WARDS = {f"{int(ward.code):05d}": ward for ward in Ward.iter_by_province(ProvinceCode(1))}


def _config_file(tmp_path: Path, text: str = SMALL_CONFIG) -> Path:
    # One folder down, so that the config history (../var/config-history) stays in tmp_path.
    path = tmp_path / "etc" / "hotline.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def _import(path: Path, *extra: str) -> int:
    return main(["areas", "import", "--province", "01", *extra, str(path)])


def _ha_noi(path: Path) -> Area:
    config = load_config(path)
    found = [area for area in iter_areas(config.areas) if area.official_code == "01"]
    assert len(found) == 1
    return found[0]


def _unit_block(text: str, code: str) -> re.Match[str]:
    """The lines of one imported unit in the file (from its `- code:` to the next item)."""
    match = re.search(rf"^      - code: {code}\n(?:        .*\n)*", text, flags=re.MULTILINE)
    assert match is not None, code
    return match


def test_import_writes_the_126_ha_noi_units_with_official_codes_names_and_shortcuts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path)

    assert _import(path) == 0

    ha_noi = _ha_noi(path)
    assert ha_noi.name == "Thành phố Hà Nội" and ha_noi.code == "ha-noi"
    assert len(ha_noi.children) == 126 == len(HA_NOI_WARDS)
    by_code = {unit.official_code: unit for unit in ha_noi.children}
    assert set(by_code) == set(HA_NOI_WARDS)
    for official_code, ward in HA_NOI_WARDS.items():
        unit = by_code[official_code]
        assert unit.name == ward.name  # "Phường Hoàn Kiếm", "Xã Sóc Sơn": with the type
        assert unit.code == ward.codename.replace("_", "-")
    # Three digits, one per unit, given in the order of the official codes.
    in_code_order = sorted(ha_noi.children, key=lambda unit: unit.official_code or "")
    assert [unit.shortcut for unit in in_code_order] == [f"{n:03d}" for n in range(1, 127)]
    # Only the areas block changed: comments and every other line stay as they were.
    text = path.read_text(encoding="utf-8")
    before, after = SMALL_CONFIG.split("areas: []\n")
    assert text.startswith(before + "areas:\n  - code: ha-noi\n")
    assert text.endswith(after)
    assert "127 added, 0 updated, 0 kept, 0 vanished" in capsys.readouterr().out
    # The previous version went to the config history, as the console's saves do.
    (copy,) = (tmp_path / "var" / "config-history").iterdir()
    assert copy.read_text(encoding="utf-8") == SMALL_CONFIG


def test_reimport_keeps_edited_chairman_fallbacks_and_every_shortcut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path)
    assert _import(path) == 0
    shortcuts = {unit.official_code: unit.shortcut for unit in _ha_noi(path).children}
    text = path.read_text(encoding="utf-8")
    # The hotline's own edits: a chairman with fallbacks, a shortcut of its choosing,
    # a spoken alias; and a unit deleted by mistake.
    hoan_kiem = _unit_block(text, "phuong-hoan-kiem")
    edited = (
        hoan_kiem.group(0).replace('shortcut: "004"', 'shortcut: "900"')
        + "        aliases: [Hoàn Kiếm]\n"
        + "        chairman: phone:vp-hoan-kiem   # Chủ tịch UBND phường\n"
        + "        fallbacks:\n"
        + "          - phone:vp-ba-dinh\n"
        + "          - queue:operator\n"
        + "        ring_seconds: 25\n"
    )
    text = text.replace(hoan_kiem.group(0), edited)
    text = text.replace(_unit_block(text, "phuong-ba-dinh").group(0), "")
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()

    assert _import(path) == 0

    after = path.read_text(encoding="utf-8")
    assert edited in after  # the edited unit, its comment included, byte for byte
    units = {unit.official_code: unit for unit in _ha_noi(path).children}
    assert len(units) == 126
    unit = units["00070"]
    assert str(unit.chairman) == "phone:vp-hoan-kiem"
    assert [str(f) for f in unit.fallbacks] == ["phone:vp-ba-dinh", "queue:operator"]
    assert unit.ring_seconds == 25 and unit.aliases == ["Hoàn Kiếm"]
    assert unit.shortcut == "900"
    # Every other unit keeps its shortcut; the deleted one comes back with the lowest
    # free one, which is its old one.
    assert {code: u.shortcut for code, u in units.items() if code != "00070"} == {
        code: s for code, s in shortcuts.items() if code != "00070"
    }
    out = capsys.readouterr().out
    assert "1 added, 0 updated, 126 kept, 0 vanished" in out
    assert "added: phuong-ba-dinh (Phường Ba Đình, 00004) shortcut 001" in out


def test_reimport_of_unchanged_data_leaves_the_text_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path)
    assert _import(path) == 0
    first = path.read_bytes()
    capsys.readouterr()

    assert main(["-c", str(path), "areas", "import", "--province", "1"]) == 0

    assert path.read_bytes() == first
    assert "nothing to change" in capsys.readouterr().out
    assert len(list((tmp_path / "var" / "config-history").iterdir())) == 1  # no new copy


def test_unknown_province_fails_and_leaves_the_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path)

    assert main(["areas", "import", "--province", "99", str(path)]) == 2

    assert path.read_text(encoding="utf-8") == SMALL_CONFIG
    error = capsys.readouterr().err
    assert "no province with code '99'" in error and "01 Thành phố Hà Nội" in error
    assert "unchanged" in error
    assert not (tmp_path / "var").exists()


def test_a_unit_typed_in_by_hand_is_adopted_where_the_hotline_put_it(tmp_path: Path) -> None:
    # The hotline grouped two wards its own way, before there was an import.
    grouped = """\
areas:
  - code: thu-do
    name: Thành phố Hà Nội
    children:
      - code: trung-tam
        name: Khu vực trung tâm
        children:
          - code: hoan-kiem
            name: Phường Hoàn Kiếm
            shortcut: "1"
            chairman: phone:vp-hoan-kiem
"""
    path = _config_file(tmp_path, SMALL_CONFIG.replace("areas: []\n", grouped))

    assert _import(path) == 0

    config = load_config(path)
    hoan_kiem = config.area("hoan-kiem")
    assert hoan_kiem is not None and hoan_kiem.official_code == "00070"
    assert hoan_kiem.shortcut == "1" and str(hoan_kiem.chairman) == "phone:vp-hoan-kiem"
    group = config.area("trung-tam")
    assert group is not None and [u.code for u in group.children] == ["hoan-kiem"]
    ha_noi = _ha_noi(path)
    assert ha_noi.code == "thu-do"  # the hotline's code is kept; the unit is not duplicated
    official = [
        u.official_code for u in iter_areas([ha_noi]) if u.official_code not in (None, "01")
    ]
    assert sorted(official) == sorted(HA_NOI_WARDS)


def test_a_unit_that_vanished_from_the_package_is_kept_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path)
    assert _import(path) == 0
    # Neither its code nor its name is in the package any more.
    text = path.read_text(encoding="utf-8").replace('"00070"', '"99970"')
    text = text.replace("name: Phường Hoàn Kiếm\n", "name: Phường Hoàn Kiếm Cũ\n")
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()

    assert _import(path) == 0

    out = capsys.readouterr().out
    assert "1 added, 0 updated, 126 kept, 1 vanished" in out
    assert "vanished: phuong-hoan-kiem (Phường Hoàn Kiếm Cũ, 99970)" in out
    config = load_config(path)
    kept = config.area("phuong-hoan-kiem")
    assert kept is not None and kept.official_code == "99970"
    again = config.area("phuong-hoan-kiem-00070")  # the slug was taken
    assert again is not None and again.official_code == "00070"


def _code_of(name: str) -> str:
    return next(code for code, ward in HA_NOI_WARDS.items() if ward.name == name)


def test_a_unit_the_data_re_coded_keeps_its_chairman_and_shortcut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The package's 2026.9.0 data corrected 27 Hà Nội codes (Phường Cửa Nam was
    00073 in 2025.10.1, 00082 now): the unit is the same, only its code moves."""
    path = _config_file(tmp_path)
    assert _import(path) == 0
    real = _code_of("Phường Hoàn Kiếm")
    text = path.read_text(encoding="utf-8").replace(f'"{real}"', '"99970"')
    text = text.replace(
        "      - code: phuong-hoan-kiem\n",
        "      - code: phuong-hoan-kiem\n        chairman: phone:vp-hoan-kiem\n",
    )
    path.write_text(text, encoding="utf-8")
    shortcut_before = load_config(path).area("phuong-hoan-kiem").shortcut  # type: ignore[union-attr]
    capsys.readouterr()

    assert _import(path) == 0

    out = capsys.readouterr().out
    assert "0 added, 1 updated, 126 kept, 0 vanished" in out
    assert f"official code 99970 → {real}" in out
    unit = load_config(path).area("phuong-hoan-kiem")
    assert unit is not None and unit.official_code == real
    assert str(unit.chairman) == "phone:vp-hoan-kiem" and unit.shortcut == shortcut_before
    assert load_config(path).area(f"phuong-hoan-kiem-{real}") is None  # not added twice


def test_two_units_whose_codes_the_data_swapped_keep_their_names_and_chairmen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2026.9.0 gave Phường Văn Miếu - Quốc Tử Giám the code Kim Liên had in
    2025.10.1. Matching by code first would rename each unit into the other and
    ring the wrong chairman; the names decide."""
    path = _config_file(tmp_path)
    assert _import(path) == 0
    kim_lien, van_mieu = _code_of("Phường Kim Liên"), _code_of("Phường Văn Miếu - Quốc Tử Giám")
    text = path.read_text(encoding="utf-8")
    text = text.replace(f'"{kim_lien}"', '"SWAP"').replace(f'"{van_mieu}"', f'"{kim_lien}"')
    text = text.replace('"SWAP"', f'"{van_mieu}"')
    text = text.replace(
        "      - code: phuong-kim-lien\n",
        "      - code: phuong-kim-lien\n        chairman: phone:vp-ba-dinh\n",
    )
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()

    assert _import(path) == 0

    assert "0 added, 2 updated, 125 kept, 0 vanished" in capsys.readouterr().out
    config = load_config(path)
    unit = config.area("phuong-kim-lien")
    assert unit is not None and unit.name == "Phường Kim Liên"
    assert unit.official_code == kim_lien and str(unit.chairman) == "phone:vp-ba-dinh"
    other = config.area("phuong-van-mieu-quoc-tu-giam")
    assert other is not None and other.official_code == van_mieu and other.chairman is None


def test_check_config_warns_on_an_official_code_the_package_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made_up = """\
areas:
  - code: ha-noi
    name: Thành phố Hà Nội
    official_code: "01"
    children:
      - code: phuong-khong-co
        name: Phường Không Có
        official_code: "99999"
"""
    text = SMALL_CONFIG.replace("areas: []\n", made_up)
    path = _config_file(tmp_path, text)

    assert main(["check-config", str(path)]) == 0

    captured = capsys.readouterr()
    assert "OK" in captured.out
    line = text.splitlines().index('        official_code: "99999"') + 1
    (warning,) = [w for w in captured.err.splitlines() if w.startswith("warning:")]
    assert warning.startswith(f"warning: {path}:{line}: areas[0].children[0].official_code: ")
    assert "'99999'" in warning


def test_province_area_gives_the_units_for_other_configs() -> None:
    from ivr.config.area_import import province_area

    ha_noi = province_area("01")
    assert ha_noi.official_code == "01" and len(ha_noi.children) == 126
    assert [u.shortcut for u in ha_noi.children] == [f"{n:03d}" for n in range(1, 127)]
    assert {u.official_code: u.name for u in ha_noi.children} == {
        code: ward.name for code, ward in HA_NOI_WARDS.items()
    }


def test_the_official_data_is_the_release_the_examples_were_imported_from() -> None:
    """examples/ carry 2026.9.0's codes. Plain pip on Python 3.11 picks 2025.10.1
    (the 2026 releases declare Python >= 3.12): hotline.sh installs 2026.9.0 there."""
    import vietnam_provinces

    release = tuple(int(part) for part in vietnam_provinces.__version__.split(".")[:2])
    assert release >= (2026, 9), (
        f"vietnam-provinces {vietnam_provinces.__version__} is older than the data of the "
        "examples: run ./hotline.sh setup (it installs 2026.9.0 on Python 3.11)"
    )
