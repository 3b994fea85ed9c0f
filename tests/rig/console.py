"""The console's database for web tests: migrated to the newest revision, with
the signed-in users a test needs, one per role and scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.web.store import UserStore


@dataclass(frozen=True)
class Account:
    """A console user: a supervisor or unit user is scoped by its hotline or
    unit, an agent is one of the config's agents."""

    username: str
    role: str
    hotline_id: str | None = None
    agent_id: str | None = None
    unit_code: str | None = None


@contextmanager
def console_sessions(database_url: str, *accounts: Account, password: str = "") -> Iterator[Any]:
    """A session factory on the migrated database at ``database_url`` whose
    ``accounts`` all sign in with ``password``; the engine is disposed after."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        users = UserStore(factory)
        for account in accounts:
            users.add(
                account.username,
                password,
                account.role,
                hotline_id=account.hotline_id,
                agent_id=account.agent_id,
                unit_code=account.unit_code,
            )
        yield factory
    finally:
        engine.dispose()
