"""Studio recordings uploaded in the console: check, convert, stage, make live.

An upload is converted at once to what Asterisk plays (8 kHz, mono, 16-bit PCM
WAV, trimmed and levelled as a build does) and *staged*: the clerk listens to it
beside the current prompt before confirming. Confirming moves it to
``<paths.prompts>/custom/<hotline id>/<language>/<name>.wav`` (the studio folder
the build already prefers to synthesis) and rebuilds that one prompt, so the
file Asterisk plays, ``<paths.prompts>/<hotline id>/<language>/<name>.wav``, is
replaced in one step. Removing the recording and rebuilding brings the
synthesized voice back.

Facts this relies on:

- Asterisk opens a sound file at every playback (``ast_openstream``): it keeps no
  cache of prompts, so a file replaced by rename is heard from the next
  playback on, without a reload; a playback under way keeps the old inode.
- The format is taken from the first bytes, never from the file name or the
  browser's content type: RIFF/WAVE, MP3 (an ID3 tag or an MPEG audio frame
  sync), Ogg (Vorbis or Opus), FLAC, MP4/M4A (``ftyp``), WebM (EBML). PCM WAV is read by pydub
  itself; everything else needs ffmpeg (Debian's ``ffmpeg``, installed by
  hotline.sh), which is run with the demuxer named (``-f``), file access only
  (``-protocol_whitelist file``: a crafted file cannot make it open a URL), no
  stdin and a time limit.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import warnings
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

from ivr.prompt_setup import STUDIO_FOLDER
from ivr.prompts import SAMPLE_RATE, SAMPLE_WIDTH, PromptBuildError, for_telephone

with warnings.catch_warnings():  # as in ivr.prompts: no ffmpeg warning at import
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*audioop", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 2-minute 48 kHz stereo 24-bit WAV is ~35 MB: say MP3
MAX_SECONDS = 120.0  # the longest catalogue text read slowly is well under a minute
MIN_SECONDS = 0.2
FFMPEG_SECONDS = 60  # a decode that takes longer is refused, not waited for
PENDING_FOLDER = ".pending"  # not a hotline id (ids start with a letter or digit)
PENDING_HOURS = 24  # staged uploads nobody confirmed are removed after this
STUDIO_SUFFIXES = (".wav", ".mp3")  # what ivr.prompts reads as a studio recording

_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")  # catalogue names and area_<code>

# Sniffed format -> ffmpeg's demuxer name.
DEMUXERS = {
    "wav": "wav", "mp3": "mp3", "ogg": "ogg", "flac": "flac", "m4a": "mov", "webm": "matroska",
}  # fmt: skip
FORMAT_NAMES = {
    "wav": "WAV", "mp3": "MP3", "ogg": "Ogg", "flac": "FLAC", "m4a": "M4A/MP4", "webm": "WebM",
}  # fmt: skip


class UploadRefused(ValueError):
    """An upload that cannot become a prompt. ``reason`` is a stable code the
    console translates; ``values`` fill its message; nothing was written."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(f"{reason}: {values}" if values else reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class ConvertedPrompt:
    wav: bytes  # 8 kHz mono 16-bit PCM WAV, trimmed and levelled
    seconds: float
    source_format: str  # a key of DEMUXERS


@dataclass(frozen=True)
class PendingUpload:
    """A converted upload waiting for the clerk's confirmation."""

    token: str
    hotline_id: str
    language: str
    name: str
    uploaded_by: str
    original_name: str
    source_format: str
    seconds: float
    created: float  # time.time()


def sniff_format(head: bytes) -> str | None:
    """The audio format the first bytes announce (a key of DEMUXERS), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM/Matroska, what browsers record
        return "webm"
    return None


def convert_upload(data: bytes, name: str) -> ConvertedPrompt:
    """The upload as Asterisk will play it; raises :class:`UploadRefused`."""
    if not data:
        raise UploadRefused("empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused("too_large", limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024))
    kind = sniff_format(data[:16])
    if kind is None:
        raise UploadRefused("unknown_format")
    audio = _decode(data, kind)
    seconds = len(audio) / 1000
    if seconds > MAX_SECONDS:
        raise UploadRefused("too_long", limit=int(MAX_SECONDS))
    try:
        phone = for_telephone(audio, name)
    except PromptBuildError:  # silent: nothing to level
        raise UploadRefused("silent") from None
    if len(phone) / 1000 < MIN_SECONDS:
        raise UploadRefused("too_short")
    return ConvertedPrompt(_wav_bytes(phone), len(phone) / 1000, kind)


def _decode(data: bytes, kind: str) -> AudioSegment:
    if kind == "wav":
        try:
            # pydub's own parser: from_file would hand anything it fails on to ffmpeg.
            return AudioSegment(data=data)
        except (CouldntDecodeError, ValueError, EOFError, wave.Error, IndexError):
            pass  # float or 24-bit WAV, or a broken one: ffmpeg decides
    return _ffmpeg_decode(data, kind)


def _ffmpeg_decode(data: bytes, kind: str) -> AudioSegment:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UploadRefused("needs_ffmpeg", format=FORMAT_NAMES[kind])
    with tempfile.TemporaryDirectory(prefix="hotline-upload-") as workdir:
        source = Path(workdir) / "upload"
        source.write_bytes(data)
        # Decoded to 8 kHz mono by ffmpeg's resampler; a little past the limit at
        # most (-t), so a long file is refused without decoding all of it.
        command = [
            ffmpeg, "-nostdin", "-v", "error", "-protocol_whitelist", "file",
            "-f", DEMUXERS[kind], "-i", str(source), "-t", str(MAX_SECONDS + 1),
            "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-acodec", "pcm_s16le",
            "pipe:1",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=FFMPEG_SECONDS, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise UploadRefused("undecodable", format=FORMAT_NAMES[kind]) from None
    if done.returncode != 0 or not done.stdout:
        logger.info(
            "upload refused: ffmpeg could not decode it as %s: %s",
            kind, done.stderr.decode("utf-8", "replace").strip()[:300],
        )  # fmt: skip
        raise UploadRefused("undecodable", format=FORMAT_NAMES[kind])
    return AudioSegment(data=done.stdout, sample_width=2, frame_rate=SAMPLE_RATE, channels=1)


def _wav_bytes(audio: AudioSegment) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(audio.raw_data)
    return buffer.getvalue()


# --- Where recordings live ----------------------------------------------------------


def studio_file(prompts_root: Path, hotline_id: str, language: str, name: str) -> Path:
    """The hotline's own studio recording of a prompt (written by the console)."""
    _check_name(name)
    return Path(prompts_root) / STUDIO_FOLDER / hotline_id / language / f"{name}.wav"


def live_file(prompts_root: Path, hotline_id: str, language: str, name: str) -> Path:
    """The file Asterisk plays for the prompt."""
    _check_name(name)
    return Path(prompts_root) / hotline_id / language / f"{name}.wav"


def own_recording(prompts_root: Path, hotline_id: str, language: str, name: str) -> Path | None:
    """The hotline's own studio recording (WAV or MP3), if there is one."""
    folder = Path(prompts_root) / STUDIO_FOLDER / hotline_id / language
    return next((p for p in (folder / f"{name}{s}" for s in STUDIO_SUFFIXES) if p.is_file()), None)


def shared_recording(roots: list[Path], language: str, name: str) -> Path | None:
    """A recording every hotline shares (``custom/<language>/``), if any: not
    removed from one hotline's page."""
    for root in roots:
        for suffix in STUDIO_SUFFIXES:
            candidate = root / language / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _check_name(name: str) -> None:
    # Names come from the catalogue, never from a request; this is the last fence.
    if not _NAME.match(name):
        raise ValueError(f"not a prompt name: {name!r}")


# --- Staged uploads -------------------------------------------------------------------


def _pending_folder(prompts_root: Path) -> Path:
    return Path(prompts_root) / STUDIO_FOLDER / PENDING_FOLDER


def stage(
    prompts_root: Path,
    converted: ConvertedPrompt,
    *,
    hotline_id: str,
    language: str,
    name: str,
    uploaded_by: str,
    original_name: str,
    now: float | None = None,
) -> PendingUpload:
    """Keep a converted upload for the preview; nothing callers hear changes."""
    _check_name(name)
    folder = _pending_folder(prompts_root)
    folder.mkdir(parents=True, exist_ok=True)
    created = time.time() if now is None else now
    _forget_stale(folder, created)
    pending = PendingUpload(
        token=secrets.token_hex(16),
        hotline_id=hotline_id,
        language=language,
        name=name,
        uploaded_by=uploaded_by,
        original_name=" ".join(original_name.split())[:200],
        source_format=converted.source_format,
        seconds=round(converted.seconds, 2),
        created=created,
    )
    _write_file(folder / f"{pending.token}.wav", converted.wav)
    _write_file(folder / f"{pending.token}.json", json.dumps(asdict(pending)).encode("utf-8"))
    return pending


def pending_upload(prompts_root: Path, token: str) -> PendingUpload | None:
    """The staged upload ``token`` names, or None (unknown, malformed or gone)."""
    if not _TOKEN.match(token):
        return None
    folder = _pending_folder(prompts_root)
    try:
        meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
        pending = PendingUpload(**meta)
    except (OSError, ValueError, TypeError):
        return None
    if pending.token != token or not (folder / f"{token}.wav").is_file():
        return None
    return pending


def pending_audio(prompts_root: Path, pending: PendingUpload) -> Path:
    return _pending_folder(prompts_root) / f"{pending.token}.wav"


def make_live(prompts_root: Path, pending: PendingUpload) -> Path:
    """Move the staged recording to the hotline's studio folder (the caller then
    rebuilds the prompt); an MP3 recording of the same prompt there is removed so
    the one the clerk heard is the one that plays."""
    target = studio_file(prompts_root, pending.hotline_id, pending.language, pending.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_suffix(".mp3").unlink(missing_ok=True)
    os.replace(pending_audio(prompts_root, pending), target)
    discard(prompts_root, pending)
    return target


def discard(prompts_root: Path, pending: PendingUpload) -> None:
    folder = _pending_folder(prompts_root)
    for suffix in (".wav", ".json"):
        (folder / f"{pending.token}{suffix}").unlink(missing_ok=True)


def remove_recording(prompts_root: Path, hotline_id: str, language: str, name: str) -> bool:
    """Remove the hotline's own recording of the prompt; True if there was one."""
    removed = False
    for suffix in STUDIO_SUFFIXES:
        path = studio_file(prompts_root, hotline_id, language, name).with_suffix(suffix)
        if path.is_file():
            path.unlink()
            removed = True
    return removed


def _forget_stale(folder: Path, now: float) -> None:
    for path in folder.glob("*"):
        try:
            if now - path.stat().st_mtime > PENDING_HOURS * 3600:
                path.unlink()
        except OSError:
            pass  # removed by another request meanwhile


def _write_file(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
