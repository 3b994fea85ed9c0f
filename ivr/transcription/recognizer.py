"""Vosk, per leg: decode the kept spans, word timestamps back in call time,
and the legs merged into one dialogue ordered by time."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ivr.transcription.audio import Pcm, Span, resample, speech_spans

logger = logging.getLogger(__name__)

# Bytes handed to vosk per AcceptWaveform call (0.25 s at 16 kHz): the size the
# vosk examples use; results do not depend on it, progress callbacks do.
CHUNK_BYTES = 4000 * 2
SPEAKER_LABELS = {"caller": "Người gọi", "agent": "Cán bộ", "voicemail": "Người gọi"}
SPEAKER_OF_LEG = {"caller": "caller", "agent": "agent", "voicemail": "caller"}
TURN_GAP_SECONDS = 1.5


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the recording
    end: float
    conf: float


@dataclass(frozen=True)
class LegTranscript:
    leg: str
    words: list[Word]
    audio_seconds: float
    decoded_seconds: float

    @property
    def text(self) -> str:
        return " ".join(word.word for word in self.words)


@dataclass(frozen=True)
class Turn:
    speaker: str  # caller | agent
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SilenceSettings:
    enabled: bool = True
    threshold_dbfs: float = -45.0
    min_silence_seconds: float = 1.0
    pad_seconds: float = 0.3


# Kaldi's own default for --sample-frequency, used when mfcc.conf does not set it.
KALDI_DEFAULT_RATE = 16000


def load_model(path: Path) -> Any:
    """A vosk model (seconds to load and hundreds of MB: load once per worker),
    carrying the sample rate it was trained at as ``hotline_sample_rate``."""
    import vosk

    vosk.SetLogLevel(-1)
    if not (path / "conf").is_dir() and not (path / "am").is_dir():
        raise FileNotFoundError(f"{path} does not look like a vosk model folder")
    model = vosk.Model(str(path))
    model.hotline_sample_rate = model_sample_rate(path)
    return model


def model_sample_rate(path: Path) -> int:
    """The rate the model's features are computed at: ``--sample-frequency`` in
    conf/mfcc.conf (the last one wins, as in Kaldi's option parser)."""
    rate = KALDI_DEFAULT_RATE
    conf = path / "conf" / "mfcc.conf"
    if not conf.is_file():
        return rate
    for number, line in enumerate(conf.read_text(encoding="utf-8").splitlines(), start=1):
        option, _, value = line.split("#", 1)[0].strip().partition("=")
        if option.replace("_", "-") != "--sample-frequency":
            continue
        try:
            rate = int(float(value))
        except ValueError:
            raise ValueError(
                f"{conf}, line {number}: --sample-frequency: not a number: {value!r}"
            ) from None
    return rate


# Kaldi (inside vosk) draws from libc's rand() while decoding, so the same audio
# gives different words depending on what the process decoded before (seen with
# vosk 0.3.45: four runs, four transcripts). Seeding before each leg makes a
# transcript a function of the audio alone: retries and benchmarks agree.
KALDI_RNG_SEED = 1


@cache
def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def seed_kaldi_rng(seed: int = KALDI_RNG_SEED) -> None:
    _libc().srand(seed)


def decode_words(
    model: Any, samples: bytes, rate: int, progress: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Plain vosk over ``samples``: the word dicts of every result, in order.

    The samples are resampled to the model's own rate first: vosk only resamples
    when the model's mfcc.conf allows it (``--allow-upsample`` is rare, and 8 kHz
    telephone audio into a 16 kHz model needs it), otherwise every waveform is
    refused. Word times are in seconds, so resampling leaves them as they are."""
    import vosk

    samples, rate = resample(samples, rate, getattr(model, "hotline_sample_rate", rate))
    seed_kaldi_rng()
    recognizer = vosk.KaldiRecognizer(model, rate)
    recognizer.SetWords(True)
    words: list[dict[str, Any]] = []
    for offset in range(0, len(samples), CHUNK_BYTES):
        if recognizer.AcceptWaveform(samples[offset : offset + CHUNK_BYTES]):
            words += json.loads(recognizer.Result()).get("result", [])
        if progress is not None:
            progress()
    words += json.loads(recognizer.FinalResult()).get("result", [])
    return words


def transcribe_leg(
    model: Any,
    leg: str,
    pcm: Pcm,
    silence: SilenceSettings,
    progress: Callable[[], None] | None = None,
) -> LegTranscript:
    """Decode the leg's speech spans as one stream (long silences cut out),
    mapping each word's time back to the recording's own clock."""
    total = len(pcm.samples) // 2
    if silence.enabled:
        spans = speech_spans(
            pcm, silence.threshold_dbfs, silence.min_silence_seconds, silence.pad_seconds
        )
    else:
        spans = [Span(0, total)] if total else []
    kept = b"".join(pcm.samples[s.start * 2 : s.end * 2] for s in spans)
    raw = decode_words(model, kept, pcm.rate, progress) if kept else []
    words = [
        Word(
            w["word"],
            round(_to_recording_time(w["start"], spans, pcm.rate), 3),
            round(_to_recording_time(w["end"], spans, pcm.rate, end=True), 3),
            float(w.get("conf", 1.0)),
        )
        for w in raw
    ]
    return LegTranscript(leg, words, pcm.seconds, len(kept) / 2 / pcm.rate)


def _to_recording_time(seconds: float, spans: list[Span], rate: int, end: bool = False) -> float:
    """A time in the decoded stream (spans back to back) → time in the file."""
    sample = seconds * rate
    before = 0
    for span in spans:
        length = span.end - span.start
        if sample < before + length or (end and sample <= before + length):
            return (span.start + sample - before) / rate
        before += length
    return (spans[-1].end / rate) if spans else seconds


def merge_dialogue(legs: Iterable[LegTranscript]) -> list[Turn]:
    """All legs' words by start time, grouped into turns of one speaker."""
    tagged = sorted(
        ((word, SPEAKER_OF_LEG.get(leg.leg, leg.leg)) for leg in legs for word in leg.words),
        key=lambda item: (item[0].start, item[0].end),
    )
    turns: list[Turn] = []
    current: list[Word] = []
    speaker = ""
    for word, who in tagged:
        if current and (who != speaker or word.start - current[-1].end > TURN_GAP_SECONDS):
            turns.append(_turn(speaker, current))
            current = []
        speaker = who
        current.append(word)
    if current:
        turns.append(_turn(speaker, current))
    return turns


def _turn(speaker: str, words: list[Word]) -> Turn:
    return Turn(speaker, words[0].start, words[-1].end, " ".join(w.word for w in words))


def dialogue_text(turns: list[Turn]) -> str:
    return "\n".join(f"{SPEAKER_LABELS.get(t.speaker, t.speaker)}: {t.text}" for t in turns)


def dialogue_json(legs: list[LegTranscript], turns: list[Turn]) -> str:
    return json.dumps(
        {
            "legs": {leg.leg: [asdict(word) for word in leg.words] for leg in legs},
            "turns": [asdict(turn) for turn in turns],
        },
        ensure_ascii=False,
    )


def turns_from_json(dialogue: str) -> list[Turn]:
    """The turns :func:`dialogue_json` stored (none for an empty or older row)."""
    try:
        stored = json.loads(dialogue or "{}")
    except ValueError:
        logger.warning("transcript dialogue is not JSON; showing the plain text instead")
        return []
    turns = stored.get("turns", []) if isinstance(stored, dict) else []
    return [
        Turn(str(t["speaker"]), float(t["start"]), float(t["end"]), str(t["text"])) for t in turns
    ]
