"""API keys of the apps that post Open311 requests (issue 14).

One key per client app and hotline. The key is shown once, when it is created
(``hotline open311-keys add``); only its SHA-256 is stored. A key is 32 random
bytes, so a fast hash is enough: there is no password to guess offline, and a
lookup by hash stays one indexed query. The console keeps a key it checked
for :data:`CHECKED_SECONDS` (:class:`CheckedKeys`), so a revocation, made by
the command in another process, takes effect within that time. Creating and revoking are audited, in
the same transaction as the change.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ivr.audit import AuditEntry
from ivr.db.models import Base, UtcDateTime, utc_now

logger = logging.getLogger(__name__)

KEY_PREFIX = "o311_"
SHOWN_PREFIX = len(KEY_PREFIX) + 6  # what lists show of a key, to tell keys apart


class Open311ApiKey(Base):
    """An app's key for one hotline; ``revoked_at`` set: refused."""

    __tablename__ = "open311_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotline_id: Mapped[str] = mapped_column(String(64), index=True)
    app_name: Mapped[str] = mapped_column(String(128))
    contact: Mapped[str] = mapped_column(String(255), default="")  # who runs the app
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    hotline_id: str
    app_name: str
    contact: str
    key_prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _view(row: Open311ApiKey) -> ApiKeyView:
    return ApiKeyView(
        row.id, row.hotline_id, row.app_name, row.contact, row.key_prefix, row.created_at,
        row.created_by, row.revoked_at, row.revoked_by,
    )  # fmt: skip


def _audit(
    session: Session, row: Open311ApiKey, actor: str, action: str, address: str, detail: str
) -> None:
    """The audit entry of a change to the key ``row``, in the change's transaction."""
    session.add(
        AuditEntry(
            at=utc_now(), actor=actor, action=action, target=f"open311 key {row.id}",
            address=address[:64], detail=detail,
        )
    )  # fmt: skip


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


# How long a checked key is trusted without asking the database again: an app
# posting many requests a second costs one lookup per key per interval.
CHECKED_SECONDS = 2.0

# Revocations made in this process (the console's page): every CheckedKeys
# forgets what it trusted when this count moves, so such a key is refused at
# its next request, not up to CHECKED_SECONDS later. Revocations are rare;
# the keys still in use cost one lookup each afterwards.
_revocations = 0
_revocations_lock = threading.Lock()


def _revoked_here() -> None:
    global _revocations
    with _revocations_lock:
        _revocations += 1


class CheckedKeys:
    """Keys found active lately (by hash), for :data:`CHECKED_SECONDS`;
    unknown keys are never kept (each costs its lookup, and the address its
    budget)."""

    def __init__(self, seconds: float = CHECKED_SECONDS, size: int = 1000) -> None:
        self.seconds = seconds
        self.size = size
        self._found: dict[str, tuple[ApiKeyView, float]] = {}
        self._revocations = _revocations

    def _forget_if_revoked(self) -> None:
        if self._revocations != _revocations:
            self._found.clear()
            self._revocations = _revocations

    def get(self, key: str, now: float | None = None) -> ApiKeyView | None:
        now = time.monotonic() if now is None else now
        self._forget_if_revoked()
        found = self._found.get(hash_key(key))
        if found is None or found[1] <= now:
            return None
        return found[0]

    def put(self, key: str, view: ApiKeyView, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._forget_if_revoked()
        if len(self._found) >= self.size:
            self._found = {k: v for k, v in self._found.items() if v[1] > now}
            if len(self._found) >= self.size:
                self._found.clear()
        self._found[hash_key(key)] = (view, now + self.seconds)


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked, said for the administrator."""


class ApiKeyStore:
    """Creating, listing, revoking and checking Open311 API keys."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(
        self, hotline_id: str, app_name: str, actor: str, *, contact: str = "", address: str = ""
    ) -> tuple[ApiKeyView, str]:
        """A new key for ``app_name`` on ``hotline_id``: (its record, the key
        itself, which is never readable again)."""
        app_name = " ".join(app_name.split())
        contact = " ".join(contact.split())
        if not app_name or len(app_name) > 128:
            raise ApiKeyError("the app's name is required (at most 128 characters)")
        if len(contact) > 255:
            raise ApiKeyError("the contact is at most 255 characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            row = Open311ApiKey(
                hotline_id=hotline_id, app_name=app_name, contact=contact,
                key_hash=hash_key(key), key_prefix=key[:SHOWN_PREFIX], created_at=utc_now(),
                created_by=actor,
            )  # fmt: skip
            session.add(row)
            session.flush()
            _audit(session, row, actor, "open311_key_add", address,
                   f"{hotline_id}: {app_name} ({row.key_prefix}…)")  # fmt: skip
            view = _view(row)
        logger.info("open311 key %s created for %s (%s) by %s", view.id, app_name, hotline_id,
                    actor)  # fmt: skip
        return view, key

    def all(self, hotline_id: str | None = None) -> list[ApiKeyView]:
        with self._sessions() as session:
            query = select(Open311ApiKey).order_by(Open311ApiKey.id)
            if hotline_id is not None:
                query = query.where(Open311ApiKey.hotline_id == hotline_id)
            return [_view(row) for row in session.scalars(query)]

    def revoke(self, key_id: int, actor: str, *, address: str = "") -> ApiKeyView:
        """Refuse the key from now on; revoking twice changes nothing more."""
        with self._sessions.begin() as session:
            row = session.get(Open311ApiKey, key_id)
            if row is None:
                raise ApiKeyError(f"no Open311 key {key_id}")
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = utc_now(), actor
                _audit(session, row, actor, "open311_key_revoke", address,
                       f"{row.hotline_id}: {row.app_name}")  # fmt: skip
            view = _view(row)
        _revoked_here()  # after the commit: a lookup from now on sees the revocation
        return view

    def check(self, key: str) -> ApiKeyView | None:
        """The active key ``key`` is, or None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        with self._sessions() as session:
            row = session.scalars(
                select(Open311ApiKey).where(Open311ApiKey.key_hash == hash_key(key))
            ).first()
            if row is None or row.revoked_at is not None:
                return None
            return _view(row)
