"""Who may open a FastAGI session, and panoramisk's application with a safe
request reader: the listening side of the FastAGI server, apart from the
handlers (:mod:`ivr.agi.server`)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Iterable
from typing import Any

from panoramisk import fast_agi

from ivr.agi.channel import AgiRequest
from ivr.config.schema import AsteriskSection

logger = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1")


class AllowedClients:
    """The peers that may open a FastAGI session: the Asterisk nodes.

    A FastAGI session can make our server play, record and route a call, and
    its answers go to whoever connected; only the PBX may connect."""

    def __init__(self, networks: Iterable[IpNetwork]) -> None:
        self.networks = tuple(networks)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AllowedClients:
        """Addresses, networks (CIDR) or host names; a name is resolved now
        (at start) and one that does not resolve is left out with an error."""
        networks: list[IpNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            try:
                infos = socket.getaddrinfo(entry, None, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                logger.error("FastAGI allow-list: cannot resolve %r (%s); left out", entry, exc)
                continue
            for info in infos:
                address = str(info[4][0]).split("%", 1)[0]
                networks.append(ipaddress.ip_network(address))
        return cls(networks)

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def allowed_client_entries(
    asterisk: AsteriskSection, node_hosts: Iterable[str] | None = None
) -> list[str]:
    """``asterisk.agi.allowed_clients`` or, when absent, every Asterisk node the
    queue manager knows plus loopback. ``node_hosts``: the nodes' addresses when
    they come from ``cluster.nodes`` (see ``HotlineConfig.agi_node_hosts``);
    default: ``asterisk.ami``'s nodes."""
    if asterisk.agi.allowed_clients is not None:
        return list(asterisk.agi.allowed_clients)
    if node_hosts is None:
        node_hosts = [node.host for node in asterisk.ami.node_list()]
    return [*dict.fromkeys(node_hosts), *LOOPBACK]


class FastAgiApplication(fast_agi.Application):
    """panoramisk's application with a safe request reader.

    panoramisk 1.4 reads the AGI environment with ``while b"\\n\\n" not in
    buffer: buffer += await reader.read(100)``, which spins at full CPU forever
    when a peer connects and closes without a request (a load balancer's or a
    monitor's TCP health check). Here a closed or silent connection just ends.
    """

    header_timeout = 10.0

    def __init__(self, allowed: AllowedClients | None = None) -> None:
        # Not panoramisk's __init__: it falls back to asyncio.get_event_loop(),
        # which raises outside a running loop from Python 3.14; it only stores
        # the loop, which nothing reads. These are the attributes it sets.
        dict.__init__(self)
        self.default_encoding = "utf-8"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._route: dict[str, Any] = {}
        self.allowed = allowed  # None: any peer (tests that bind loopback only)
        self.refused: Counter[str] = Counter()  # peer address → connections refused

    def _refuse(self, peer: object) -> bool:
        """Close at once a peer that is no Asterisk node: before reading a byte."""
        if self.allowed is None:
            return False
        host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
        if self.allowed.allows(str(host)):
            return False
        self.refused[str(host)] += 1
        if self.refused[str(host)] in (1, 10, 100) or self.refused[str(host)] % 1000 == 0:
            logger.warning(
                "FastAGI connection from %s refused: not an allowed Asterisk node "
                "(asterisk.agi.allowed_clients); %d refused from it so far",
                host,
                self.refused[str(host)],
            )
        return True

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refuse(writer.get_extra_info("peername")):
            writer.close()
            return
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.header_timeout)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            writer.close()
            return
        lines = raw[:-2].decode(self.default_encoding, errors="replace").split("\n")
        headers = dict(line.split(": ", 1) for line in lines if ": " in line)
        script = headers.get("agi_network_script")
        route = self._route.get(script) if script else None
        if route is None:
            logger.error("no FastAGI route for %r", script)
            writer.close()
            return
        request = AgiRequest(
            app=self,
            headers=headers,
            reader=reader,
            writer=writer,
            encoding=self.default_encoding,
        )
        try:
            await route(request)
        except Exception:
            logger.exception("FastAGI route %s failed", script)
        finally:
            writer.close()
