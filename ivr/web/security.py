"""Passwords, signed session cookies, CSRF tokens and login rate limiting.

- Passwords: scrypt (memory-hard; in the standard library), a random salt per
  password, parameters stored with the hash so they can be raised later.
- Sessions: the cookie holds ``{user id, session epoch, nonce, expiry}`` signed
  with HMAC-SHA256; nothing secret is in it, and a tampered or expired cookie is
  simply no session. Bumping a user's ``session_epoch`` ends all its sessions.
- CSRF: a per-session token (HMAC of the session nonce), required on every
  POST as a form field or an ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=128 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to verify against when the user does not exist, so a login with an
# unknown name costs as long as one with a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


@dataclass(frozen=True)
class SessionData:
    user_id: int
    epoch: int
    nonce: str
    expires: float


class SessionSigner:
    def __init__(self, key: bytes, lifetime_seconds: float) -> None:
        if len(key) < 16:
            raise ValueError("the session key must be at least 16 bytes")
        self._key = key
        self.lifetime = lifetime_seconds

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\0" + payload, hashlib.sha256).digest()

    def issue(self, user_id: int, epoch: int, now: float | None = None) -> tuple[str, SessionData]:
        data = SessionData(
            user_id, epoch, secrets.token_urlsafe(16), (now or time.time()) + self.lifetime
        )
        payload = json.dumps(
            {"u": data.user_id, "e": data.epoch, "n": data.nonce, "x": int(data.expires)},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac('session', payload))}", data

    def read(self, cookie: str | None, now: float | None = None) -> SessionData | None:
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.partition(".")
        try:
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(mac), self._mac("session", payload)):
                return None
            raw = json.loads(payload)
            data = SessionData(int(raw["u"]), int(raw["e"]), str(raw["n"]), float(raw["x"]))
        except (ValueError, KeyError, TypeError):
            return None
        if data.expires < (now or time.time()):
            return None
        return data

    def csrf_token(self, session: SessionData) -> str:
        return _b64(self._mac("csrf", session.nonce.encode()))

    def check_csrf(self, session: SessionData, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))


def load_secret(env_name: str, key_file: Path) -> bytes:
    """The signing key: from the environment, else the key file (created 0600)."""
    from_env = os.environ.get(env_name)
    if from_env:
        return from_env.encode("utf-8")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode("ascii")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    logger.info("created the web session key in %s", key_file)
    return key


class LoginRateLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds per key (user
    name, client address). In memory: a restart forgets, which only helps a
    guesser by one window per restart."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until a login may be tried again (0: allowed)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.attempts:
                wait = max(wait, failures[0] + self.window - now)
        return wait

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._recent(key, now).append(now)
        if len(self._failures) > 10_000:  # forget idle keys
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    peer: str, forwarded_for: Sequence[str], trusted_proxies: Iterable[IpNetwork]
) -> str:
    """The address a request came from.

    ``peer`` is the TCP peer. Only when it is a trusted proxy is
    ``X-Forwarded-For`` read, from the right: each proxy appends the address it
    saw, so the right-most entry that is not itself a trusted proxy is the
    client; anything further left was written by the client and proves nothing.
    A malformed entry stops the walk at the last good address.
    """
    trusted = list(trusted_proxies)

    def is_trusted(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not is_trusted(hop):
            break
    return client
