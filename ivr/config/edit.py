"""Replace the config file with an edited text: checked first, saved atomically,
the previous version kept.

Used by the console's administration page and by ``hotline serve`` on SIGHUP
(there the file was edited by hand and is only re-read). Applying the checked
config to Asterisk and to the running services is :mod:`ivr.config.apply`.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.config.loader import load_config
from ivr.config.schema import HotlineConfig

# Settings a running process cannot take over: sockets it listens on or
# connects to, and the database. A change is saved, and reported as needing a
# restart of `hotline serve` (Asterisk's own SIP/RTP sockets need a restart of
# Asterisk too).
RESTART_ONLY = (
    ("database",),
    ("asterisk", "sip"),
    ("asterisk", "rtp"),
    ("asterisk", "ami"),
    ("asterisk", "agi"),
    ("web",),
    ("timezone",),
    ("transcription",),
)


def check_config_text(path: Path, text: str) -> HotlineConfig:
    """The config ``text`` would give if saved at ``path``; raises
    :class:`~ivr.config.loader.ConfigError` naming ``path``, line and field."""
    return load_config(path, text=text)


def save_config_text(path: Path, text: str, history_dir: Path, now: datetime) -> Path | None:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new
    file, never half of one); the old content goes to ``history_dir`` first.
    Returns the saved copy of the old version (None when there was none)."""
    backup = None
    if path.exists():
        history_dir.mkdir(parents=True, exist_ok=True)
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        backup = history_dir / f"{path.stem}-{stamp}{path.suffix}"
        backup.write_bytes(path.read_bytes())
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def restart_only_changes(old: HotlineConfig, new: HotlineConfig) -> list[str]:
    """Dotted names of changed settings that only a restart takes over."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    changed = []
    for path in RESTART_ONLY:
        if _at(before, path) != _at(after, path):
            changed.append(".".join(path))
    return changed


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data
