"""The prompt catalog and the prompt build, with the real espeak-ng (no mocks)."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from array import array
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest

from ivr.flow.spoken_numbers import day_month_prompts, digit_prompts, number_prompts
from ivr.prompts import (
    CatalogError,
    PromptBuildError,
    PromptCatalog,
    build_for_hotline,
    build_prompts,
    load_catalog,
    prompt_path,
)

CATALOG = Path(__file__).resolve().parents[1] / "prompts" / "catalog.yaml"
UNIT = {"unit_name": "quận Bắc Từ Liêm"}

REQUIRED_NAMES = [
    "greeting", "recording_notice", "emergency_info", "main_menu", "area_menu",
    "area_selected", "transferring", "out_of_scope", "queue_all_busy",
    "queue_position_intro", "queue_wait_intro", "minutes", "queue_callback_offer",
    "callback_confirmed", "voicemail_intro", "case_code_intro", "case_code_repeat",
    "case_code_sms", "case_due_intro", "case_lookup_prompt", "case_status_in_progress",
    "case_status_answered", "case_status_received", "case_status_rejected",
    "case_not_found", "case_due_date_intro", "survey", "survey_thanks", "out_of_hours",
    "invalid_key", "no_input", "to_operator", "chairman_unavailable", "goodbye",
    "emergency_transfer", "open_case_offer", "department_prompt",
    *(f"digit_{d}" for d in range(10)),
]  # fmt: skip


@pytest.fixture(scope="module")
def espeak_ng() -> str:
    """espeak-ng is installed by hotline.sh; a machine without it fails these
    tests loudly instead of skipping the proof."""
    found = shutil.which("espeak-ng")
    if found is None:
        pytest.fail("espeak-ng not found: apt-get install espeak-ng", pytrace=False)
    return found


needs_espeak = pytest.mark.usefixtures("espeak_ng")


@pytest.fixture(scope="module")
def catalog() -> PromptCatalog:
    return load_catalog(CATALOG)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _wav(path: Path) -> tuple[int, int, int, float, float]:
    """(rate, channels, sample width, seconds, RMS as a fraction of full scale)."""
    with wave.open(str(path)) as audio:
        frames = audio.readframes(audio.getnframes())
        rate, channels, width = audio.getframerate(), audio.getnchannels(), audio.getsampwidth()
        seconds = audio.getnframes() / rate
    samples = array("h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / max(len(samples), 1)) / 32768
    return rate, channels, width, seconds, rms


def _zero_crossings_per_second(path: Path) -> float:
    with wave.open(str(path)) as audio:
        samples = array("h", audio.readframes(audio.getnframes()))
        seconds = audio.getnframes() / audio.getframerate()
    crossings = sum(1 for a, b in pairwise(samples) if (a < 0) != (b < 0))
    return crossings / seconds


# --- The catalog ----------------------------------------------------------------------


def test_every_needed_prompt_has_vietnamese_and_english(catalog: PromptCatalog) -> None:
    missing = [name for name in REQUIRED_NAMES if name not in catalog]
    assert not missing
    for name in catalog.names:
        assert catalog.text(name, "vi").strip(), name
        assert catalog.text(name, "en").strip(), name


def test_vietnamese_texts_keep_their_diacritics(catalog: PromptCatalog) -> None:
    assert catalog.text("greeting", "vi").startswith("Xin chào! Quý vị đã gọi đến Đường dây nóng")
    assert "Ủy ban nhân dân {unit_name}" in catalog.text("greeting", "vi")
    # The unit's name alone: followed by `transferring`, or by `area_confirm` in a
    # read-back, where "your call is being transferred" would be untrue.
    assert catalog.text("area_selected", "vi") == "Quý vị đã chọn {area_name}."
    assert catalog.text("queue_position_intro", "vi") == "Quý vị đang ở vị trí thứ"
    assert catalog.text("case_code_intro", "vi") == (
        "Phản ánh của quý vị đã được tiếp nhận với mã số:"
    )
    assert catalog.text("to_operator", "vi") == "Cuộc gọi sẽ được chuyển tới điện thoại viên."
    words = [catalog.text(f"digit_{d}", "vi") for d in range(10)]
    assert words == ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
    assert [catalog.text(n, "vi") for n in ("number_ten", "number_tens", "number_hundred")] == [
        "mười",
        "mươi",
        "trăm",
    ]
    assert catalog.text("date_month", "vi") == "tháng"


def test_vietnamese_numbers_and_dates_use_catalog_words(catalog: PromptCatalog) -> None:
    said = {
        n: " ".join(catalog.text(p, "vi") for p in number_prompts(n))
        for n in (0, 5, 10, 15, 21, 24, 35, 100, 105, 115, 999)
    }
    assert said == {
        0: "không",
        5: "năm",
        10: "mười",
        15: "mười lăm",
        21: "hai mươi mốt",
        24: "hai mươi tư",
        35: "ba mươi lăm",
        100: "một trăm",
        105: "một trăm linh năm",
        115: "một trăm mười lăm",
        999: "chín trăm chín mươi chín",
    }
    day = " ".join(catalog.text(p, "vi") for p in day_month_prompts(date(2025, 7, 15)))
    assert day == "mười lăm tháng bảy"
    assert day_month_prompts(date(2025, 4, 4))[-1] == "number_tu"  # "tháng tư"
    assert digit_prompts("2507-1234") == [f"digit_{c}" for c in "25071234"]
    assert number_prompts(42, "en") == ["digit_4", "digit_2"]
    for n in range(1000):
        assert all(name in catalog for name in number_prompts(n))
    with pytest.raises(ValueError):
        number_prompts(1000)


def test_unknown_placeholder_names_file_and_entry(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "goodbye:\n  vi: Tạm biệt.\n  en: Goodbye.\ngreeting:\n"
        "  vi: Xin chào {ward_name}.\n  en: Hello.\n",
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert f"{path}:5" in message
    assert "'greeting'" in message
    assert "{ward_name}" in message


def test_missing_language_names_the_entry(tmp_path: Path) -> None:
    path = _write(tmp_path, "goodbye:\n  vi: Tạm biệt.\n")
    with pytest.raises(CatalogError, match=r"entry 'goodbye': no 'en' text"):
        load_catalog(path)


def test_area_name_only_in_the_area_template(tmp_path: Path) -> None:
    path = _write(tmp_path, "goodbye:\n  vi: Tạm biệt {area_name}.\n  en: Bye.\n")
    with pytest.raises(CatalogError, match=r"'goodbye'.*area_selected"):
        load_catalog(path)


def test_duplicate_entry_is_an_error(tmp_path: Path) -> None:
    text = "goodbye:\n  vi: a\n  en: b\ngoodbye:\n  vi: c\n  en: d\n"
    with pytest.raises(CatalogError, match=r"catalog.yaml:4: key 'goodbye' appears twice"):
        load_catalog(_write(tmp_path, text))


def test_prompt_path_is_absolute_without_extension(tmp_path: Path) -> None:
    assert prompt_path(tmp_path, "btl", "vi", "greeting") == str(
        tmp_path.resolve() / "btl" / "vi" / "greeting"
    )


# --- Building -------------------------------------------------------------------------


@needs_espeak
def test_built_prompts_are_asterisk_slin_wav(catalog: PromptCatalog, tmp_path: Path) -> None:
    paths = build_prompts(
        catalog,
        tmp_path,
        "vi",
        UNIT,
        areas={"co-nhue-1": "phường Cổ Nhuế 1"},
        names=["greeting", "digit_5", "area_selected"],
    )
    folder = tmp_path / "vi"
    # area_selected is the per-area template: it becomes area_<code>.wav only.
    assert paths == [folder / "greeting.wav", folder / "digit_5.wav", folder / "area_co-nhue-1.wav"]
    expected_seconds = {"greeting": (3.0, 15.0), "digit_5": (0.2, 1.5), "area_co-nhue-1": (2, 10)}
    for path in paths:
        rate, channels, width, seconds, rms = _wav(path)
        assert (rate, channels, width) == (8000, 1, 2), path
        low, high = expected_seconds[path.stem]
        assert low < seconds < high, (path, seconds)
        assert rms > 0.03, (path, rms)  # normalised near -20 dBFS, far from silence


@needs_espeak
def test_english_prompt_fills_the_unit_name(catalog: PromptCatalog, tmp_path: Path) -> None:
    values = {
        "unit_name": "quận Bắc Từ Liêm",
        "hotline_name": "Đường dây nóng",
        "opening_hours": "24 hours a day",
    }
    paths = build_for_hotline(CATALOG, tmp_path, "btl", {"en": values}, {})
    # One folder per hotline: <prompts>/<hotline id>/<language>/
    with_unit = tmp_path / "btl" / "en" / "greeting.wav"
    assert with_unit in paths
    rate, channels, _, seconds, _ = _wav(with_unit)
    assert (rate, channels) == (8000, 1)
    assert 4.0 < seconds < 20.0
    # Neither the per-area template nor the English offer (no english_key given).
    built = {path.stem for path in (tmp_path / "btl" / "en").glob("*.wav")}
    assert built == set(catalog.names) - {"area_selected", "english_offer"}


@needs_espeak
def test_second_build_keeps_unchanged_files(tmp_path: Path) -> None:
    catalog_path = _write(
        tmp_path,
        "goodbye:\n  vi: Xin chào và hẹn gặp lại.\n  en: Goodbye.\n"
        "no_input:\n  vi: Chúng tôi chưa nhận được lựa chọn của quý vị.\n  en: No input.\n",
    )
    out = tmp_path / "out"
    first = build_prompts(load_catalog(catalog_path), out, "vi", UNIT)
    stamps = {path: path.stat().st_mtime_ns for path in first}

    second = build_prompts(load_catalog(catalog_path), out, "vi", UNIT)
    assert second == first
    assert {path: path.stat().st_mtime_ns for path in second} == stamps

    catalog_path.write_text(
        catalog_path.read_text(encoding="utf-8").replace("hẹn gặp lại", "hẹn gặp lại quý vị"),
        encoding="utf-8",
    )
    build_prompts(load_catalog(catalog_path), out, "vi", UNIT)
    assert (out / "vi" / "no_input.wav").stat().st_mtime_ns == stamps[out / "vi" / "no_input.wav"]
    assert (out / "vi" / "goodbye.wav").stat().st_mtime_ns != stamps[out / "vi" / "goodbye.wav"]

    changed = (out / "vi" / "goodbye.wav").stat().st_mtime_ns
    build_prompts(load_catalog(catalog_path), out, "vi", UNIT, force=True)
    assert (out / "vi" / "goodbye.wav").stat().st_mtime_ns != changed


@needs_espeak
def test_studio_recording_replaces_the_synthesized_prompt(
    catalog: PromptCatalog, tmp_path: Path
) -> None:
    out, overrides = tmp_path / "out", tmp_path / "custom"
    build_prompts(catalog, out, "vi", UNIT, names=["goodbye"])
    built = out / "vi" / "goodbye.wav"
    synthesized = built.read_bytes()

    # A 1.5 s, 440 Hz tone recorded at 44.1 kHz in stereo.
    recording = overrides / "vi" / "goodbye.wav"
    recording.parent.mkdir(parents=True)
    rate = 44100
    tone = array("h")
    for n in range(int(rate * 1.5)):
        value = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
        tone.extend((value, value))
    with wave.open(str(recording), "wb") as out_file:
        out_file.setnchannels(2)
        out_file.setsampwidth(2)
        out_file.setframerate(rate)
        out_file.writeframes(tone.tobytes())

    build_prompts(catalog, out, "vi", UNIT, overrides_root=overrides, names=["goodbye"])
    rate_out, channels, width, seconds, rms = _wav(built)
    assert (rate_out, channels, width) == (8000, 1, 2)
    assert 1.4 < seconds < 1.6
    assert rms > 0.05
    assert 860 < _zero_crossings_per_second(built) < 900  # a 440 Hz tone, so the recording

    recording.unlink()  # back to the synthesized prompt
    build_prompts(catalog, out, "vi", UNIT, overrides_root=overrides, names=["goodbye"])
    assert built.read_bytes() == synthesized


def test_missing_espeak_says_how_to_install_it(
    catalog: PromptCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PromptBuildError, match="apt-get install espeak-ng"):
        build_prompts(catalog, tmp_path, "vi", UNIT, names=["goodbye"])


def test_missing_variable_names_the_entry(catalog: PromptCatalog, tmp_path: Path) -> None:
    with pytest.raises(PromptBuildError, match=r"'greeting' needs \{unit_name\}"):
        build_prompts(catalog, tmp_path, "vi", {}, names=["greeting"])


@needs_espeak
def test_float_wav_recording_is_converted(catalog: PromptCatalog, tmp_path: Path) -> None:
    """pydub reads only PCM WAV; a 32-bit float studio export goes through sox."""
    recording = tmp_path / "custom" / "vi" / "area_co-nhue-1.wav"
    recording.parent.mkdir(parents=True)
    sox = str(shutil.which("sox"))
    tone = ["synth", "1", "sine", "440", "gain", "-6"]
    make = [sox, "-n", "-r", "48000", "-c", "2", "-e", "floating-point", "-b", "32"]
    subprocess.run([*make, str(recording), *tone], check=True)

    [area] = build_prompts(
        catalog,
        tmp_path / "out",
        "vi",
        UNIT,
        areas={"co-nhue-1": "phường Cổ Nhuế 1"},
        overrides_root=tmp_path / "custom",
        names=[],
    )
    rate, channels, width, seconds, _ = _wav(area)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 0.9 < seconds < 1.1


def test_mp3_recording_without_ffmpeg_says_what_to_do(
    catalog: PromptCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hide ffmpeg but keep espeak-ng and sox reachable.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("espeak-ng", "sox"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    recording = tmp_path / "custom" / "vi" / "goodbye.mp3"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"ID3")
    with pytest.raises(PromptBuildError, match=r"goodbye\.mp3: .*apt-get install ffmpeg"):
        build_prompts(
            catalog, tmp_path, "vi", UNIT, overrides_root=tmp_path / "custom", names=["goodbye"]
        )
