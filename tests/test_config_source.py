"""One composition root: one config source every part reads (a config applied
while running cannot miss a holder), one case service per process, and the
typed database executor every part runs its off-loop database work on."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.db.executor import DbExecutor
from ivr.service import RunningServices, start_services
from ivr.web.state import STATE, WEB_DB
from tests.rig.stack import EXAMPLE, free_tcp_port

# --- the config source ------------------------------------------------------------


def example(tmp_path: Path) -> HotlineConfig:
    """The example config with everything it writes under ``tmp_path``; nothing
    listens on its AMI port (the queue manager keeps trying, harmlessly)."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = f"sqlite:///{tmp_path / 'hotline.db'}"
    data["paths"] = {"prompts": str(tmp_path / "no-prompts"),
                     "recordings": str(tmp_path / "recordings"),
                     "routing_table": str(tmp_path / "routing.json"),
                     "config_history": str(tmp_path / "history")}  # fmt: skip
    data["asterisk"]["agi"]["port"] = free_tcp_port()
    data["asterisk"]["ami"]["port"] = free_tcp_port()
    data["web"] = {**data.get("web", {}), "port": 0, "bind": "127.0.0.1",
                   "secret_file": str(tmp_path / "web-secret")}  # fmt: skip
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


async def test_replace_swaps_then_tells_every_subscriber_even_after_one_fails(
    tmp_path: Path,
) -> None:
    old = example(tmp_path)
    new = old.model_copy()
    source = ConfigSource(old)
    seen: list[tuple[str, HotlineConfig, HotlineConfig]] = []

    async def first(config: HotlineConfig) -> None:
        seen.append(("first", config, source.current))
        raise RuntimeError("no AMI")

    async def second(config: HotlineConfig) -> None:
        seen.append(("second", config, source.current))

    async def gone(config: HotlineConfig) -> None:
        seen.append(("gone", config, source.current))

    source.subscribe(first, "Roster")
    source.subscribe(second)
    unsubscribe = source.subscribe(gone)
    unsubscribe()
    failures = await source.replace(new)
    assert source.current is new
    # Subscribers run after the swap: a part reading the source sees the new config.
    assert seen == [("first", new, new), ("second", new, new)]
    assert failures == ["Roster: no AMI"]
    assert ConfigSource.of(source) is source and ConfigSource.of(old).current is old


# --- the composition root -----------------------------------------------------------


@pytest.fixture
async def everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``hotline serve`` with every part, counting the case services it makes."""
    made: list[CaseService] = []
    real_init = CaseService.__init__

    def counting_init(self: CaseService, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(CaseService, "__init__", counting_init)
    services = await start_services(example(tmp_path), parts=frozenset({"agi", "ami", "web"}))
    try:
        yield services, made
    finally:
        await services.close()


async def test_one_case_service_per_process_shared_by_console_and_case_desk(
    everything: tuple[RunningServices, list[CaseService]],
) -> None:
    services, made = everything
    assert services.agi is not None and services.agi.case_desk is not None
    assert services.web_runner is not None
    state = services.web_runner.app[STATE]
    assert len(made) == 1
    assert state.cases is services.agi.case_desk.cases is made[0]


async def test_a_config_applied_is_seen_by_every_part(
    everything: tuple[RunningServices, list[CaseService]],
) -> None:
    services, _ = everything
    assert services.applier is not None and services.agi is not None
    assert services.queue_manager is not None and services.retention is not None
    assert services.web_runner is not None
    text = services.applier.current_text()
    assert "shortcut: '03'" in text  # as yaml.safe_dump wrote it
    applied = await services.applier.apply_text(text.replace("shortcut: '03'", "shortcut: '33'"))
    new = applied.config
    assert new.area("dong-ngac").shortcut == "33"
    agi = services.agi
    desk = agi.case_desk
    manager = services.queue_manager
    state = services.web_runner.app[STATE]
    assert desk is not None and manager.callbacks is not None
    agi._current()  # what a new call does first: the flow of the config current now
    # Every holder of the old code, each read as the part reads it.
    seen_by = {
        "applier": services.applier.config,
        "fastagi": agi.config,
        "fastagi flow": agi.flow.config,
        "case desk": desk.config,
        "case service": desk.cases._config,
        "queue manager": manager.config,
        "call backs": manager.callbacks.config,
        "console": state.config,
        "console cases": state.cases._config,
        "live hub": state.hub.config,
        "retention": services.retention.config,
    }
    assert {part: config is new for part, config in seen_by.items()} == dict.fromkeys(seen_by, True)
    # What the parts derive from the config follows it too.
    assert manager.callbacks.routing._config is new
    assert manager.agents == {agent.id: agent for agent in new.agents}


async def test_the_ivr_keeps_database_threads_of_its_own(
    everything: tuple[RunningServices, list[CaseService]],
) -> None:
    """A stalled database can hold the IVR's 4 threads, never the console's (and
    the other way round); a case lookup still gives up after 4 s."""
    services, _ = everything
    agi = services.agi
    assert agi is not None and agi.case_desk is not None and agi._case_records is not None
    executors = {
        "ivr": agi._db,
        "case desk": agi.case_desk._db,
        "console": WEB_DB,
        "queue manager": services.queue_manager.db if services.queue_manager else None,
        "retention": services.retention.db if services.retention else None,
    }
    assert len({id(e) for e in executors.values() if e is not None}) == 5
    assert (agi._db.name, agi._db.max_workers) == ("ivr-db", 4)
    assert agi._case_records._executor is agi._db and agi._case_records._timeout == 4.0


# --- the database executor ---------------------------------------------------------


async def test_db_executor_returns_the_result_on_its_own_named_threads() -> None:
    executor = DbExecutor("test-db", 2)
    try:

        def where(offset: int, *, scale: int) -> tuple[int, str]:
            return offset * scale, threading.current_thread().name

        value, thread = await executor.run(where, 21, scale=2)
        assert value == 42 and thread.startswith("test-db")
        assert thread != threading.current_thread().name  # never on the loop's thread
    finally:
        executor.close()


async def test_db_executor_raises_the_functions_exception_on_the_loop() -> None:
    executor = DbExecutor("test-db", 1)

    def broken() -> None:
        raise LookupError("database away")

    try:
        with pytest.raises(LookupError, match="database away"):
            await executor.run(broken)
        assert await executor.run(lambda: "still serving") == "still serving"
    finally:
        executor.close()


async def test_db_executor_runs_at_most_its_bound_at_once() -> None:
    executor = DbExecutor("bounded", 2)
    lock = threading.Lock()
    release = threading.Event()
    running = [0]
    most = [0]
    names: set[str] = set()

    def work() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            names.add(threading.current_thread().name)
        release.wait(10)
        with lock:
            running[0] -= 1

    try:
        jobs = [asyncio.ensure_future(executor.run(work)) for _ in range(5)]
        while running[0] < 2:  # both threads busy; the other three must wait
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # room for a third thread, were there one
        assert running[0] == 2
        release.set()
        await asyncio.gather(*jobs)
        assert most[0] == 2 and len(names) == 2
    finally:
        release.set()
        executor.close()


def test_db_executor_close_waits_for_the_work_under_way() -> None:
    executor = DbExecutor("closing", 1)
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def work() -> None:
        started.set()
        release.wait(10)
        order.append("work done")

    async def submit() -> asyncio.Future[None]:
        return asyncio.ensure_future(executor.run(work))

    loop = asyncio.new_event_loop()
    try:
        job = loop.run_until_complete(submit())
        loop.run_until_complete(asyncio.sleep(0))  # hands the work to the thread
        assert started.wait(10)

        def close() -> None:
            executor.close(wait=True)
            order.append("closed")

        closer = threading.Thread(target=close)
        closer.start()
        closer.join(0.2)  # room to return early, were close not waiting
        release.set()
        closer.join(10)
        loop.run_until_complete(job)
    finally:
        release.set()
        loop.close()
    assert order == ["work done", "closed"]
