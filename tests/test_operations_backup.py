"""docs/operations.md's PostgreSQL backup and restore, run as written.

The runbook's two commands (``pg_dump`` in the custom format, ``pg_restore``
into a fresh database in one transaction with no owner), against the rig's
PostgreSQL (tests/rig/postgres.py): what a deployment wrote comes back whole
(rows, the schema version, the sequences), and ``hotline db upgrade`` on the
restored copy has nothing left to do. The test reads the commands out of the
runbook, so a runbook edited into something that no longer restores fails here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from tests.rig.postgres import postgres_server
from tests.rig.stack import REPO

pytestmark = pytest.mark.integration

RUNBOOK = REPO / "docs" / "operations.md"


def runbook_command(program: str) -> list[str]:
    """The runbook's one command running ``program`` in its backup section, as
    words from ``program`` on (``sudo -u hotline`` before it dropped, a
    backslash continuation joined)."""
    section = RUNBOOK.read_text(encoding="utf-8").split("## Back up and restore", 1)[1]
    section = section.split("\n## ", 1)[0].replace("\\\n", " ")
    commands = [
        shlex.split(line) for line in section.splitlines() if line.startswith(("pg_", "sudo"))
    ]
    found = [words[words.index(program) :] for words in commands if program in words]
    assert len(found) == 1, f"docs/operations.md: expected one {program} command, found {found}"
    return found[0]


def _libpq(url: str) -> str:
    """SQLAlchemy's URL as libpq takes it (no +driver)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _substitute(words: list[str], values: dict[str, str]) -> list[str]:
    result = []
    for word in words:
        for name, value in values.items():
            word = word.replace(name, value)
        result.append(word)
    return result


def _call(number: int) -> Call:
    return Call(
        uniqueid=f"1900000000.{number}",
        linkedid=f"1900000000.{number}",
        hotline_id="bac-tu-liem",
        caller_number=f"+8491234{number:04d}",
        caller_raw=f"091234{number:04d}",
        dialed_number="02437655555",
        started_at=datetime(2026, 11, 30, 8, 0, number, tzinfo=UTC),
    )


def test_the_runbooks_dump_and_restore_bring_everything_back(tmp_path: Path) -> None:
    server = postgres_server()
    source = server.new_database()
    upgrade(source)
    sessions = make_session_factory(make_engine(source))
    with sessions() as session:
        session.add_all([_call(n) for n in range(1, 6)])
        session.commit()

    dump = tmp_path / "hotline.dump"
    pg_dump = runbook_command("pg_dump")
    assert "--format=custom" in pg_dump  # pg_restore reads only the archive formats
    subprocess.run(
        _substitute(pg_dump, {"$DATABASE_URL": _libpq(source), "$BACKUP": str(dump)}),
        check=True, capture_output=True, text=True,
        env={"PATH": f"{server.bin}:/usr/bin:/bin"},
    )  # fmt: skip
    assert dump.stat().st_size > 0

    restored = server.new_database()  # the runbook's createdb: an empty database
    pg_restore = runbook_command("pg_restore")
    done = subprocess.run(
        _substitute(pg_restore, {"$RESTORE_URL": _libpq(restored), "$BACKUP": str(dump),
                                 "--role=hotline": "--role=postgres"}),  # the rig's only role
        capture_output=True, text=True, check=False,
        env={"PATH": f"{server.bin}:/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    engine = make_engine(restored)
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 5
        assert session.scalars(select(Call.caller_raw).order_by(Call.id)).all() == [
            f"091234{n:04d}" for n in range(1, 6)
        ]
        versions = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    with make_engine(source).connect() as connection:
        assert versions == set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    upgrade(restored)  # "hotline db upgrade" after a restore: nothing to do, no error
    with make_session_factory(engine)() as session:
        session.add(_call(6))  # the id sequence came back too: no duplicate key
        session.commit()
        assert session.scalar(select(func.max(Call.id))) == 6


def test_the_restore_refuses_to_write_into_a_database_that_has_the_tables(tmp_path: Path) -> None:
    """--single-transaction --exit-on-error: a restore into the live database
    (not an empty one) fails and leaves it as it was, not half restored."""
    server = postgres_server()
    source = server.new_database()
    upgrade(source)
    dump = tmp_path / "hotline.dump"
    subprocess.run(
        _substitute(runbook_command("pg_dump"), {"$DATABASE_URL": _libpq(source),
                                                 "$BACKUP": str(dump)}),
        check=True, capture_output=True, env={"PATH": f"{server.bin}:/usr/bin:/bin"},
    )  # fmt: skip
    with make_session_factory(make_engine(source))() as session:
        session.add(_call(1))
        session.commit()
    done = subprocess.run(
        _substitute(runbook_command("pg_restore"), {"$RESTORE_URL": _libpq(source),
                                                    "$BACKUP": str(dump),
                                                    "--role=hotline": "--role=postgres"}),
        capture_output=True, text=True, check=False,
        env={"PATH": f"{server.bin}:/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    with make_session_factory(make_engine(source))() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 1
