"""SIP secrets of the phones that have none in the config file.

Every phone authenticates what it sends to Asterisk (REGISTER, INVITE); a
phone listed without ``secret`` gets one generated here, kept in the JSON file
``paths.phone_secrets`` (default ``../var/phone-secrets.json`` next to the
config's folder), readable only by the service user (mode 0600). The file is
created when missing and only grows: a secret, once given to a phone, stays
the same until an administrator removes its line. ``hotline phones secret ID``
prints one so the administrator can set it in the phone. Nothing here logs a
secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ivr.atomic_file import write_atomically
from ivr.config.safe_text import check_secret
from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)

SECRET_BYTES = 18  # 24 characters of [A-Za-z0-9_-]: 144 bits


def phone_secrets_path(config: HotlineConfig) -> Path:
    return config.resolve_path(config.paths.phone_secrets)


def generated_phone_secrets(config: HotlineConfig) -> dict[str, str]:
    """Phone id → secret for every phone without one in the config, generating
    (and storing) the missing ones. Phones with a secret in the file are not
    listed: the config's own secret wins."""
    needed = [phone.id for phone in config.phones if phone.secret is None]
    if not needed:
        return {}
    path = phone_secrets_path(config)
    with _locked(path):
        stored = _read(path)
        missing = [phone_id for phone_id in needed if phone_id not in stored]
        if missing:
            for phone_id in missing:
                stored[phone_id] = secrets.token_urlsafe(SECRET_BYTES)
            _write(path, stored)
            logger.info("generated SIP secrets for %d phone(s) in %s", len(missing), path)
    return {phone_id: stored[phone_id] for phone_id in needed}


def phone_secret(config: HotlineConfig, phone_id: str) -> str:
    """The secret phone ``phone_id`` authenticates with (raises KeyError for
    a phone the config does not list)."""
    phone = next((p for p in config.phones if p.id == phone_id), None)
    if phone is None:
        raise KeyError(phone_id)
    if phone.secret is not None:
        return phone.secret
    return generated_phone_secrets(config)[phone_id]


def new_phone_secret(config: HotlineConfig, phone_id: str) -> str:
    """Generate a new secret for phone ``phone_id``, store it in place of its
    old one and return it (the console shows it once; it is never read back
    there). Raises KeyError for a phone the config does not list and
    ValueError for one whose secret is written in the config file."""
    phone = next((p for p in config.phones if p.id == phone_id), None)
    if phone is None:
        raise KeyError(phone_id)
    if phone.secret is not None:
        raise ValueError(f"phone {phone_id!r} has its secret in the config file")
    path = phone_secrets_path(config)
    with _locked(path):
        stored = _read(path)
        stored[phone_id] = secrets.token_urlsafe(SECRET_BYTES)
        _write(path, stored)
    logger.info("new SIP secret for phone %s stored in %s", phone_id, path)
    return stored[phone_id]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two processes (the service and the CLI) may render at once: one generates.
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _read(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return {}
    if mode & 0o077:
        logger.warning("%s was readable by others (mode %o): now 0600", path, mode)
        os.chmod(path, 0o600)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of phone id → secret")
    for phone_id, value in data.items():
        try:
            check_secret(str(value))
        except ValueError:
            raise ValueError(f"{path}: the secret of {phone_id!r} has unsafe characters") from None
    return {str(k): str(v) for k, v in data.items()}


def _write(path: Path, stored: dict[str, str]) -> None:
    write_atomically(path, json.dumps(stored, indent=1, sort_keys=True) + "\n")  # 0600
