"""The reference a stored transcript is checked against: plain vosk over a whole
recording, without the pipeline's silence skipping, leg merging or rounding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivr.transcription.audio import load_pcm, resample


def bare_vosk_words(model: Any, path: Path) -> list[dict[str, Any]]:
    """vosk's word dicts ({word, start, end, conf}) for the file at ``path``."""
    import vosk

    from ivr.transcription.recognizer import seed_kaldi_rng

    pcm = load_pcm(path)
    # at the model's own rate, as the pipeline feeds it: vosk only resamples
    # when the model's mfcc.conf allows it (issue 12)
    samples, rate = resample(pcm.samples, pcm.rate, model.hotline_sample_rate)
    seed_kaldi_rng()  # as the pipeline does; unseeded, vosk differs from itself
    recognizer = vosk.KaldiRecognizer(model, rate)
    recognizer.SetWords(True)
    words: list[dict[str, Any]] = []
    for offset in range(0, len(samples), 8000):
        if recognizer.AcceptWaveform(samples[offset : offset + 8000]):
            words += json.loads(recognizer.Result()).get("result", [])
    words += json.loads(recognizer.FinalResult()).get("result", [])
    return words
