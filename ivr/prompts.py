"""The prompt catalog: load it, check it, and build the 8 kHz WAV files Asterisk plays.

Texts live in ``prompts/catalog.yaml`` (one entry per prompt, one text per language).
Building synthesizes each text with espeak-ng, offline, and converts it to
Asterisk's ``slin`` WAV format (8 kHz, mono, 16-bit). A studio recording dropped
into the overrides folder replaces the synthesized prompt of the same name.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import string
import subprocess
import tempfile
import unicodedata
import warnings
import wave
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.config.prompt_texts import (
    AREA_PLACEHOLDER,
    AREA_TEMPLATE,
    HOTLINE_PLACEHOLDERS,
    placeholder_problem,
    placeholders_in,
)
from ivr.config.yaml_lines import YamlSyntaxError, load_with_lines

# pydub warns on import when ffmpeg is absent and imports the deprecated audioop;
# ffmpeg is only needed for MP3 overrides, which are checked where they are used.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*audioop", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.silence import detect_leading_silence

logger = logging.getLogger(__name__)

# {english_key} is the key of a hotline that offers English (Hotline.english_key);
# an entry that uses it is built only for such hotlines.
ENGLISH_KEY_PLACEHOLDER = "english_key"
OPTIONAL_PLACEHOLDERS = frozenset({ENGLISH_KEY_PLACEHOLDER})
PLACEHOLDERS = HOTLINE_PLACEHOLDERS | {AREA_PLACEHOLDER} | OPTIONAL_PLACEHOLDERS
REQUIRED_LANGUAGES = ("vi", "en")

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
ESPEAK_VOICES = {"vi": "vi", "en": "en"}
ESPEAK_WORDS_PER_MINUTE = 150
# Placeholder values are Vietnamese place names: speak them with the Vietnamese
# voice inside prompts of any language; except these, which are written in the
# prompt's own language (the hours) or are a key said in it.
VALUE_VOICE = "vi"
LOCALIZED_PLACEHOLDERS = frozenset({"opening_hours", ENGLISH_KEY_PLACEHOLDER})
TARGET_RMS_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
KEEP_SILENCE_MS = 120
# Bump when the audio processing changes, so that every prompt is rebuilt.
PIPELINE_VERSION = "1"
MANIFEST_NAME = ".manifest.json"
# Taken (flock) while a build reads and rewrites a folder's manifest and files.
LOCK_NAME = ".lock"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_AREA_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# voice: the espeak-ng voice of every text of the entry ("For English, press 9"
# is said in English inside the Vietnamese greeting).
_ENTRY_KEYS = frozenset({"note", "voice"})


class CatalogError(ValueError):
    """The catalog file is unusable; the message names the file, line and entry."""


class PromptBuildError(RuntimeError):
    """A prompt could not be built; the message says which one and what to do."""


@dataclass(frozen=True)
class PromptFailure:
    """A prompt file a build could not (re)write: any previous file stays in place."""

    path: Path
    reason: str


@dataclass
class PromptBuildReport:
    """What a build did, for a caller that must not stop at the first failure
    (a config applied while calls go on is not blocked by one prompt)."""

    built: list[Path] = dataclasses.field(default_factory=list)  # files (re)written
    failed: list[PromptFailure] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class PromptEntry:
    name: str
    texts: Mapping[str, str]  # language -> text, whitespace collapsed, NFC
    voice: str | None = None  # one voice for every language; None: the language's own

    def placeholders(self, language: str) -> set[str]:
        return _fields(self.texts[language])


@dataclass(frozen=True)
class PromptCatalog:
    path: Path
    entries: Mapping[str, PromptEntry]  # in file order

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def text(self, name: str, language: str) -> str:
        """The raw text of ``name`` in ``language`` (placeholders not filled)."""
        return self.entries[name].texts[language]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def with_texts(self, texts: Mapping[str, Mapping[Any, str]]) -> PromptCatalog:
        """This catalog with a hotline's own texts (``Hotline.prompts``, checked
        with the config) replacing, per language, the entries of the same name;
        a name the catalog lacks becomes a new entry."""
        if not texts:
            return self
        entries = dict(self.entries)
        for name, by_language in texts.items():
            base = entries.get(name)
            merged = dict(base.texts) if base is not None else {}
            merged.update({language: _clean(text) for language, text in by_language.items()})
            entries[name] = PromptEntry(name, merged, base.voice if base is not None else None)
        return PromptCatalog(self.path, entries)


# --- Loading ------------------------------------------------------------------------


def load_catalog(
    path: Path,
    languages: Iterable[str] = REQUIRED_LANGUAGES,
    placeholders: Iterable[str] = PLACEHOLDERS,
) -> PromptCatalog:
    """Read and check the catalog; raises :class:`CatalogError` naming file, line, entry.

    Every entry needs a non-empty text for each of ``languages`` and may only use
    the given ``placeholders``; ``{area_name}`` only in ``area_selected``.
    """
    path = Path(path)
    required = tuple(languages)
    known = frozenset(placeholders)
    try:
        data, lines = load_with_lines(path)
    except FileNotFoundError:
        raise CatalogError(f"{path}: prompt catalog not found") from None
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise CatalogError(f"{where}: {exc.message}") from exc
    if not isinstance(data, dict) or not data:
        raise CatalogError(f"{path}: expected a mapping of prompt names to texts")

    def fail(key: tuple[str, ...], message: str) -> CatalogError:
        line = lines.get(key) or lines.get(key[:1])
        where = f"{path}:{line}" if line else str(path)
        return CatalogError(f"{where}: entry {key[0]!r}: {message}")

    entries: dict[str, PromptEntry] = {}
    for name, body in data.items():
        if not _NAME.match(name):
            raise fail((name,), "a prompt name is a file name: use a-z, 0-9 and _")
        if not isinstance(body, dict):
            raise fail((name,), f"expected texts per language ({', '.join(required)})")
        voice = body.get("voice")
        if voice is not None and voice not in ESPEAK_VOICES:
            raise fail(
                (name, "voice"), f"unknown voice {voice!r}; known: {', '.join(ESPEAK_VOICES)}"
            )
        texts: dict[str, str] = {}
        for language in required:
            raw = body.get(language)
            if not isinstance(raw, str) or not raw.strip():
                raise fail((name,), f"no {language!r} text")
            texts[language] = _clean(raw)
        for key, raw in body.items():
            if key in required or key in _ENTRY_KEYS:
                continue
            if not _LANGUAGE.match(key):
                raise fail((name, key), f"unknown key {key!r}: expected language codes or note")
            if not isinstance(raw, str) or not raw.strip():
                raise fail((name, key), f"the {key!r} text must be non-empty text")
            texts[key] = _clean(raw)
        for language, text in texts.items():
            problem = placeholder_problem(name, text, known - {AREA_PLACEHOLDER})
            if problem is not None:
                raise fail((name, language), f"{language} text: {problem}")
        entries[name] = PromptEntry(name, texts, voice)
    return PromptCatalog(path, entries)


def _clean(text: str) -> str:
    # NFC: some keyboards type Vietnamese as decomposed marks, which espeak-ng misreads.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _fields(text: str) -> set[str]:
    return placeholders_in(text)


# --- Building ------------------------------------------------------------------------


def prompt_path(out_root: Path, hotline_id: str, language: str, name: str) -> str:
    """The absolute path Asterisk plays for a hotline's prompt: no extension.

    One folder per hotline (``<out_root>/<hotline_id>/<language>/``): their texts
    differ (unit name, hours, own topic menus)."""
    return str((Path(out_root) / hotline_id / language / name).resolve())


def area_prompt_name(code: str) -> str:
    """The prompt name announcing an area: ``area_<code>``."""
    return f"area_{code}"


def build_prompts(
    catalog: PromptCatalog,
    out_root: Path,
    language: str,
    variables: Mapping[str, str],
    areas: Mapping[str, str] | None = None,
    overrides_root: Path | Iterable[Path] | None = None,
    force: bool = False,
    names: Iterable[str] | None = None,
    report: PromptBuildReport | None = None,
) -> list[Path]:
    """Write ``out_root/<language>/<name>.wav`` for each entry and ``area_<code>.wav``
    for each area code -> name in ``areas``; returns every output path, in order.

    Unchanged prompts (same text, voice and override) are kept unless ``force``.
    ``names`` limits the build to those entries (areas are still built). A file
    ``<overrides root>/<language>/<output name>.wav`` (or ``.mp3``) is used instead of
    synthesis; with several roots the first that has one wins. ``{area_name}`` comes
    from ``areas``; ``area_selected.wav`` itself is only built when ``variables`` has
    an ``area_name``. An entry that needs an optional placeholder (``{english_key}``)
    absent from ``variables`` is left out.

    Without ``report`` the first prompt that cannot be built raises
    :class:`PromptBuildError`; with one, each such prompt is recorded there (its
    previous file and manifest entry kept) and the others are still built. One
    build at a time writes a folder (threads and processes alike).
    """
    selected = catalog.names if names is None else list(names)
    unknown = [name for name in selected if name not in catalog]
    if unknown:
        raise PromptBuildError(f"{catalog.path}: no prompt named {', '.join(unknown)}")
    untranslated = [name for name in selected if language not in catalog.entries[name].texts]
    if untranslated:
        raise PromptBuildError(
            f"{catalog.path}: no {language!r} text for entry {', '.join(untranslated)}"
        )

    jobs: list[tuple[str, str, Mapping[str, str]]] = []  # output name, entry, variables
    for name in selected:
        needed = catalog.entries[name].placeholders(language)
        if AREA_PLACEHOLDER in needed and AREA_PLACEHOLDER not in variables:
            continue  # a per-area template, built below
        if (needed & OPTIONAL_PLACEHOLDERS) - set(variables):
            continue  # e.g. the English offer of a hotline that has none
        absent = sorted(needed - set(variables))
        if absent:
            raise PromptBuildError(
                f"{catalog.path}: entry {name!r} needs "
                + ", ".join(f"{{{a}}}" for a in absent)
                + " but no value was given"
            )
        jobs.append((name, name, variables))
    for code, area_name in (areas or {}).items():
        if not _AREA_CODE.match(code):
            raise PromptBuildError(
                f"area code {code!r} cannot be a file name: use letters, digits, - and _"
            )
        jobs.append(
            (area_prompt_name(code), AREA_TEMPLATE, {**variables, AREA_PLACEHOLDER: area_name})
        )

    folder = Path(out_root) / language
    folder.mkdir(parents=True, exist_ok=True)
    if overrides_root is None:
        roots: list[Path] = []
    elif isinstance(overrides_root, (str, Path)):
        roots = [Path(overrides_root)]
    else:
        roots = [Path(root) for root in overrides_root]
    overrides = [root / language for root in roots]
    outputs: list[Path] = []
    built = failed = 0
    # The manifest is read, updated and written back whole: two builds of one
    # folder at once (a config applied while `hotline prompts build` runs, two
    # processes reloading on SIGHUP) would each lose the other's entries.
    with _folder_lock(folder):
        manifest = _read_manifest(folder)
        try:
            for output_name, entry_name, values in jobs:
                target = folder / f"{output_name}.wav"
                override = _find_override(overrides, output_name)
                if override is not None:
                    digest = _digest("override", _file_hash(override))
                else:
                    entry = catalog.entries[entry_name]
                    parts = _speech_parts(entry.texts[language], language, values, entry.voice)
                    digest = _digest("espeak-ng", ESPEAK_WORDS_PER_MINUTE, *_flatten(parts))
                outputs.append(target)
                if not force and target.exists() and manifest.get(output_name) == digest:
                    continue
                try:
                    if override is not None:
                        audio = _load_override(override)
                        source = str(override)
                    else:
                        audio = _synthesize(parts, output_name)
                        source = "espeak-ng"
                    _write_wav(_for_telephone(audio, output_name), target)
                except (PromptBuildError, CouldntDecodeError, OSError) as exc:
                    if report is None:
                        raise
                    # The old file and its manifest entry stay: the next build retries.
                    logger.warning("prompt %s not built: %s", target, exc)
                    report.failed.append(PromptFailure(target, str(exc)))
                    failed += 1
                    continue
                manifest[output_name] = digest
                built += 1
                if report is not None:
                    report.built.append(target)
                logger.debug("prompt %s built from %s", target, source)
        finally:
            _write_manifest(folder, manifest)
    logger.info(
        "prompts %s: %d built, %d unchanged, %d failed",
        folder, built, len(outputs) - built - failed, failed,
    )  # fmt: skip
    return outputs


def build_for_hotline(
    catalog_path: Path,
    out_root: Path,
    hotline_id: str,
    variables: Mapping[str, Mapping[str, str]],
    areas: Mapping[str, str],
    overrides_root: Path | Iterable[Path] | None = None,
    texts: Mapping[str, Mapping[Any, str]] | None = None,
    force: bool = False,
    report: PromptBuildReport | None = None,
) -> list[Path]:
    """Build one hotline's prompts into ``out_root/<hotline_id>/<language>/``.

    ``variables`` maps each language to build to its placeholder values; ``texts``
    are the hotline's own texts replacing catalog entries (``Hotline.prompts``).
    Studio recordings: ``overrides_root/<hotline_id>/<language>/`` first, then the
    shared ``overrides_root/<language>/``; with several roots, each root's
    hotline folder before any shared one. ``report``: see :func:`build_prompts`.
    """
    catalog = load_catalog(catalog_path).with_texts(texts or {})
    if overrides_root is None:
        given: list[Path] = []
    elif isinstance(overrides_root, (str, Path)):
        given = [Path(overrides_root)]
    else:
        given = [Path(root) for root in overrides_root]
    roots = [root / hotline_id for root in given] + given
    written: list[Path] = []
    for language, values in variables.items():
        written += build_prompts(
            catalog,
            Path(out_root) / hotline_id,
            language,
            values,
            areas=areas,
            overrides_root=roots,
            force=force,
            report=report,
        )
    return written


# --- Audio ------------------------------------------------------------------------------


def _speech_parts(
    text: str, language: str, values: Mapping[str, str], voice: str | None = None
) -> list[tuple[str, str]]:
    """(voice, text) pieces: the whole sentence in Vietnamese; in another language
    the place names are spoken by the Vietnamese voice. An entry's own ``voice``
    speaks all of it, whatever the language."""
    own = voice or _voice(language)
    if own == _voice(VALUE_VOICE) or not _fields(text) - LOCALIZED_PLACEHOLDERS:
        return [(own, text.format_map(values))]
    parts: list[tuple[str, str]] = []
    for literal, field, _, _ in string.Formatter().parse(text):
        if literal.strip():
            parts.append((own, literal.strip()))
        if field is not None and values[field].strip():
            value_voice = own if field in LOCALIZED_PLACEHOLDERS else _voice(VALUE_VOICE)
            parts.append((value_voice, values[field].strip()))
    return parts


def _voice(language: str) -> str:
    return ESPEAK_VOICES.get(language, language)


def _flatten(parts: list[tuple[str, str]]) -> list[str]:
    return [item for part in parts for item in part]


def _synthesize(parts: list[tuple[str, str]], name: str) -> AudioSegment:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise PromptBuildError(
            "espeak-ng is not installed; it synthesizes the prompts offline: "
            "apt-get install espeak-ng"
        )
    audio: AudioSegment | None = None
    with tempfile.TemporaryDirectory(prefix="hotline-prompt-") as workdir:
        for index, (voice, text) in enumerate(parts):
            wav = Path(workdir) / f"{index}.wav"
            command = [espeak, "-v", voice, "-s", str(ESPEAK_WORDS_PER_MINUTE), "-w", str(wav)]
            done = subprocess.run(
                [*command, "--stdin"], input=text.encode("utf-8"), capture_output=True
            )
            if done.returncode != 0 or not wav.exists():
                message = done.stderr.decode("utf-8", "replace").strip()
                raise PromptBuildError(
                    f"espeak-ng failed on prompt {name!r} (voice {voice}): {message}"
                )
            piece = AudioSegment(data=wav.read_bytes()).set_channels(1)
            if len(parts) > 1 and piece.rms > 0:
                piece = _trim(piece)  # espeak-ng pads each piece; keep the joins short
            audio = piece if audio is None else audio + piece.set_frame_rate(audio.frame_rate)
    if audio is None:
        raise PromptBuildError(f"prompt {name!r} has no text to speak")
    return audio


def _find_override(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for suffix in (".wav", ".mp3"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _load_override(path: Path) -> AudioSegment:
    if path.suffix == ".mp3":
        if shutil.which("ffmpeg") is None and shutil.which("avconv") is None:
            raise PromptBuildError(
                f"{path}: MP3 recordings need ffmpeg (apt-get install ffmpeg); "
                "or export the recording as WAV"
            )
        return AudioSegment.from_file(str(path), format="mp3")
    try:
        # Parsed by pydub itself: from_file would fall back to ffmpeg on failure.
        return AudioSegment(data=path.read_bytes())
    except CouldntDecodeError as exc:
        # pydub reads PCM WAV only; float WAV or unusual chunk layouts need a
        # converter: sox handles them.
        sox = shutil.which("sox")
        if sox is None:
            raise PromptBuildError(
                f"{path}: cannot read this WAV ({exc}); export it as 16-bit PCM WAV, "
                "or install sox to convert it automatically"
            ) from exc
        with tempfile.TemporaryDirectory(prefix="hotline-prompt-") as workdir:
            converted = Path(workdir) / "converted.wav"
            done = subprocess.run(
                [sox, "-V1", str(path), "-b", "16", "-e", "signed-integer", str(converted)],
                capture_output=True,
            )
            if done.returncode != 0:
                message = done.stderr.decode("utf-8", "replace").strip()
                raise PromptBuildError(f"{path}: cannot read this recording: {message}") from exc
            return AudioSegment(data=converted.read_bytes())


def _for_telephone(audio: AudioSegment, name: str) -> AudioSegment:
    """Mono, 16-bit, trimmed, 8 kHz, at a steady loudness."""
    audio = audio.set_channels(1).set_sample_width(SAMPLE_WIDTH)
    if audio.rms == 0:
        raise PromptBuildError(f"prompt {name!r} is silent")
    audio = _trim(audio)
    audio = _resample(audio, SAMPLE_RATE)
    gain = min(TARGET_RMS_DBFS - audio.dBFS, PEAK_CEILING_DBFS - audio.max_dBFS)
    return audio.apply_gain(gain)


def for_telephone(audio: AudioSegment, name: str) -> AudioSegment:
    """What a build makes of a recording (mono, 16-bit, trimmed, 8 kHz, levelled):
    for an upload's preview, so the clerk hears what callers will hear."""
    return _for_telephone(audio, name)


def _trim(audio: AudioSegment) -> AudioSegment:
    threshold = audio.max_dBFS - 45.0  # relative, so quiet studio takes trim the same
    lead = detect_leading_silence(audio, silence_threshold=threshold, chunk_size=10)
    tail = detect_leading_silence(audio.reverse(), silence_threshold=threshold, chunk_size=10)
    start = max(0, lead - KEEP_SILENCE_MS)
    end = len(audio) - max(0, tail - KEEP_SILENCE_MS)
    return audio[start:end]


def _resample(audio: AudioSegment, rate: int) -> AudioSegment:
    if audio.frame_rate == rate:
        return audio
    sox = shutil.which("sox")
    if sox is None:
        # audioop's converter does not filter above the new Nyquist frequency, so
        # some aliasing is audible; sox avoids it.
        return audio.set_frame_rate(rate)
    raw = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1"]
    done = subprocess.run(
        [sox, "-V1", "-D", *raw, "-r", str(audio.frame_rate), "-", *raw, "-r", str(rate), "-"],
        input=audio.raw_data,
        capture_output=True,
    )
    if done.returncode != 0:
        logger.warning("sox could not resample (%s); using pydub", done.stderr.decode().strip())
        return audio.set_frame_rate(rate)
    return AudioSegment(data=done.stdout, sample_width=2, frame_rate=rate, channels=1)


def _write_wav(audio: AudioSegment, target: Path) -> None:
    # Write beside the target and rename: Asterisk may be playing the old file.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-")
    try:
        with os.fdopen(handle, "wb") as stream, wave.open(stream, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(audio.raw_data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- Manifest: what each output was built from ------------------------------------------


def _digest(*parts: object) -> str:
    text = "\0".join([PIPELINE_VERSION, *(str(part) for part in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError):
        logger.warning("%s is unreadable; every prompt there will be rebuilt", path)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # flock on a file opened here: it excludes other processes and, being tied
    # to this open file, other threads of this process too.
    with open(folder / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(folder: Path, manifest: dict[str, str]) -> None:
    path = folder / MANIFEST_NAME
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
