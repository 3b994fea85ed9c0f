"""Tables of the web console: its users and their sessions (the audit log it
writes is :mod:`ivr.audit`).

A session is a signed cookie (see :mod:`ivr.web.security`) *and* a row in
``web_sessions``: the cookie alone is never enough, so signing out ends a
session for good. A session also names the user's ``session_epoch``, which a
password change or disabling the user bumps to end all its sessions at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.models import Base, UtcDateTime, utc_now

ADMIN, SUPERVISOR, AGENT, UNIT = "admin", "supervisor", "agent", "unit"
# ``unit``: a clerk of a responsible unit (``web_users.unit_code``), who sees
# only the cases forwarded to that unit.
ROLES = (ADMIN, SUPERVISOR, AGENT, UNIT)


class WebUser(Base):
    """Someone who signs in to the console. An agent user names its config agent."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    # A supervisor of one hotline reads only that hotline's calls and cases;
    # None: every hotline of the deployment (administrators, or a supervisor
    # where the deployment serves one authority).
    hotline_id: Mapped[str | None] = mapped_column(String(64))
    # A unit user's responsible unit (a ``units:`` code of the config).
    unit_code: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebSession(Base):
    """A signed-in session, held on the server so that signing out, a password
    change or disabling the user ends it even if the cookie was copied. The
    cookie carries a random nonce; only its SHA-256 is stored, so a read of
    this table does not hand out live sessions."""

    __tablename__ = "web_sessions"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    address: Mapped[str] = mapped_column(String(64), default="")
