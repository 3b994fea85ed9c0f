"""``hotline serve``: the long-running parts in one asyncio process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ivr.agi.server import HotlineAgi
from ivr.call_log import CallLog
from ivr.cases.desk import CaseDesk
from ivr.config.schema import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import utc_now
from ivr.transcription.processes import start_worker_processes, stop_worker_processes
from queue_manager.manager import QueueManager

logger = logging.getLogger(__name__)


class RunningServices:
    """What :func:`start_services` started; ``close`` stops it all."""

    def __init__(
        self,
        agi_server: asyncio.Server | None,
        call_log: CallLog | None,
        queue_manager: QueueManager | None = None,
        web_runner: Any | None = None,
    ) -> None:
        self.agi_server = agi_server
        self.call_log = call_log
        self.queue_manager = queue_manager
        self.web_runner = web_runner  # aiohttp AppRunner of the web console

    @property
    def agi_port(self) -> int:
        assert self.agi_server is not None
        return int(self.agi_server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        if self.queue_manager is not None:
            await self.queue_manager.close()
        if self.agi_server is not None:
            self.agi_server.close()
            await self.agi_server.wait_closed()
        if self.call_log is not None:
            self.call_log.close()


async def start_services(
    config: HotlineConfig,
    agi_port: int | None = None,
    migrate: bool = True,
    parts: frozenset[str] = frozenset({"agi"}),
    clock: Callable[[], datetime] = utc_now,
) -> RunningServices:
    """Start ``parts`` ("agi", "ami": the queue manager, "web": the console) against
    one database."""
    if migrate:
        await asyncio.to_thread(upgrade, config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    queue_manager = None
    if "ami" in parts:
        queue_manager = QueueManager(config, sessions)
        await queue_manager.start()
    web_runner = None
    if "web" in parts and config.web.enabled:
        from ivr.web.app import start_web

        web_runner = await start_web(config, sessions, queue_manager=queue_manager)
    if "agi" not in parts:
        return RunningServices(None, None, queue_manager, web_runner)
    call_log = CallLog(sessions)
    agi = HotlineAgi(config, call_log, CaseDesk(sessions, config), clock=clock)
    host = config.asterisk.agi.host
    port = config.asterisk.agi.port if agi_port is None else agi_port
    server = await asyncio.start_server(agi.application().handler, host, port)
    logger.info("FastAGI server listening on %s:%s", host, port)
    return RunningServices(server, call_log, queue_manager, web_runner)


async def serve(config: HotlineConfig, stop: asyncio.Event, only: str | None = None) -> None:
    services = await start_services(
        config, parts=frozenset({only}) if only else frozenset({"agi", "ami", "web"})
    )
    # Transcription runs in separate processes (vosk holds a core per worker).
    workers = await start_worker_processes(
        config, config.transcription.serve_workers if only is None else 0
    )
    try:
        await stop.wait()
    finally:
        await stop_worker_processes(workers)
        await services.close()
