"""The call log's batching writer: many writes per commit, and one bad write
never takes the others down with it."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.call_log import CallEnd, CallLog, CallStart
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from tests.rig.postgres import fresh_database_url

pytestmark = pytest.mark.db


def start(uniqueid: str) -> CallStart:
    return CallStart(
        uniqueid,
        uniqueid,
        "bac-tu-liem",
        "PJSIP/pstn-1",
        "0912345678",
        "02437655555",
        datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
    )


async def test_concurrent_calls_are_all_written_and_closed(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    log = CallLog(sessions)
    try:
        ids = await asyncio.gather(*(log.call_started(start(f"u{n}")) for n in range(50)))
        assert len(set(ids)) == 50
        assert await log.call_started(start("u7")) == ids[7]  # re-entry: same row
        await asyncio.gather(
            *(
                log.call_routed(
                    f"u{n}",
                    keys="5,03",
                    last_step="route:dial",
                    area_code="x",
                    route_kind="dial",
                    route_target="t",
                )
                for n in range(50)
            ),
            *(
                log.call_ended(
                    CallEnd(
                        f"u{n}", "dial", "ANSWER", 1795420000.5, "chairman:x", "", datetime.now(UTC)
                    )
                )
                for n in range(50)
            ),
        )
    finally:
        log.close()
    with sessions() as session:
        calls = list(session.scalars(select(Call)))
    assert len(calls) == 50
    assert all(c.keys_pressed == "5,03" and c.outcome == "answered" for c in calls)


async def test_a_failing_write_is_isolated_from_its_batch(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    log = CallLog(sessions)

    def broken(connection: object) -> None:
        raise RuntimeError("disk full")

    gate = threading.Event()
    batches: list[int] = []
    writer = log._writer
    original = writer._write

    def counting(batch: list) -> None:  # type: ignore[type-arg]
        batches.append(len(batch))
        original(batch)

    writer._write = counting  # type: ignore[method-assign]
    try:
        started = threading.Event()

        def hold(connection: object) -> None:
            started.set()
            gate.wait(5)

        held = writer.submit(hold)  # the writer is busy …
        assert await asyncio.to_thread(started.wait, 5)
        good = writer.submit(CallLog._insert, start("good"))
        bad = writer.submit(broken)
        other = writer.submit(CallLog._insert, start("other"))
        gate.set()  # … so these three pile up into one batch
        results = await asyncio.gather(held, good, bad, other, return_exceptions=True)
    finally:
        log.close()
    assert batches[:2] == [1, 3]  # then each of the three again, alone
    assert isinstance(results[2], RuntimeError)
    assert isinstance(results[1], int) and isinstance(results[3], int)
    with sessions() as session:
        assert {c.uniqueid for c in session.scalars(select(Call))} == {"good", "other"}
