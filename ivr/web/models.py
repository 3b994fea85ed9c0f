"""Tables of the web console: its users and the audit log.

Sessions live in signed cookies (see :mod:`ivr.web.security`), so there is no
session table; a session names its user and the user's ``session_epoch``, which
an administrator bumps to end every session of a user at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.models import Base, UtcDateTime, utc_now

ADMIN, SUPERVISOR, AGENT = "admin", "supervisor", "agent"
ROLES = (ADMIN, SUPERVISOR, AGENT)


class WebUser(Base):
    """Someone who signs in to the console. An agent user names its config agent."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """Who did what to which record: listening, downloads, exports, supervisor
    actions, logins. Written in the same request as the action it records."""

    __tablename__ = "web_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)  # listen, download, export, …
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(64), default="")
