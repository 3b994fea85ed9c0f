"""SIPp's RTP pcaps: reading their packets, their timing, and renumbered copies
of the DTMF ones so that the same key can be pressed twice."""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path
from typing import NamedTuple

PCAP_DIR = Path("/usr/share/sip-tester")
AUDIO_PCAP = PCAP_DIR / "g711a.pcap"
_PCAP_DIGIT_NAMES = {"*": "star", "#": "pound"}


class _Rtp(NamedTuple):
    at: float  # capture time
    payload_type: int
    rtp: int  # offset of the RTP header in the file


@cache
def _read_pcap_rtp(path: Path) -> tuple[_Rtp, ...]:
    """RTP packets of a classic pcap of UDP/IPv4 (Ethernet, Linux SLL or raw IP)."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 101: 0, 228: 0, 0: 4}.get(linktype)
    if l2 is None:
        raise ValueError(f"{path}: unsupported pcap link type {linktype}")
    packets: list[_Rtp] = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = offset + 16
        ip = frame + l2
        offset = frame + incl
        if ip + 20 > offset or data[ip] >> 4 != 4 or data[ip + 9] != 17:
            continue
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        if rtp + 12 > offset:
            continue
        at = sec + frac / (1e9 if nanos else 1e6)
        packets.append(_Rtp(at, data[rtp + 1] & 0x7F, rtp))
    if not packets:
        raise ValueError(f"{path}: no RTP packets")
    return tuple(packets)


def dtmf_end_offset_ms(digit: str) -> float:
    """When, from the start of a key's pcap, its first RFC 2833 end event is sent:
    the moment a PBX knows the key is complete (benchmarks measure from here)."""
    path = dtmf_pcap(digit)
    packets = _read_pcap_rtp(path)
    data = path.read_bytes()
    for packet in packets:
        event = packet.rtp + 12
        if event + 2 <= len(data) and data[event + 1] & 0x80:
            return (packet.at - packets[0].at) * 1000
    return float(pcap_duration_ms(path))


def pcap_duration_ms(path: Path) -> int:
    packets = _read_pcap_rtp(path)
    return round((packets[-1].at - packets[0].at) * 1000) + 20


def dtmf_pcap(digit: str) -> Path:
    """The SIPp pcap sending ``digit`` as an RFC 4733 event."""
    name = _PCAP_DIGIT_NAMES.get(digit, digit)
    path = PCAP_DIR / f"dtmf_2833_{name}.pcap"
    if len(digit) != 1 or not path.is_file():
        raise ValueError(f"no DTMF pcap for key {digit!r} (looked for {path})")
    return path


@cache
def dtmf_payload_type() -> int:
    """The RTP payload type of the events in SIPp's DTMF pcaps (101 in 3.6.1)."""
    types = {p.payload_type for p in _read_pcap_rtp(dtmf_pcap("1"))}
    if len(types) != 1:
        raise ValueError(f"DTMF pcap mixes payload types {types}")
    return types.pop()


def key_pcap(digit: str, press: int, seq: int, ssrc: int, out_dir: Path) -> tuple[Path, int]:
    """SIPp's pcap for ``digit`` renumbered as the ``press``-th key of a call.

    SIPp replays pcaps verbatim, so pressing 1 twice would send the same RTP
    sequence numbers and event timestamp twice, and the PBX would drop the
    second key as a duplicate of the first.  Each press gets its own copy with
    fresh sequence numbers (from ``seq``; the next free one is returned), its
    own event timestamp and one SSRC per call.
    """
    source = dtmf_pcap(digit)
    data = bytearray(source.read_bytes())
    packets = _read_pcap_rtp(source)
    seqs = [struct.unpack_from("!H", data, packet.rtp + 2)[0] for packet in packets]
    for packet, old in zip(packets, seqs, strict=True):
        new_seq = (seq + old - seqs[0]) & 0xFFFF
        struct.pack_into("!HII", data, packet.rtp + 2, new_seq, 8000 * (press + 1), ssrc)
        struct.pack_into("!H", data, packet.rtp - 2, 0)  # UDP checksum: none
    path = out_dir / f"key{press:03d}_{_PCAP_DIGIT_NAMES.get(digit, digit)}.pcap"
    path.write_bytes(bytes(data))
    return path, seq + (seqs[-1] - seqs[0]) + 1
