"""Studio recordings uploaded in the console (issue 16): any common format is
sniffed from its bytes and converted to what Asterisk plays (8 kHz, mono, 16-bit
PCM WAV); a bad file is refused with a reason and nothing is written; a staged
upload made live replaces the prompt Asterisk plays, and removing it brings the
synthesized voice back. Integration tier: ffmpeg, sox and espeak-ng run."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import time
import wave
from array import array
from pathlib import Path

import pytest

from ivr.config import HotlineConfig, load_config
from ivr.prompt_setup import build_hotline_prompts, build_one_prompt, studio_roots
from ivr.prompt_upload import (
    MAX_UPLOAD_BYTES,
    ConvertedPrompt,
    UploadRefused,
    convert_upload,
    live_file,
    make_live,
    own_recording,
    pending_audio,
    pending_upload,
    remove_recording,
    sniff_format,
    stage,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
HOTLINE = "bac-tu-liem"


def tone_wav(seconds: float, rate: int = 44100, channels: int = 2, frequency: float = 440) -> bytes:
    """A studio-like take: 44.1 kHz stereo, a tone between short silences."""
    silence = int(rate * 0.3)
    body = int(rate * seconds)
    samples = array("h")
    for n in range(silence + body + silence):
        value = 0
        if silence <= n < silence + body:
            value = int(12000 * math.sin(2 * math.pi * frequency * n / rate))
        samples.extend([value] * channels)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def encoded(tmp_path: Path, wav: bytes, suffix: str, *codec: str) -> bytes:
    """``wav`` encoded by ffmpeg (MP3, Ogg Opus, M4A): what a studio sends."""
    source, target = tmp_path / "studio.wav", tmp_path / f"take{suffix}"
    source.write_bytes(wav)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *codec, str(target)],
        check=True,
    )
    return target.read_bytes()


def wav_facts(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        frames = wav.getnframes()
        rate = wav.getframerate()
        return rate, wav.getnchannels(), wav.getsampwidth(), frames / rate


def test_a_studio_wav_becomes_8khz_mono_16bit_trimmed() -> None:
    converted = convert_upload(tone_wav(1.5), "greeting")

    rate, channels, width, seconds = wav_facts(converted.wav)
    assert (rate, channels, width) == (8000, 1, 2)
    # the tone's 1.5 s and at most 0.12 s of each 0.3 s silence kept
    assert 1.5 <= seconds <= 1.5 + 2 * 0.13
    assert converted.seconds == pytest.approx(seconds, abs=0.01)
    assert converted.source_format == "wav"


@pytest.mark.parametrize(
    ("suffix", "codec", "kind"),
    [
        (".mp3", ["-codec:a", "libmp3lame"], "mp3"),
        (".ogg", ["-codec:a", "libopus"], "ogg"),
        (".m4a", ["-codec:a", "aac"], "m4a"),
        (".flac", [], "flac"),
        (".webm", ["-codec:a", "libopus"], "webm"),
    ],
)
def test_common_formats_are_sniffed_from_their_bytes_and_converted(
    tmp_path: Path, suffix: str, codec: list[str], kind: str
) -> None:
    assert shutil.which("ffmpeg"), "ffmpeg converts these formats: apt-get install ffmpeg"
    data = encoded(tmp_path, tone_wav(1.0), suffix, *codec)
    assert sniff_format(data[:16]) == kind

    converted = convert_upload(data, "greeting")  # no file name: the bytes decide

    rate, channels, width, seconds = wav_facts(converted.wav)
    assert (rate, channels, width, converted.source_format) == (8000, 1, 2, kind)
    assert 0.9 <= seconds <= 1.5


def test_a_24bit_wav_is_converted_to_16bit(tmp_path: Path) -> None:
    data = encoded(tmp_path, tone_wav(1.0), ".wav", "-codec:a", "pcm_s24le")

    rate, channels, width, seconds = wav_facts(convert_upload(data, "greeting").wav)

    assert (rate, channels, width) == (8000, 1, 2) and 0.9 <= seconds <= 1.3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<html><script>alert(1)</script></html>", "unknown_format"),
        (b"#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:1/x.mp3\n", "unknown_format"),
        # A WAV header over garbage: neither pydub nor ffmpeg make audio of it.
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64, "undecodable"),
        (b"ID3" + b"\x00" * 2000, "undecodable"),
    ],
    ids=["empty", "html", "playlist", "broken-wav", "broken-mp3"],
)
def test_what_is_not_audio_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UploadRefused) as refused:
        convert_upload(data, "greeting")
    assert refused.value.reason == reason


def test_limits_of_size_length_and_silence() -> None:
    with pytest.raises(UploadRefused) as too_large:
        convert_upload(b"RIFF" + b"\x00" * MAX_UPLOAD_BYTES, "greeting")
    assert too_large.value.reason == "too_large" and too_large.value.values == {"limit_mb": 20}

    with pytest.raises(UploadRefused) as too_long:
        convert_upload(tone_wav(125, rate=8000, channels=1), "greeting")
    assert too_long.value.reason == "too_long"

    with pytest.raises(UploadRefused) as silent:
        convert_upload(tone_wav(2, rate=8000, channels=1, frequency=0), "greeting")
    assert silent.value.reason == "silent"


# --- staged, live, removed ------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, built_prompts: Path) -> HotlineConfig:
    """The example with its built prompts (manifests too) in a folder of its own."""
    prompts = tmp_path / "prompts"
    shutil.copytree(built_prompts / HOTLINE, prompts / HOTLINE)
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "  prompts: ../prompts\n", f"  prompts: {prompts}\n"
    )
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_an_upload_made_live_replaces_the_played_file_and_removing_it_brings_back_the_voice(
    config: HotlineConfig,
) -> None:
    root = config.resolve_path(config.paths.prompts)
    assert studio_roots(config)[0] == root / "custom"
    played = live_file(root, HOTLINE, "vi", "greeting")
    synthesized = played.read_bytes()
    other = live_file(root, HOTLINE, "vi", "goodbye").read_bytes()
    converted = convert_upload(tone_wav(1.2), "greeting")

    pending = stage(root, converted, hotline_id=HOTLINE, language="vi", name="greeting",
                    uploaded_by="admin", original_name="chao mung.wav")  # fmt: skip

    # Staged: nothing a caller hears has changed yet.
    assert played.read_bytes() == synthesized
    assert pending_upload(root, pending.token) == pending
    assert pending_audio(root, pending).read_bytes() == converted.wav

    make_live(root, pending)
    report = build_one_prompt(config, HOTLINE, "vi", "greeting")

    assert report.failed == [] and report.built == [played]
    assert own_recording(root, HOTLINE, "vi", "greeting") is not None
    assert pending_upload(root, pending.token) is None  # used once
    live = played.read_bytes()
    assert live != synthesized
    assert wav_facts(live)[:3] == (8000, 1, 2)
    assert wav_facts(live)[3] == pytest.approx(converted.seconds, abs=0.02)
    assert live_file(root, HOTLINE, "vi", "goodbye").read_bytes() == other  # only that prompt
    assert live_file(root, HOTLINE, "en", "greeting").read_bytes() != live  # only that language
    # A config applied later (or `hotline prompts build`) keeps the recording.
    build_hotline_prompts(config)
    assert played.read_bytes() == live

    assert remove_recording(root, HOTLINE, "vi", "greeting")
    build_one_prompt(config, HOTLINE, "vi", "greeting")

    assert played.read_bytes() == synthesized  # espeak-ng's voice again, the same bytes
    assert own_recording(root, HOTLINE, "vi", "greeting") is None
    assert not remove_recording(root, HOTLINE, "vi", "greeting")


def test_an_area_announcement_can_be_recorded_too(config: HotlineConfig) -> None:
    root = config.resolve_path(config.paths.prompts)
    played = live_file(root, HOTLINE, "vi", "area_dong-ngac")
    before = played.read_bytes()
    converted = convert_upload(tone_wav(0.8), "area_dong-ngac")
    pending = stage(root, converted, hotline_id=HOTLINE, language="vi", name="area_dong-ngac",
                    uploaded_by="a", original_name="x")  # fmt: skip
    make_live(root, pending)

    report = build_one_prompt(config, HOTLINE, "vi", "area_dong-ngac")

    assert report.built == [played] and played.read_bytes() != before


def test_a_token_that_is_not_one_finds_nothing(tmp_path: Path) -> None:
    for token in ("../../etc/passwd", "0" * 31, "A" * 32, ""):
        assert pending_upload(tmp_path, token) is None
    converted = ConvertedPrompt(tone_wav(0.5, rate=8000, channels=1), 0.5, "wav")
    with pytest.raises(ValueError):
        stage(tmp_path, converted, hotline_id=HOTLINE, language="vi", name="../greeting",
              uploaded_by="a", original_name="x")  # fmt: skip


def test_uploads_nobody_confirmed_are_removed_after_a_day(tmp_path: Path) -> None:
    converted = ConvertedPrompt(tone_wav(0.5, rate=8000, channels=1), 0.5, "wav")
    stale = stage(tmp_path, converted, hotline_id=HOTLINE, language="vi", name="greeting",
                  uploaded_by="a", original_name="x")  # fmt: skip
    assert pending_upload(tmp_path, stale.token) == stale

    later = stage(tmp_path, converted, hotline_id=HOTLINE, language="vi", name="greeting",
                  uploaded_by="a", original_name="z", now=time.time() + 25 * 3600)  # fmt: skip

    assert pending_upload(tmp_path, stale.token) is None
    assert pending_upload(tmp_path, later.token) == later
