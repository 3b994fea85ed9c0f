"""The soak's AMI cut: a loopback relay that forwards bytes both ways, and on
``cut`` resets every link and refuses new ones for a while, then accepts again
(tests/rig/tcp_relay.py; sockets only, no program started)."""

from __future__ import annotations

import asyncio

from tests.rig.tcp_relay import TcpRelay


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _dropped(reader: asyncio.StreamReader) -> bool:
    """The far end closed or reset the link (end of stream, or an error)."""
    try:
        return await asyncio.wait_for(reader.read(10), 5) == b""
    except ConnectionError:
        return True


async def _round_trip(
    port: int, payload: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 5) == payload
    return reader, writer


async def test_relay_forwards_then_cuts_and_refuses_then_accepts_again() -> None:
    upstream = await _echo_server()
    relay = TcpRelay(upstream_port=upstream.sockets[0].getsockname()[1])
    await relay.start()
    try:
        reader, writer = await _round_trip(relay.port, b"Action: Ping\r\n\r\n")
        assert relay.links == 1
        cutting = asyncio.ensure_future(relay.cut(1.0))
        await asyncio.sleep(0.1)
        # The live link is dead: the client reads end-of-stream (or a reset).
        assert await _dropped(reader)
        writer.close()
        # During the cut a new link is accepted and dropped at once.
        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await _dropped(late_reader)
        late_writer.close()
        assert await cutting == 1
        assert relay.cuts == 1
        # After the cut, links work again.
        _, again = await _round_trip(relay.port, b"Action: Login\r\n\r\n")
        again.close()
    finally:
        await relay.stop()
        upstream.close()
        await upstream.wait_closed()


async def test_relay_drops_the_client_when_upstream_is_down() -> None:
    upstream = await _echo_server()
    port = upstream.sockets[0].getsockname()[1]
    upstream.close()
    await upstream.wait_closed()  # Asterisk restarting: nothing listens upstream
    relay = TcpRelay(upstream_port=port)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await _dropped(reader)
        writer.close()
        assert relay.links == 0 and relay.accepted == 0
    finally:
        await relay.stop()
