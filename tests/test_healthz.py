"""/healthz (ivr/web/health.py): 200 only when the database answers, every AMI
link is up, FastAGI listens and the background loops run; 503 with the failing
checks otherwise, naming no host, URL or error text."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer

from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.web.health import DatabaseProbe, checks, worker_problem
from ivr.web.metrics import MetricsSources
from queue_manager.model import LiveModel
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE
from tests.test_metrics import FakeLink, FakeQueueManager


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


class StalledSessions:
    """A session factory whose statements hang until ``release`` (a database
    that stopped answering, without a database server)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self) -> Any:
        outer = self

        class Stalled:
            def __enter__(self) -> Stalled:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute(self, _statement: Any) -> None:
                outer.release.wait(10)

        return Stalled()


class Answering:
    def __call__(self) -> Any:
        return contextlib.nullcontext(type("S", (), {"execute": lambda self, _s: None})())


async def test_a_stalled_database_fails_the_check_without_piling_up_threads(
    config: HotlineConfig,
) -> None:
    stalled = StalledSessions()
    sources = MetricsSources(ConfigSource(config), sessions=stalled)  # type: ignore[arg-type]
    probe = DatabaseProbe(timeout=0.2)
    try:
        assert await probe.check(sources) == "no answer within 0.2 s"
        # Still stalled: the next check does not start a second statement.
        assert await probe.check(sources) == "no answer (the previous check is still waiting)"
    finally:
        stalled.release.set()
    await asyncio.sleep(0)
    for _ in range(100):  # the held statement finishes once the database is back
        if probe._running is not None and probe._running.done():
            break
        await asyncio.sleep(0.01)
    assert await probe.check(sources) is None
    sources.db.close()


def test_workers_that_ended_are_named_with_their_errors_class_only() -> None:
    class Loop:
        def __init__(self, task: Any) -> None:
            self._task = task

    class Done:
        def __init__(self, error: BaseException | None, cancelled: bool = False) -> None:
            self.error, self._cancelled = error, cancelled

        def done(self) -> bool:
            return True

        def cancelled(self) -> bool:
            return self._cancelled

        def exception(self) -> BaseException | None:
            return self.error

    class Running:
        def done(self) -> bool:
            return False

    assert worker_problem(Loop(Running())) is None
    assert worker_problem(Loop(None)) == "not running"
    assert worker_problem(Loop(Done(None, cancelled=True))) == "stopped"
    secret = "postgresql://hotline:pa55@db.internal/hotline"
    assert worker_problem(Loop(Done(RuntimeError(secret)))) == "died (RuntimeError)"


async def test_ami_link_down_fastagi_closed_and_dead_worker_fail_their_checks(
    config: HotlineConfig,
) -> None:
    sources = MetricsSources(ConfigSource(config), sessions=Answering())  # type: ignore[arg-type]
    manager = FakeQueueManager(
        {"a": LiveModel("a"), "b": LiveModel("b")},
        {"a": FakeLink(True, 1), "b": FakeLink(False, 2)},
    )
    sources.follow_queues(manager)
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    sources.agi_server = server

    async def dies() -> None:
        raise OSError("disk full at /var/lib/hotline")

    dead = asyncio.ensure_future(dies())

    class Loop:
        _task = dead

    await asyncio.sleep(0)
    sources.workers = {"retention": Loop()}
    probe = DatabaseProbe()
    found = await checks(sources, probe)
    assert found == {
        "database": None,
        "ami:a": None,
        "ami:b": "not connected",
        "fastagi": None,
        "worker:retention": "died (OSError)",
    }
    server.close()
    await server.wait_closed()
    assert (await checks(sources, probe))["fastagi"] == "not listening"
    sources.db.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _console_config(tmp_path: Path, url: str) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = url
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Any]:
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def client_for(tmp_path: Path) -> AsyncIterator[Any]:
    from ivr.web.app import create_app

    clients: list[TestClient] = []
    stack = contextlib.ExitStack()

    async def start(url: str, manager: Any) -> TestClient:
        config = _console_config(tmp_path, url)
        sessions = stack.enter_context(_engine(url))
        app = create_app(config, sessions, secret=b"s" * 32, queue_manager=manager)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield start
    finally:
        for client in clients:
            await client.close()
        stack.close()


@pytest.mark.db
async def test_healthz_is_ok_then_503_when_an_ami_link_goes_down(
    client_for: Any, tmp_path: Path
) -> None:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    links = {"owner-1": FakeLink(True, 1), "standby": FakeLink(True, 1)}
    manager = FakeQueueManager({node: LiveModel(node) for node in links}, links)
    client = await client_for(url, manager)
    answer = await client.get("/healthz")
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "ami:owner-1": {"ok": True},
                   "ami:standby": {"ok": True}},
    }  # fmt: skip
    links["owner-1"].connected.clear()
    answer = await client.get("/healthz")
    assert answer.status == 503
    body = await answer.json()
    assert body["status"] == "failing"
    assert body["checks"]["ami:owner-1"] == {"ok": False, "reason": "not connected"}
    assert body["checks"]["database"] == {"ok": True}


@pytest.mark.db
async def test_healthz_is_503_when_the_database_is_unreachable(client_for: Any) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://hotline:pa55word@127.0.0.1:{port}/hotline"
    manager = FakeQueueManager({"local": LiveModel("local")}, {"local": FakeLink(True, 1)})
    client = await client_for(url, manager)
    answer = await client.get("/healthz")
    assert answer.status == 503
    text = await answer.text()
    body = await answer.json()
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["reason"].startswith("unreachable (")
    assert body["checks"]["ami:local"] == {"ok": True}
    # Nothing of the URL reaches an unauthenticated reader.
    for secret in ("pa55word", "hotline:", str(port), "127.0.0.1"):
        assert secret not in text


@pytest.mark.integration
async def test_healthz_is_503_while_postgresql_is_stalled_then_ok_again(client_for: Any) -> None:
    """The rig's PostgreSQL stopped with SIGSTOP (tests/rig/stall.py), as on a
    stalled disk: the check answers within its bound instead of hanging."""
    from ivr.sim.polling import wait_for
    from tests.rig.postgres import postgres_server
    from tests.rig.stall import stalled_database

    url = postgres_server().new_database()
    upgrade(url)
    manager = FakeQueueManager({"local": LiveModel("local")}, {"local": FakeLink(True, 1)})
    client = await client_for(url, manager)
    assert (await client.get("/healthz")).status == 200  # the pool holds a connection now
    async with stalled_database(url):
        answer = await client.get("/healthz")
        assert answer.status == 503
        body = await answer.json()
        assert body["checks"]["database"] == {"ok": False, "reason": "no answer within 2 s"}
        assert body["checks"]["ami:local"] == {"ok": True}

    async def healthy() -> bool:
        return (await client.get("/healthz")).status == 200

    await wait_for(healthy, 15, "/healthz ok once the database is back", interval=0.2)
