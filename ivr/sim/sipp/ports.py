"""UDP ports for SIPp instances: every one binds four or five (see the package
docstring), all chosen here so that many instances coexist on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

# SIPp ports come from a range below the kernel's ephemeral ports (32768+) and
# away from the RTP ranges the test Asterisk instances use (20000+).
_PORT_RANGE = (12000, 19990)
_handed_out: set[int] = set()


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    # SIPp binds its control socket on all interfaces; check that side too.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port(count: int = 1) -> int:
    """A UDP port on 127.0.0.1 such that ``port .. port + count - 1`` are all free.

    With ``count > 1`` the base is even (RTP convention).  Ports handed out by
    this process are not handed out again (until a SIPp wrapper releases them
    when its process has exited), so instances started back to back before
    they bind cannot collide.
    """
    low, high = _PORT_RANGE
    for _ in range(2000):
        base = random.randrange(low, high - count)
        if count > 1:
            base -= base % 2
        block = range(base, base + count)
        if any(p in _handed_out for p in block):
            continue
        if all(_udp_free(p) for p in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no block of {count} free UDP ports in {low}-{high}")


_MEDIA_BLOCK = 4


def _media_port() -> int:
    """SIPp binds -mp and -mp + 2; keep -mp + 1 and + 3 too for RTCP."""
    return free_port(_MEDIA_BLOCK)


def port_bound(port: int) -> bool:
    return not _udp_free(port)


@dataclass(frozen=True)
class SippPorts:
    """The UDP ports of one SIPp instance, reserved until :meth:`release`."""

    sip: int
    media: int
    control: int

    @classmethod
    def allocate(cls, sip: int | None = None) -> SippPorts:
        return cls(sip or free_port(), _media_port(), free_port())

    def release(self) -> None:
        _handed_out.difference_update(  # a fixed port was never handed out: no-op
            [self.sip, self.control, *range(self.media, self.media + _MEDIA_BLOCK)]
        )

    def args(self) -> list[str]:
        return [
            "-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local",
            "-p", str(self.sip), "-mp", str(self.media), "-cp", str(self.control),
            "-nostdin", "-aa",
        ]  # fmt: skip
