"""Replace the config file with an edited text: checked first, saved atomically,
the previous version kept.

Used by the console's administration page and by ``hotline serve`` on SIGHUP
(there the file was edited by hand and is only re-read). Applying the checked
config to Asterisk and to the running services is :mod:`ivr.config_applier`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.atomic_file import write_atomically
from ivr.config.loader import ConfigError, ConfigProblem, format_field, load_config
from ivr.config.schema import HotlineConfig, PathsSection
from ivr.config.yaml_lines import FieldPath, load_with_lines, nearest_line

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


# Settings the console may not change: where the service writes files (an
# edit could otherwise have it write anywhere it can), where it reads its
# signing key, and the database. They change only by editing the file on the
# server as the service user.
LOCKED: tuple[FieldPath, ...] = (
    ("asterisk", "config_dir"),
    *(("paths", name) for name in PathsSection.model_fields),
    ("sms", "path"),
    ("email", "outbox_path"),
    ("email", "ca_file"),  # whom the mail server must prove it is
    ("web", "secret_file"),
    ("database", "url"),
    ("transcription", "model_path"),
    ("retention", "pseudonym_key_file"),
)
LOCKED_MESSAGE = (
    "may not be changed from the console: edit the file on the server as the service user"
)


def check_config_text(path: Path, text: str, current: HotlineConfig | None = None) -> HotlineConfig:
    """The config ``text`` would give if saved at ``path``; raises
    :class:`~ivr.config.loader.ConfigError` naming ``path``, line and field.
    With ``current`` (the running config), a change to a :data:`LOCKED`
    setting is refused too."""
    new = load_config(path, text=text)
    if current is not None:
        changed = locked_changes(current, new)
        if changed:
            _, lines = load_with_lines(path, text)
            raise ConfigError(
                [
                    ConfigProblem(
                        path, nearest_line(lines, where), format_field(where), LOCKED_MESSAGE
                    )
                    for where in changed
                ]
            )
    return new


def locked_changes(old: HotlineConfig, new: HotlineConfig) -> list[FieldPath]:
    """The :data:`LOCKED` settings whose value differs between the two configs."""
    return [where for where in LOCKED if _value(old, where) != _value(new, where)]


def _value(config: HotlineConfig, where: FieldPath) -> Any:
    value: Any = config
    for name in where:
        value = getattr(value, str(name), None)
    return value


def save_config_text(path: Path, text: str, history_dir: Path, now: datetime) -> Path | None:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new
    file, never half of one); the old content goes to ``history_dir`` first.
    Returns the saved copy of the old version (None when there was none).
    The file and its copies hold secrets: they are written with mode 0600 (and
    the history folder 0700), whatever the old file's mode was."""
    backup = None
    if path.exists():
        history_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        backup = history_dir / f"{path.stem}-{stamp}{path.suffix}"
        copy = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(copy, 0o600)  # also when a copy of that instant existed
        with os.fdopen(copy, "wb") as out:
            out.write(path.read_bytes())
    write_atomically(path, text)  # 0600
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
