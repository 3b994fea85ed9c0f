"""The migrations build exactly the schema the models declare, on both databases.

Each feature's tests compare its own tables; this compares them all, so a model
changed without its migration (or the reverse) fails here whichever it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivr.db.engine import make_engine
from ivr.db.migrate import upgrade
from ivr.db.registry import Base
from tests.rig.postgres import fresh_database_url

pytestmark = pytest.mark.db

# PostgreSQL-only trigram indexes (ddl_if): Alembic's comparison on SQLite does
# not read that condition and reports them as missing there.
POSTGRESQL_ONLY = {"ix_cases_summary_trgm", "ix_cases_transcript_trgm"}


def test_the_migrated_schema_is_the_models_schema(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            dialect = connection.dialect.name
    finally:
        engine.dispose()
    if dialect != "postgresql":
        differences = [
            d for d in differences if not (d[0] == "add_index" and d[1].name in POSTGRESQL_ONLY)
        ]
    assert differences == []
