"""The call path never waits on storage, and storage never loses a record.

Unit tests (SQLite, no PBX): the route does not depend on the call-record write,
the call-log writer holds its writes through a database outage and writes them in
order, the FastAGI server only talks to the Asterisk nodes, and records a crash
left "in progress" are closed when the server starts.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ivr.agi.listener import AllowedClients, allowed_client_entries
from ivr.agi.server import HotlineAgi, start_agi_server
from ivr.call_log import CallEnd, CallLog, CallLogFull, CallStart
from ivr.config import HotlineConfig, load_config
from ivr.contracts import agi_scripts as scripts
from ivr.contracts import channel_variables as v
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from ivr.service import start_services
from tests.rig.postgres import backend, fresh_database_url
from tests.rig.stack import EXAMPLE, free_tcp_port, wait_for

WARD_CALLER = "0912345678"


def start(uniqueid: str, started_at: datetime | None = None) -> CallStart:
    return CallStart(uniqueid, uniqueid, "bac-tu-liem", "PJSIP/pstn-1", WARD_CALLER,
                     "02437655555", started_at or datetime.now(UTC))  # fmt: skip


def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    upgrade(url)
    return url


@contextmanager
def exclusive_lock(url: str) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the file: every writer waits."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def config_with(tmp_path: Path, **agi: Any) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = f"sqlite:///{tmp_path / 'hotline.db'}"
    data["paths"] = {"prompts": str(tmp_path / "no-prompts"),
                     "recordings": str(tmp_path / "recordings"),
                     "routing_table": str(tmp_path / "routing.json")}  # fmt: skip
    data["asterisk"]["agi"].update(agi)
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class FakeAgiRequest:
    """One AGI session: answers GET DATA with the caller's keys, records the rest."""

    def __init__(self, uniqueid: str, keys: list[str], script: str = scripts.ENTRY.name,
                 args: tuple[str, ...] = ("02437655555",)) -> None:  # fmt: skip
        self.headers = {"agi_uniqueid": uniqueid, "agi_callerid": WARD_CALLER,
                        "agi_channel": "PJSIP/pstn-00000001", "agi_network_script": script,
                        **{f"agi_arg_{n}": arg for n, arg in enumerate(args, 1)}}  # fmt: skip
        self.keys = list(keys)
        self.commands: list[str] = []

    async def send_command(self, command: str) -> dict[str, Any]:
        self.commands.append(command)
        if command.startswith("GET DATA"):
            if not self.keys:
                return {"error": "AGIResultHangup"}
            return {"result": (self.keys.pop(0), "")}
        if command.startswith("GET FULL VARIABLE"):
            return {"result": ("1", "(0)")}
        return {"result": ("0", "")}

    def route(self) -> str:
        """What the dialplan would branch on: the last HL_ROUTE set."""
        found = ""
        for command in self.commands:
            if command.startswith("EXEC MSet") and f"{v.ROUTE}=" in command:
                found = command.split(f"{v.ROUTE}=", 1)[1].split(",")[0].strip('"')
            elif command.startswith(f"SET VARIABLE {v.ROUTE} "):
                found = command.split(" ", 3)[3].strip('"')
        return found

    def targets(self) -> str:
        return next((c for c in self.commands if v.TARGETS in c), "")


async def test_a_failed_call_record_insert_does_not_change_the_route(tmp_path: Path) -> None:
    """Before: the entry handler awaited the insert, so a write error sent a
    ward caller to the failure branch (the operator) instead of the chairman."""
    config = config_with(tmp_path)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    with engine.begin() as connection:  # every insert into calls now fails
        connection.exec_driver_sql(
            "CREATE TRIGGER no_calls BEFORE INSERT ON calls "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error simulated'); END"
        )
    call_log = CallLog(make_session_factory(engine))
    agi = HotlineAgi(config, call_log)
    try:
        request = FakeAgiRequest("1795420947.1", ["5", "03"])
        await agi.entry(request)  # type: ignore[arg-type]
        await asyncio.to_thread(call_log.close)
    finally:
        await agi.close()
    assert request.route() == "dial"
    assert "0900000103" in request.targets()  # the chairman of ward 03 (Đông Ngạc)


async def test_the_route_is_handed_over_while_the_database_is_locked(tmp_path: Path) -> None:
    """The insert and the update wait in the writer; the caller does not."""
    config = config_with(tmp_path)
    upgrade(config.database_url)
    call_log = CallLog(make_session_factory(make_engine(config.database_url, busy_timeout=0.2)))
    agi = HotlineAgi(config, call_log)
    try:
        with exclusive_lock(config.database_url):
            request = FakeAgiRequest("1795420947.2", ["5", "03"])
            # A deadline only so that the old behaviour fails instead of hanging.
            await asyncio.wait_for(agi.entry(request), 20)  # type: ignore[arg-type]
            assert request.route() == "dial"
            assert call_log.pending >= 2  # insert and update still held
        assert await asyncio.to_thread(call_log.close)
    finally:
        await agi.close()
    with make_session_factory(make_engine(config.database_url))() as session:
        call = session.scalars(select(Call)).one()
    assert call.keys_pressed == "5,03" and call.area_code == "dong-ngac"


async def test_writer_holds_writes_through_an_outage_and_keeps_their_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = sqlite_url(tmp_path)
    sessions = make_session_factory(make_engine(url, busy_timeout=0.1))
    log = CallLog(sessions)
    log._writer._retry_pause = 0.05  # short pauses keep the test quick
    futures: list[asyncio.Future[Any]] = []
    with caplog.at_level(logging.WARNING, logger="ivr.call_log"):
        with exclusive_lock(url):
            for n in range(20):
                uniqueid = f"u{n}"
                futures.append(log.call_started(start(uniqueid)))
                futures.append(log.call_routed(uniqueid, keys="5,03", last_step="route:dial",
                                               area_code="dong-ngac", route_kind="dial",
                                               route_target="chairman"))  # fmt: skip
                futures.append(log.call_ended(CallEnd(uniqueid, "dial", "ANSWER", None,
                                                      "chairman:dong-ngac", "",
                                                      datetime.now(UTC))))  # fmt: skip
            # The writer has met the lock …
            await wait_for(lambda: log._writer.outages > 0, 20, "the writer to meet the lock")
            await asyncio.sleep(0.5)  # … and retried a few times under it
            assert log.pending == 60
        await asyncio.gather(*futures)  # nothing failed, nothing dropped
        assert await asyncio.to_thread(log.close)
    with sessions() as session:
        calls = list(session.scalars(select(Call).order_by(Call.id)))
    assert [c.uniqueid for c in calls] == [f"u{n}" for n in range(20)]
    # Each update found its row: the insert was written first.
    assert all(c.keys_pressed == "5,03" and c.outcome == "answered" for c in calls)
    unavailable = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    back = [r for r in caplog.records if "database back" in r.getMessage()]
    assert len(unavailable) == 1 and len(back) == 1  # once per outage, not per retry


async def test_close_waits_for_the_database_and_writes_everything(tmp_path: Path) -> None:
    """SIGTERM during an outage: close() keeps retrying, so the records survive."""
    url = sqlite_url(tmp_path)
    sessions = make_session_factory(make_engine(url, busy_timeout=0.1))
    log = CallLog(sessions)
    log._writer._retry_pause = 0.05
    lock = exclusive_lock(url)
    lock.__enter__()
    try:
        for n in range(5):
            log.call_started(start(f"s{n}"))
        await wait_for(lambda: log._writer.outages > 0, 20, "the writer to meet the lock")
        closing = asyncio.ensure_future(asyncio.to_thread(log.close, 30.0))
        await asyncio.sleep(0.3)
        assert not closing.done()  # still waiting for the database
    finally:
        lock.__exit__(None, None, None)
    assert await closing
    with sessions() as session:
        assert len(list(session.scalars(select(Call)))) == 5


async def test_backlog_is_bounded_with_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = sqlite_url(tmp_path)
    log = CallLog(make_session_factory(make_engine(url, busy_timeout=0.1)), max_pending=3)
    log._writer._retry_pause = 0.05
    with caplog.at_level(logging.ERROR, logger="ivr.call_log"), exclusive_lock(url):
        held = [log.call_started(start(f"b{n}")) for n in range(3)]
        refused = log.call_started(start("b3"))
        with pytest.raises(CallLogFull):
            await refused
        assert any("backlog is full" in r.getMessage() for r in caplog.records)
    await asyncio.gather(*held)
    assert await asyncio.to_thread(log.close)


def test_allow_list_takes_addresses_networks_and_names() -> None:
    allowed = AllowedClients.from_entries(["192.0.2.7", "10.1.0.0/16", "localhost"])
    assert allowed.allows("192.0.2.7") and allowed.allows("10.1.200.3")
    assert allowed.allows("127.0.0.1") and allowed.allows("::ffff:192.0.2.7")
    assert not allowed.allows("192.0.2.8") and not allowed.allows("10.2.0.1")
    assert not allowed.allows("not-an-address")


def test_default_allow_list_is_the_asterisk_nodes_and_loopback(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    assert config.asterisk.agi.bind == "127.0.0.1"
    entries = allowed_client_entries(config.asterisk)
    assert all(n.host in entries for n in config.asterisk.ami.node_list())
    assert "127.0.0.0/8" in entries and "::1" in entries
    explicit = config_with(tmp_path, allowed_clients=["192.0.2.7"])
    assert allowed_client_entries(explicit.asterisk) == ["192.0.2.7"]


class RecordingCallLog:
    """Stands in for the call log: remembers the call ends it was given."""

    def __init__(self) -> None:
        self.ended: list[CallEnd] = []

    def call_ended(self, end: CallEnd) -> None:
        self.ended.append(end)


async def _hangup_request(port: int, uniqueid: str) -> bytes:
    """Send the hangup handler's AGI request; what the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = (f"agi_network: yes\nagi_network_script: {scripts.CALL_ENDED.name}\n"
           f"agi_uniqueid: {uniqueid}\n"
           f"agi_arg_1: {uniqueid}\nagi_arg_2: dial\nagi_arg_4: NOANSWER\n\n")  # fmt: skip
    writer.write(env.encode())
    await writer.drain()
    try:
        answer = await reader.read()  # until the server closes the connection
    except ConnectionResetError:  # closed with our request unread: a reset
        answer = b""
    writer.close()
    return answer


async def test_fastagi_refuses_a_peer_that_is_not_an_asterisk_node(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    call_log = RecordingCallLog()
    agi = HotlineAgi(config, call_log)  # type: ignore[arg-type]
    port = free_tcp_port()
    refusing = AllowedClients.from_entries(["192.0.2.7"])  # some other Asterisk node
    server = await start_agi_server(agi, "127.0.0.1", port, refusing)
    try:
        assert await _hangup_request(port, "1795420947.9") == b""
        assert call_log.ended == []  # the request was never read
    finally:
        server.close()
        await server.wait_closed()
    port = free_tcp_port()
    loopback = AllowedClients.from_entries(["127.0.0.1"])
    server = await start_agi_server(agi, "127.0.0.1", port, loopback)
    try:
        await _hangup_request(port, "1795420947.10")
        assert [end.uniqueid for end in call_log.ended] == ["1795420947.10"]
    finally:
        server.close()
        await server.wait_closed()
        await agi.close()


async def test_fastagi_counts_and_logs_refused_peers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_with(tmp_path)
    agi = HotlineAgi(config, RecordingCallLog())  # type: ignore[arg-type]
    app = agi.application(AllowedClients.from_entries(["192.0.2.7"]))
    port = free_tcp_port()
    server = await asyncio.start_server(app.handler, "127.0.0.1", port)
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.agi.server"):
            for _ in range(2):
                await _hangup_request(port, "x")
        assert app.refused["127.0.0.1"] == 2
        assert sum("refused" in r.getMessage() for r in caplog.records) == 1  # not per attempt
    finally:
        server.close()
        await server.wait_closed()
        await agi.close()


async def test_fastagi_binds_loopback_even_when_asterisk_reaches_it_by_another_name(
    tmp_path: Path,
) -> None:
    """``host`` is what the dialplan dials; the listener stays on ``bind``."""
    config = config_with(tmp_path, host="192.0.2.10", port=free_tcp_port())
    services = await start_services(config)
    try:
        assert services.agi_server is not None
        assert services.agi_server.sockets[0].getsockname()[0] == "127.0.0.1"
    finally:
        await services.close()


async def test_records_left_in_progress_by_a_crash_are_closed_at_start(tmp_path: Path) -> None:
    config = config_with(tmp_path, port=free_tcp_port(), max_call_seconds=3600)
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    now = datetime.now(UTC)
    crashed = now - timedelta(hours=3)
    with sessions.begin() as session:
        for uniqueid, started, outcome, answered in [
            ("crashed", crashed, "in_progress", None),
            ("crashed-answered", crashed, "in_progress", crashed + timedelta(seconds=20)),
            ("recent", now - timedelta(minutes=5), "in_progress", None),  # may be up still
            ("finished", crashed, "answered", crashed + timedelta(seconds=5)),
        ]:
            session.add(Call(uniqueid=uniqueid, linkedid=uniqueid, hotline_id="bac-tu-liem",
                             started_at=started, answered_at=answered, outcome=outcome,
                             ended_at=crashed + timedelta(minutes=1) if outcome == "answered"
                             else None))  # fmt: skip
    services = await start_services(config)
    calls: dict[str, Call] = {}
    try:

        def closed() -> dict[str, Call]:
            with sessions() as session:
                calls = {c.uniqueid: c for c in session.scalars(select(Call))}
            return calls if calls["crashed"].outcome != "in_progress" else {}

        calls = await wait_for(closed, 10, "the stale records to be closed")
    finally:
        await services.close()
    assert calls["crashed"].outcome == "interrupted"
    assert calls["crashed"].ended_at == crashed  # last known moment: its start
    assert calls["crashed-answered"].ended_at == crashed + timedelta(seconds=20)
    assert calls["recent"].outcome == "in_progress" and calls["recent"].ended_at is None
    assert calls["finished"].outcome == "answered"


@pytest.mark.db
def test_database_timeouts_bound_a_stalled_database(tmp_path: Path) -> None:
    """Before: SQLite waited 30 s for a lock; PostgreSQL had no connect or
    statement timeout, so a stalled server held a thread forever."""
    url = fresh_database_url(tmp_path)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if backend() == "postgresql":
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "10s"
                dsn = connection.connection.dbapi_connection.info.dsn  # type: ignore[union-attr]
                assert "connect_timeout=5" in dsn
            else:
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()
    if backend() == "postgresql":  # the URL's own setting wins
        tuned = make_engine(url + "?options=-c%20statement_timeout%3D2500")
        try:
            with tuned.connect() as connection:
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
        finally:
            tuned.dispose()
