"""Engine creation with the per-backend settings that matter for a call log."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

# Nothing on a call's path waits for the database (the call log has its own
# writer thread, case lookups their own executor with a deadline), but a stuck
# connection still holds a thread and a pooled connection: these bound how long.
SQLITE_BUSY_TIMEOUT = 5.0  # s; a locked file fails the write, the call log retries it
PG_CONNECT_TIMEOUT = 5  # s; libpq's own connect_timeout
PG_STATEMENT_TIMEOUT = 10  # s; server-side statement_timeout


def make_engine(
    url: str,
    *,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT,
    connect_timeout: int = PG_CONNECT_TIMEOUT,
    statement_timeout: int | None = PG_STATEMENT_TIMEOUT,
) -> Engine:
    """SQLite gets WAL and a short busy timeout so several processes can share
    the file; PostgreSQL gets a connect and a statement timeout.

    Each timeout named in the URL wins over these defaults (libpq's
    ``?connect_timeout=…`` and ``?options=-c statement_timeout=…``, SQLite's
    ``?timeout=…``), so a deployment tunes them in ``database.url``.
    ``statement_timeout=None`` sets none (migrations may run long)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {}
        if "timeout" not in parsed.query:
            connect_args["timeout"] = busy_timeout
        engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = postgres_timeouts(parsed.query, connect_timeout, statement_timeout)
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def postgres_timeouts(
    query: Any, connect_timeout: int, statement_timeout: int | None
) -> dict[str, Any]:
    """libpq connection parameters for the timeouts the URL does not set."""
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in query:
        connect_args["connect_timeout"] = connect_timeout
    options = query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options
    if statement_timeout and "statement_timeout" not in options:
        # The URL's own options are kept: connect_args replace them otherwise.
        connect_args["options"] = f"{options} -c statement_timeout={statement_timeout * 1000}"
        connect_args["options"] = connect_args["options"].strip()
    return connect_args


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_ignoring_duplicates(table: Any, dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL: one statement
    instead of a look-up and an insert where a row may already exist."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
