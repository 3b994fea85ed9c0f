"""Audio in: decode a recording to 16-bit mono PCM and find what holds speech.

The decoded samples keep the file's own rate (silence and word times are judged
on them); :func:`resample` brings them to the model's rate just before vosk,
which itself only resamples when the model's mfcc.conf allows it.
"""

from __future__ import annotations

import logging
import math
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import audioop

logger = logging.getLogger(__name__)

FRAME_SECONDS = 0.01  # silence is judged per 10 ms


class UndecodableAudio(ValueError):
    """The file is not audio we can decode; retrying will not help."""


@dataclass(frozen=True)
class Pcm:
    samples: bytes  # 16-bit little-endian mono
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / 2 / self.rate


@dataclass(frozen=True)
class Span:
    """Samples [start, end) of a recording that will be decoded."""

    start: int
    end: int


def load_pcm(path: Path) -> Pcm:
    """Read a WAV directly (what MixMonitor and Record write); anything else,
    or an odd WAV, through pydub/ffmpeg. Raises :class:`UndecodableAudio`."""
    try:
        with wave.open(str(path), "rb") as reader:
            if reader.getsampwidth() == 2 and reader.getnchannels() == 1:
                return Pcm(reader.readframes(reader.getnframes()), reader.getframerate())
    except FileNotFoundError:
        raise
    except Exception as exc:  # wave raises wave.Error, EOFError, even RuntimeError
        logger.debug("%s is not a plain WAV (%s), trying ffmpeg", path, exc)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError
    try:
        segment = AudioSegment.from_file(str(path))
    except (CouldntDecodeError, IndexError, OSError, ValueError) as exc:
        raise UndecodableAudio(f"{path.name}: cannot decode audio ({_first_line(exc)})") from exc
    segment = segment.set_channels(1).set_sample_width(2)
    if len(segment) == 0:
        raise UndecodableAudio(f"{path.name}: no audio in file")
    return Pcm(segment.raw_data, segment.frame_rate)


def resample(samples: bytes, rate: int, target: int) -> tuple[bytes, int]:
    """16-bit mono ``samples`` at ``rate`` → the same audio at ``target``."""
    if rate == target or not samples:
        return samples, rate
    converted, _ = audioop.ratecv(samples, 2, 1, rate, target, None)
    return converted, target


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__


def speech_spans(
    pcm: Pcm,
    threshold_dbfs: float,
    min_silence_seconds: float,
    pad_seconds: float,
) -> list[Span]:
    """Spans to decode: everything except silences of ``min_silence_seconds`` or
    more (frames under ``threshold_dbfs``), keeping ``pad_seconds`` of each
    silence next to speech so word edges are not cut."""
    frame = max(1, int(pcm.rate * FRAME_SECONDS))
    total = len(pcm.samples) // 2
    if total == 0:
        return []
    threshold = 32768 * 10 ** (threshold_dbfs / 20)
    loud = [
        audioop.rms(pcm.samples[i * 2 : (i + frame) * 2], 2) >= threshold
        for i in range(0, total, frame)
    ]
    min_gap = math.ceil(min_silence_seconds / FRAME_SECONDS)
    pad = int(pcm.rate * pad_seconds)
    spans: list[Span] = []
    index = 0
    count = len(loud)
    while index < count:
        if not loud[index]:
            index += 1
            continue
        start = index
        end = index + 1
        quiet = 0
        probe = end
        # extend while silences are shorter than min_gap
        while probe < count:
            if loud[probe]:
                end = probe + 1
                quiet = 0
            else:
                quiet += 1
                if quiet >= min_gap:
                    break
            probe += 1
        spans.append(Span(max(0, start * frame - pad), min(total, end * frame + pad)))
        index = probe
    return _merge(spans)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in spans:
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged
