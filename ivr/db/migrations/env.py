"""Alembic environment: the URL comes from the Hotline config via ``hotline db upgrade``."""

from __future__ import annotations

from alembic import context

from ivr.db.engine import make_engine
from ivr.db.registry import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL given to the migration environment")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    # A migration may rewrite a whole table: no statement timeout, and it may
    # wait for the file lock longer than a call-log write would.
    engine = make_engine(url, busy_timeout=30, statement_timeout=None)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
