"""Run Alembic migrations programmatically (``hotline db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema at ``url`` up to ``revision``; a no-op when it is current.

    ``heads``: each feature area (calls, queue statistics, cases) keeps its own
    branch of migrations starting from 0001, so they can evolve independently."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def revision_autogenerate(url: str, message: str) -> None:
    """Developer helper: write a new migration from the models' differences."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
