"""Build every prompt a config needs: the catalog, ward names, music on hold.

One function, :func:`build_hotline_prompts`, serves ``hotline prompts build``,
``hotline serve``'s start and every config applied while running
(:mod:`ivr.config_applier`): each builds only what the config changed."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.config.schema import Hotline, HotlineConfig, iter_areas
from ivr.flow.hours_text import opening_hours_text, spoken_schedule

if TYPE_CHECKING:
    from ivr.prompts import PromptBuildReport

logger = logging.getLogger(__name__)

# A warning lists this many prompt files, then counts the rest.
LISTED_FAILURES = 8

CATALOG = Path(__file__).resolve().parents[1] / "prompts" / "catalog.yaml"
OVERRIDES = Path(__file__).resolve().parents[1] / "prompts" / "custom"
# Studio recordings of a config: <paths.prompts>/custom/ (the console's uploads land
# in custom/<hotline id>/<language>/); for the examples that is OVERRIDES itself.
STUDIO_FOLDER = "custom"


def studio_roots(config: HotlineConfig) -> list[Path]:
    """Where studio recordings are looked for, first wins: the config's
    ``<paths.prompts>/custom/``, then the source tree's ``prompts/custom/`` (kept
    for recordings dropped there before the prompts folder moved)."""
    own = config.resolve_path(config.paths.prompts) / STUDIO_FOLDER
    roots = [own]
    if OVERRIDES.is_dir() and OVERRIDES.resolve() != own.resolve():
        roots.append(OVERRIDES)
    return roots


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


def build_hotline_prompts(
    config: HotlineConfig, force: bool = False, report: PromptBuildReport | None = None
) -> list[Path]:
    """Synthesize each hotline's prompts into ``<paths.prompts>/<hotline id>/<language>/``
    (its own texts, unit name and hours), plus music on hold; returns every
    prompt file. Only prompts whose text changed are rebuilt (unless ``force``).

    Without ``report`` the first failure raises; with one, the failures are
    recorded there (previous files kept) and everything else is built, and
    ``report.built`` lists the files written."""
    # pydub and the synthesizer load only when prompts are built, not with
    # every command that imports this module.
    from ivr.prompts import CatalogError, PromptBuildError, PromptFailure, build_for_hotline

    root = config.resolve_path(config.paths.prompts)
    areas = {area.code: area.name for area in iter_areas(config.areas)}
    written: list[Path] = []
    for hotline in config.hotlines:
        languages = prompt_languages(hotline)
        try:
            written += build_for_hotline(
                CATALOG,
                root,
                hotline.id,
                {language: prompt_variables(config, hotline, language) for language in languages},
                areas=areas,
                overrides_root=studio_roots(config),
                texts=hotline.prompts,
                force=force,
                report=report,
            )
        except (CatalogError, PromptBuildError, OSError) as exc:
            # Not one prompt but the hotline's set (the catalog unreadable, say).
            if report is None:
                raise
            report.failed.append(PromptFailure(root / hotline.id, str(exc)))
        for language in languages:
            written.append(write_beep(root / hotline.id / language / "beep.wav", report))
    written.append(write_hold_music(root / "moh" / "hotline-hold.wav", report))
    return written


def build_one_prompt(
    config: HotlineConfig, hotline_id: str, language: str, name: str
) -> PromptBuildReport:
    """Rebuild one prompt of one hotline and language (a studio recording made
    live or removed in the console): the file Asterisk plays is replaced in one
    step, so the next call hears it. ``name`` is a catalog entry or ``area_<code>``.
    Blocking (espeak-ng): run it in a thread."""
    from ivr.prompts import PromptBuildReport, area_prompt_name, build_prompts, load_catalog

    hotline = config.hotline(hotline_id)
    if hotline is None:
        raise ValueError(f"no hotline {hotline_id!r}")
    report = PromptBuildReport()
    catalog = load_catalog(CATALOG).with_texts(hotline.prompts)
    areas = {
        area.code: area.name
        for area in iter_areas(config.areas)
        if area_prompt_name(area.code) == name
    }
    roots = studio_roots(config)
    build_prompts(
        catalog,
        config.resolve_path(config.paths.prompts) / hotline_id,
        language,
        prompt_variables(config, hotline, language),
        areas=areas,
        overrides_root=[root / hotline_id for root in roots] + roots,
        names=[] if areas else [name],
        report=report,
    )
    return report


def update_hotline_prompts(config: HotlineConfig) -> PromptBuildReport:
    """Build what ``config`` changed in its prompts, never raising: for a config
    applied while calls go on and for ``hotline serve``'s start, which a prompt
    must not stop. Blocking (espeak-ng): run it in a thread."""
    from ivr.prompts import PromptBuildReport, PromptFailure

    report = PromptBuildReport()
    try:
        build_hotline_prompts(config, report=report)
    except Exception as exc:  # the phone side goes on; the warning says what is missing
        logger.exception("prompts were not built")
        root = config.resolve_path(config.paths.prompts)
        report.failed.append(PromptFailure(root, f"{type(exc).__name__}: {exc}"))
    if report.built:
        logger.info("prompts built: %d", len(report.built))
    return report


def prompt_warnings(config: HotlineConfig, report: PromptBuildReport) -> list[str]:
    """One warning per reason, naming the prompt files (``<hotline>/<language>/<name>``)."""
    root = config.resolve_path(config.paths.prompts)
    by_reason: dict[str, list[str]] = {}
    for failure in report.failed:
        try:
            name = str(failure.path.relative_to(root).with_suffix(""))
        except ValueError:  # not a file under the root (the root itself, say)
            name = str(failure.path)
        by_reason.setdefault(failure.reason, []).append(name)
    warnings = []
    for reason, names in by_reason.items():
        listed = ", ".join(names[:LISTED_FAILURES])
        if len(names) > LISTED_FAILURES:
            listed += f" and {len(names) - LISTED_FAILURES} more"
        warnings.append(
            f"prompt not built: {listed} ({reason}); callers hear the previous "
            "file, or nothing where there is none"
        )
    if len(warnings) > LISTED_FAILURES:  # a reason per prompt (espeak-ng's own errors)
        rest = sum(len(names) for names in list(by_reason.values())[LISTED_FAILURES:])
        warnings[LISTED_FAILURES:] = [f"{rest} more prompts not built: see the log"]
    return warnings


def write_pcm_wav(path: Path, samples: array[int], rate: int = 8000) -> Path:
    """Mono 16-bit PCM WAV, the format Asterisk plays without transcoding."""
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, then renamed: never a half-written file to play or keep.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(handle, "wb") as stream, wave.open(stream, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples.tobytes())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_beep(
    path: Path,
    report: PromptBuildReport | None = None,
    seconds: float = 0.3,
    frequency: float = 1000.0,
) -> Path:
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
    write_pcm_wav(path, samples, rate)
    if report is not None:
        report.built.append(path)
    return path


def write_hold_music(
    path: Path, report: PromptBuildReport | None = None, seconds: int = 20
) -> Path:
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
    write_pcm_wav(path, samples, rate)
    if report is not None:
        report.built.append(path)
    return path
