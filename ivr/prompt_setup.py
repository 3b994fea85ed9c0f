"""Build every prompt a config needs: the catalog, ward names, music on hold."""

from __future__ import annotations

import logging
import math
from array import array
from pathlib import Path

from ivr.config.schema import Hotline, HotlineConfig, iter_areas
from ivr.flow.hours_text import opening_hours_text, spoken_schedule

logger = logging.getLogger(__name__)

CATALOG = Path(__file__).resolve().parents[1] / "prompts" / "catalog.yaml"
OVERRIDES = Path(__file__).resolve().parents[1] / "prompts" / "custom"


def prompt_languages(hotline: Hotline) -> tuple[str, ...]:
    """The languages a hotline's prompts are built in: its own, and English (a
    caller may switch to it with ``english_key``; built for every hotline so a
    key added later finds its prompts)."""
    return (hotline.language,) + (("en",) if hotline.language != "en" else ())


def prompt_variables(config: HotlineConfig, hotline: Hotline, language: str) -> dict[str, str]:
    """The placeholder values of one hotline's prompts in ``language``."""
    values = {
        "unit_name": hotline.unit_name,
        "hotline_name": hotline.name,
        "opening_hours": opening_hours_text(spoken_schedule(config, hotline), language),
    }
    if hotline.english_key is not None:
        values["english_key"] = hotline.english_key
    return values


def build_hotline_prompts(config: HotlineConfig, force: bool = False) -> list[Path]:
    """Synthesize each hotline's prompts into ``<paths.prompts>/<hotline id>/<language>/``
    (its own texts, unit name and hours), plus music on hold."""
    # pydub and the synthesizer load only when prompts are built, not with
    # every command that imports this module.
    from ivr.prompts import build_for_hotline

    root = config.resolve_path(config.paths.prompts)
    areas = {area.code: area.name for area in iter_areas(config.areas)}
    written: list[Path] = []
    for hotline in config.hotlines:
        languages = prompt_languages(hotline)
        written += build_for_hotline(
            CATALOG,
            root,
            hotline.id,
            {language: prompt_variables(config, hotline, language) for language in languages},
            areas=areas,
            overrides_root=OVERRIDES if OVERRIDES.is_dir() else None,
            texts=hotline.prompts,
            force=force,
        )
        for language in languages:
            written.append(write_beep(root / hotline.id / language / "beep.wav"))
    written.append(write_hold_music(root / "moh" / "hotline-hold.wav"))
    return written


def write_pcm_wav(path: Path, samples: array, rate: int = 8000) -> Path:  # type: ignore[type-arg]
    """Mono 16-bit PCM WAV, the format Asterisk plays without transcoding."""
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def write_beep(path: Path, seconds: float = 0.3, frequency: float = 1000.0) -> Path:
    """The tone before a recorded message (Record's own needs Asterisk's sound pack)."""
    if path.exists():
        return path
    rate = 8000
    samples = array(
        "h",
        (
            int(0.4 * 32767 * math.sin(2 * math.pi * frequency * n / rate))
            for n in range(int(rate * seconds))
        ),
    )
    return write_pcm_wav(path, samples, rate)


def write_hold_music(path: Path, seconds: int = 20) -> Path:
    """A soft, royalty-free chime loop, so callers on hold never hear silence.

    Replace the folder's content with licensed music in production.
    """
    if path.exists():
        return path
    rate = 8000
    notes = [523.25, 659.25, 783.99, 659.25, 587.33, 698.46, 880.0, 698.46]  # C E G E D F A F
    samples = array("h")
    per_note = rate * seconds // (len(notes) * 2)
    for _ in range(2):
        for frequency in notes:
            for n in range(per_note):
                envelope = math.exp(-3.0 * n / per_note)
                value = 0.25 * envelope * math.sin(2 * math.pi * frequency * n / rate)
                samples.append(int(value * 32767))
    return write_pcm_wav(path, samples, rate)
