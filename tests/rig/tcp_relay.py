"""A loopback TCP relay that can cut its links on demand: the soak puts it
between ``hotline serve`` and Asterisk's AMI port, so "the AMI link drops"
can be played without root (no iptables) and without Asterisk's help (the
CLI has no command that kicks a manager session).

    relay = TcpRelay(upstream_port=ami_port)
    await relay.start()                 # relay.port: give this to the client
    await relay.cut(seconds=5)          # every link reset, new ones refused 5 s
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

logger = logging.getLogger(__name__)


class TcpRelay:
    def __init__(self, upstream_port: int, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = port
        self.blocked = False
        self.cuts = 0
        self.accepted = 0
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._reset_all()
            await self._server.wait_closed()
            self._server = None

    @property
    def links(self) -> int:
        return len(self._links)

    def _reset_all(self) -> None:
        for client, upstream in list(self._links):
            for writer in (client, upstream):
                writer.transport.abort()  # RST-like: the peer sees the link die at once
        self._links.clear()

    async def cut(self, seconds: float) -> int:
        """Reset every link and refuse new ones for ``seconds``; how many were cut."""
        self.blocked = True
        cut = len(self._links)
        self._reset_all()
        self.cuts += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self.blocked = False
        return cut

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.transport.abort()  # upstream down (Asterisk restarting): as if refused
            return
        self.accepted += 1
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(link)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
