"""``hotline serve``: the long-running parts in one asyncio process."""

from __future__ import annotations

import asyncio
import logging

from ivr.agi.server import HotlineAgi
from ivr.call_log import CallLog
from ivr.config.schema import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade

logger = logging.getLogger(__name__)


class RunningServices:
    """What :func:`start_services` started; ``close`` stops it all."""

    def __init__(self, agi_server: asyncio.Server, call_log: CallLog) -> None:
        self.agi_server = agi_server
        self.call_log = call_log

    @property
    def agi_port(self) -> int:
        return int(self.agi_server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.agi_server.close()
        await self.agi_server.wait_closed()
        self.call_log.close()


async def start_services(
    config: HotlineConfig, agi_port: int | None = None, migrate: bool = True
) -> RunningServices:
    if migrate:
        await asyncio.to_thread(upgrade, config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    call_log = CallLog(sessions)
    agi = HotlineAgi(config, call_log)
    host = config.asterisk.agi.host
    port = config.asterisk.agi.port if agi_port is None else agi_port
    server = await asyncio.start_server(agi.application().handler, host, port)
    logger.info("FastAGI server listening on %s:%s", host, port)
    return RunningServices(server, call_log)


async def serve(config: HotlineConfig, stop: asyncio.Event, only: str | None = None) -> None:
    services = await start_services(config)
    try:
        await stop.wait()
    finally:
        await services.close()
