"""The config loader: the example is valid; each kind of mistake gives one precise error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from ivr.config.schema import iter_areas

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = text.splitlines()
    seen = 0
    for number, line in enumerate(lines, start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def _single_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    return str(caught.value.problems[0])


def test_example_is_the_bac_tu_lien_hotline() -> None:
    config = load_config(EXAMPLE)
    wards = config.area("bac-tu-liem")
    assert wards is not None and len(wards.children) == 13
    assert all(ward.shortcut and ward.chairman and ward.fallbacks for ward in wards.children)
    assert len(config.departments) == 30
    assert [shift.id for shift in config.roster.shifts] == ["sang", "chieu", "dem"]
    assert len(iter_areas(config.areas)) == 15
    assert config.hotlines[0].numbers[0] == "02437655555"


def test_misspelt_field_names_file_line_and_suggests(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "chairman: tel:0900000103@pstn", "chariman: tel:0900000103@pstn"
    )
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, "chariman:")
    assert error.startswith(f"{path}:{line}: areas[0].children[0].children[2].chariman:")
    assert "did you mean 'chairman'" in error


def test_duplicate_shortcut_is_rejected_at_its_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('shortcut: "05"', 'shortcut: "04"')
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, 'shortcut: "04"', occurrence=2)
    assert error.startswith(f"{path}:{line}: areas[0].children[0].children[4].shortcut:")
    assert "'04'" in error and "duc-thang" in error


def test_prefix_ambiguous_keys_need_a_terminator(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('shortcut: "01"', 'shortcut: "1"').replace(
        'terminator: "#"\n        areas_under', 'terminator: ""\n        areas_under'
    )
    error = _single_error(_write(tmp_path, text))
    assert "ambiguous keys" in error and "option '0' is the start of area 'co-nhue-2'" in error
    assert "hotlines[0].menus.wards.terminator" in error


def test_unknown_ward_in_a_fallback(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "              - phone:vp-lien-mac", "              - area:lien-mak"
    )
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, "area:lien-mak")
    assert error.startswith(f"{path}:{line}: areas[0].children[0].children[4].fallbacks[1]:")
    assert "unknown area 'lien-mak'" in error and "'lien-mac'" in error


def test_missing_required_field(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("    unit_name: quận Bắc Từ Liêm\n", "")
    error = _single_error(_write(tmp_path, text))
    assert "hotlines[0].unit_name: required field is missing" in error


def test_wrong_value_type_and_bad_time(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('"06:00-14:00"', '"06:00-25:00"')
    error = _single_error(_write(tmp_path, text))
    assert "roster.shifts[0].hours" in error and "25:00" in error


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "timezone: Asia/Ho_Chi_Minh", "timezone: [Asia"
    )
    path = _write(tmp_path, text)
    error = _single_error(path)
    line = _line_of(text, "timezone: [Asia")
    # YAML notices the problem on the next line and says where the list began.
    assert error.startswith(f"{path}:{line + 2}: invalid YAML")
    assert f"started on line {line}" in error


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Ho_Chi_Minh\ntimezone: UTC"
    )
    path = _write(tmp_path, text)
    assert _single_error(path).startswith(f"{path}:{_line_of(text, 'timezone: UTC')}:")


def test_failure_destination_must_be_a_queue(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "failure_destination: queue:operator", "failure_destination: voicemail"
    )
    error = _single_error(_write(tmp_path, text))
    assert "failure_destination: must be a queue" in error


@pytest.mark.integration  # runs the hotline command as a process
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("chairman: tel:0900000103@pstn", "chariman: tel:0900000103@pstn", "did you mean"),
        ('shortcut: "05"', 'shortcut: "04"', "is also used by"),
        ("              - phone:vp-lien-mac", "              - area:nowhere", "unknown area"),
    ],
)
def test_check_config_command_prints_one_error_and_fails(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = _write(tmp_path, EXAMPLE.read_text(encoding="utf-8").replace(old, new))
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and str(path) in errors[0]


@pytest.mark.integration  # runs the hotline command as a process
def test_check_config_command_accepts_the_example() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "--config", str(EXAMPLE), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "30 departments" in done.stdout


@pytest.mark.integration  # runs the hotline command as a process
def test_check_config_takes_the_file_as_a_positional_argument() -> None:
    # The form a newcomer types first (issue 12); it used to be rejected by argparse.
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "check-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{EXAMPLE}: OK")


def test_positional_config_file_overrides_hotline_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ivr.cli import main

    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "absent.yaml"))
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith(f"{EXAMPLE}: OK")


def test_positional_config_file_is_checked_not_the_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ivr.cli import main

    path = _write(tmp_path, EXAMPLE.read_text(encoding="utf-8").replace("chairman:", "chariman:"))
    with pytest.raises(SystemExit) as caught:
        main(["check-config", str(path)])
    assert caught.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors and str(path) in errors[0] and "did you mean" in errors[0]


def test_config_given_twice_and_different_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ivr.cli import main

    other = _write(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(other), "check-config", str(EXAMPLE)])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert str(other) in error and str(EXAMPLE) in error and "--config" in error


def test_config_given_twice_and_the_same_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import main

    assert main(["--config", str(EXAMPLE), "check-config", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_asterisk_config_takes_the_file_as_a_positional_argument(tmp_path: Path) -> None:
    from ivr.cli import build_parser

    args = build_parser().parse_args(["asterisk-config", str(EXAMPLE), "--out", str(tmp_path)])
    assert args.config_file == EXAMPLE
