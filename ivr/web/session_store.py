"""Server-side records of signed-in sessions (table ``web_sessions``).

A cookie is valid only while its row exists: signing out deletes the row, so a
copied cookie dies with it; rows of a user whose epoch moved on (password
changed, user disabled) are refused by the epoch check and swept here.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import utc_now
from ivr.web.models import WebSession, WebUser
from ivr.web.security import SessionData

logger = logging.getLogger(__name__)


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def open(self, data: SessionData, address: str) -> None:
        """Record a session just issued at sign-in; also sweeps expired rows."""
        now = utc_now()
        with self._sessions.begin() as session:
            session.execute(delete(WebSession).where(WebSession.expires_at < now))
            session.add(
                WebSession(
                    nonce_hash=_hash(data.nonce), user_id=data.user_id, created_at=now,
                    expires_at=datetime.fromtimestamp(data.expires, UTC), address=address[:64],
                )
            )  # fmt: skip

    def user_of(self, data: SessionData) -> WebUser | None:
        """The session's user, if the session is still on record, unexpired,
        and the user active with the same session epoch; else ``None``."""
        with self._sessions() as session:
            row = session.get(WebSession, _hash(data.nonce))
            if row is None or row.user_id != data.user_id or row.expires_at < utc_now():
                return None
            user = session.get(WebUser, data.user_id)
            if user is None or not user.active or user.session_epoch != data.epoch:
                return None
            return user

    def close(self, data: SessionData) -> None:
        """Sign-out: the row goes, so the cookie is worthless from now on."""
        with self._sessions.begin() as session:
            session.execute(delete(WebSession).where(WebSession.nonce_hash == _hash(data.nonce)))

    def close_all(self, user_id: int) -> int:
        """End every session of a user (password change, user disabled)."""
        with self._sessions.begin() as session:
            result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
            return int(cast(CursorResult[Any], result).rowcount or 0)

    def count(self, user_id: int) -> int:
        with self._sessions() as session:
            return len(list(session.scalars(
                select(WebSession.nonce_hash).where(WebSession.user_id == user_id))))  # fmt: skip
