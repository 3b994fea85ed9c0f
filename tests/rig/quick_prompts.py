"""Every prompt as a 0.3 s tone: routing tests and benchmarks prove wiring and
speed, not speech, and the real Vietnamese menu alone lasts 37 s."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

from ivr.prompt_setup import write_pcm_wav

LANGUAGES = ("vi", "en")
# Not hotline folders: music on hold, studio recordings.
_NOT_HOTLINES = frozenset({"moh", "custom", *LANGUAGES})


def write_quick_prompts(built: Path, out: Path) -> Path:
    """A tone under each name of the prompts built in ``built`` (same names, in
    the same ``<hotline id>/<language>/`` folders, so the rendered dialplan is
    unchanged); music on hold is copied as it is."""
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 660 * n / 8000)) for n in range(2400)))
    for hotline in sorted(p for p in built.iterdir() if p.is_dir() and p.name not in _NOT_HOTLINES):
        for language in LANGUAGES:
            for real in (hotline / language).glob("*.wav"):
                write_pcm_wav(out / hotline.name / language / real.name, tone)
            # The tones stand for the built texts: a config applied in a test
            # (which builds its prompts) keeps them and rebuilds only what it changed.
            manifest = hotline / language / ".manifest.json"
            if manifest.is_file():
                (out / hotline.name / language / manifest.name).write_bytes(manifest.read_bytes())
    (out / "moh").mkdir(parents=True, exist_ok=True)
    for music in (built / "moh").glob("*.wav"):
        (out / "moh" / music.name).write_bytes(music.read_bytes())
    return out


def share_hotline_prompts(prompts: Path, source_id: str, hotline_id: str) -> Path:
    """A test config's extra hotline plays ``source_id``'s prompts: its folder
    links to theirs (prompts are built per hotline, ``<prompts>/<hotline id>/``)."""
    target = prompts / hotline_id
    if not target.exists():
        target.symlink_to(prompts / source_id, target_is_directory=True)
    return target
