"""Keyed pseudonyms of phone numbers: the same number always gives the same
pseudonym (repeat and distinct-caller counts keep working), and without the
key nobody can test a guessed number against it.

A plain hash would not do: Vietnamese mobile numbers are about 10⁹ values,
which anyone can hash in minutes. The key is 32 random bytes in a file
readable only by the service (or an environment variable); deleting it turns
the pseudonyms into anonymous tokens for good.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from ivr.phone import normalise_caller

logger = logging.getLogger(__name__)

# E.164 numbers start with "+" and short codes with a digit, so this prefix
# marks a value that is already a pseudonym (and is never taken for a number).
PREFIX = "anon:"
_DIGEST_CHARS = 24  # 96 bits: no collisions among a city's callers; fits String(32)


def load_key(env_name: str, key_file: Path) -> bytes:
    """The key from ``$env_name``, else ``key_file``, created (0600) when missing."""
    from_env = os.environ.get(env_name)
    if from_env:
        return from_env.encode("utf-8")
    try:
        return _read_key(key_file)
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it just now
        return _read_key(key_file)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32))
    logger.info("created the pseudonym key in %s", key_file)
    return _read_key(key_file)


def _read_key(key_file: Path) -> bytes:
    key = key_file.read_bytes().strip()
    if len(key) < 16:
        raise ValueError(f"{key_file}: the pseudonym key is too short (at least 16 bytes)")
    return key


def is_pseudonym(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX)


def pseudonym(key: bytes, number: str) -> str:
    """``anon:`` and 24 hex digits of HMAC-SHA256 over the number in E.164
    (``0912…``, ``84912…`` and ``+84912…`` give the same pseudonym)."""
    canonical = normalise_caller(number).e164 or number.strip()
    digest = hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:_DIGEST_CHARS]
