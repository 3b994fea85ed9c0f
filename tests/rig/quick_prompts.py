"""Every prompt as a 0.3 s tone: routing tests and benchmarks prove wiring and
speed, not speech, and the real Vietnamese menu alone lasts 37 s."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

from ivr.prompt_setup import write_pcm_wav


def write_quick_prompts(built: Path, out: Path) -> Path:
    """A tone under each name of the prompts built in ``built`` (same names, so
    the rendered dialplan is unchanged); music on hold is copied as it is."""
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 660 * n / 8000)) for n in range(2400)))
    for language in ("vi", "en"):
        for real in (built / language).glob("*.wav"):
            write_pcm_wav(out / language / real.name, tone)
    (out / "moh").mkdir(parents=True, exist_ok=True)
    for music in (built / "moh").glob("*.wav"):
        (out / "moh" / music.name).write_bytes(music.read_bytes())
    return out
