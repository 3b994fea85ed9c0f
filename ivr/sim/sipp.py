"""SIPp phones for the end-to-end rig: a caller that dials, presses keys and hangs
up, and answerers that play the agents', chairmen's and carrier's phones.

Each SIPp process runs a scenario generated here (XML written next to its logs)
and reports what happened through ``<log>`` actions: one ``HL|``-prefixed line
per event, stamped by SIPp itself with ``<gettimeofday>`` when it handled the
message, so ring and key times are accurate to about a millisecond however
slowly Python polls the file (SIPp flushes each line).

SIPp 3.6.1 (Debian ``sip-tester``) facts this relies on:

- Every instance binds its SIP port (``-p``), its media port and media port + 2
  (``-mp``) and a UDP control port (``-cp``, default 8888 on all interfaces):
  all are chosen here, from 12000-19999, so that many instances coexist.
- A message arriving while the scenario sits in ``<pause>`` aborts the call.
  So every wait is a ``<recv>`` of BYE (after an optional re-INVITE) with
  ``timeout``/``ontimeout``: the far end may hang up or refresh the session in
  the middle of the keys.  Each timeout is noted in the error log (harmless).
- ``play_pcap_audio`` plays in a thread and a new play cancels the previous one,
  so keys are spaced by at least a key's pcap (140 ms).  The pcaps are replayed
  verbatim: pressing ``1`` twice would repeat sequence numbers and the event
  timestamp and the PBX would drop the second key, so each press plays a
  renumbered copy (see :func:`_key_pcap`).  They carry payload type 101, which
  the SDP offers as telephone-event.
- ``<assignstr>`` does not expand ``[last_Via:]``-style keywords; ``<ereg>`` on
  the header does.  Actions on a ``<send>`` run a little after the send.
  Unused variables make SIPp refuse a scenario unless listed in ``<Reference>``.
- ``-oocsf`` is refused in server mode; ``-aa`` answers out-of-dialog OPTIONS
  (a PBX's qualify) and in-dialog INFO/UPDATE/NOTIFY instead.
- ``-r 1 -m 1`` waits a second before the first call; a high rate does not.

Checked against a private Asterisk 22.10.1: ``asterisk -C <file> -f -n`` with
``[directories]`` in a temp dir, ``modules.conf`` ``autoload=yes``, ``rtp.conf``
20000-30000, a PJSIP UDP transport on 127.0.0.1, an endpoint ``caller``
(``type=identify``, ``match=127.0.0.1``, ``dtmf_mode=rfc4733``, alaw/ulaw) and
endpoints with a static AOR contact at an answerer.  ``Answer(); Read(d,,1,,,10);
Dial(PJSIP/chair,10)`` got the key and rang the chair ~143 ms after the key
started (Asterisk acts on the end of the 140 ms event); ``Read`` of ``1155`` got
all four keys; a ``no_answer`` phone gave DIALSTATUS=NOANSWER via CANCEL, a
``busy`` one BUSY, passed on to the caller as 486 when not yet answered.
``Answer()`` sends no 180.  With ``send_pai=yes`` Asterisk re-INVITEs the
caller on bridging (connected line), with ``direct_media=yes`` twice more;
both are answered, but ``direct_media=no`` is the sensible setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import random
import re
import signal
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple, Self
from xml.sax.saxutils import quoteattr

PCAP_DIR = Path("/usr/share/sip-tester")
AUDIO_PCAP = PCAP_DIR / "g711a.pcap"
_PCAP_DIGIT_NAMES = {"*": "star", "#": "pound"}

# SIPp ports come from a range below the kernel's ephemeral ports (32768+) and
# away from the RTP ranges the test Asterisk instances use (20000+).
_PORT_RANGE = (12000, 19990)
_handed_out: set[int] = set()

HangupBy = Literal["caller", "remote"]
AnswerMode = Literal["answer", "no_answer", "busy"]

# Final responses to an INVITE the caller recognises (SIPp has no wildcard).
_FINAL_FAILURES = (
    300, 301, 302, 305, 380,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413, 414, 415, 416, 420, 421, 423,
    480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493,
    500, 501, 502, 503, 504, 505, 513, 580,
    600, 603, 604, 606,
)  # fmt: skip
_PROVISIONAL = (100, 180, 181, 182, 183, 199)
_SAFE_USER = re.compile(r"[0-9A-Za-z+*._-]+")


# --------------------------------------------------------------------- ports


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


def _port_bound(port: int) -> bool:
    return not _udp_free(port)


# --------------------------------------------------------------------- pcaps


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


def _key_pcap(digit: str, press: int, seq: int, ssrc: int, out_dir: Path) -> tuple[Path, int]:
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


# --------------------------------------------------------------------- steps


@dataclass(frozen=True)
class CallStep:
    """One thing the caller does once the call is answered."""


@dataclass(frozen=True)
class Pause(CallStep):
    ms: int


@dataclass(frozen=True)
class Dtmf(CallStep):
    """Press ``digits`` one by one, ``gap_ms`` from the start of one key to the next."""

    digits: str
    gap_ms: int = 300

    def __post_init__(self) -> None:
        for digit in self.digits:
            dtmf_pcap(digit)
        longest = max(pcap_duration_ms(dtmf_pcap(d)) for d in self.digits or "1")
        if self.gap_ms < longest:
            raise ValueError(f"gap_ms={self.gap_ms} is shorter than a key ({longest} ms)")


@dataclass(frozen=True)
class PlayAudio(CallStep):
    """Play an RTP pcap to the far end and wait until it has been played."""

    pcap_path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "pcap_path", Path(self.pcap_path))
        pcap_duration_ms(self.pcap_path)


def _steps_ms(steps: Sequence[CallStep]) -> int:
    total = 0
    for step in steps:
        if isinstance(step, Pause):
            total += step.ms
        elif isinstance(step, Dtmf):
            total += step.gap_ms * len(step.digits)
        elif isinstance(step, PlayAudio):
            total += pcap_duration_ms(step.pcap_path)
    return total


# --------------------------------------------------------------------- events


class KeyPress(NamedTuple):
    digit: str
    at: float  # epoch seconds, just before SIPp started sending the key


@dataclass
class _Event:
    kind: str
    call_id: str
    call_number: int
    at: float
    extra: str


_EVENT_MARK = "HL|"


def _log(kind: str, extra: str = "") -> str:
    """Actions logging one event line, stamped by SIPp's clock."""
    message = f"{_EVENT_MARK}{kind}|[call_id]|[call_number]|[$ts]|[$tus]|{extra}"
    return f'<gettimeofday assign_to="ts,tus"/><log message={quoteattr(message)}/>'


def _parse_events(text: str) -> list[_Event]:
    events = []
    for line in text.splitlines():
        if not line.startswith(_EVENT_MARK):
            continue
        parts = line[len(_EVENT_MARK) :].split("|", 5)
        if len(parts) != 6:
            continue
        kind, call_id, number, sec, usec, extra = parts
        try:
            at = float(sec) + float(usec) / 1e6
            events.append(_Event(kind, call_id, int(number), at, extra))
        except ValueError:
            continue
    return events


class _LogTail:
    """Incremental reader of a SIPp log file (SIPp flushes each ``<log>`` line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.events: list[_Event] = []

    def poll(self) -> list[_Event]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        complete, _, self._partial = data.rpartition(b"\n")
        new = _parse_events(complete.decode("utf-8", "replace"))
        self.events.extend(new)
        return new


def _tail(path: Path, limit: int = 20000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text if len(text) <= limit else "…" + text[-limit:]


def _logs_text(files: Iterable[Path], limit: int = 20000) -> str:
    parts = []
    for path in files:
        text = _tail(path, limit).strip()
        if text:
            parts.append(f"==== {path.name} ====\n{text}")
    return "\n".join(parts)


# --------------------------------------------------------------------- XML


def _msg(head: str, body: str | None = None) -> str:
    """A SIP message in CDATA: header lines stripped (empty ones dropped), then a
    blank line and the body.  SIPp fills ``[len]`` from the body."""
    lines = [line.strip() for line in head.strip().splitlines() if line.strip()]
    if body is not None:
        lines += ["Content-Type: application/sdp", "Content-Length: [len]", ""]
        lines += [line.strip() for line in body.strip().splitlines()]
    else:
        lines += ["Content-Length: 0", ""]
    return "<![CDATA[\n" + "\n".join(lines) + "\n\n]]>"


def _sdp(media_port: str) -> str:
    """Offer/answer PCMA, PCMU and telephone-event with the pcaps' payload type."""
    pt = dtmf_payload_type()
    return "\n".join(
        [
            "v=0",
            "o=hotline 1 1 IN IP[local_ip_type] [local_ip]",
            "s=-",
            "c=IN IP[media_ip_type] [media_ip]",
            "t=0 0",
            f"m=audio {media_port} RTP/AVP 8 0 {pt}",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            f"a=rtpmap:{pt} telephone-event/8000",
            f"a=fmtp:{pt} 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ]
    )


_UAS_CONTACT = "<sip:[local_ip]:[local_port];transport=[transport]>"


def _reply(
    status: str, *, to_tag: bool = False, sdp: str | None = None, contact: str = _UAS_CONTACT
) -> str:
    """A response to the last received request, built from its headers."""
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if to_tag else "[last_To:]"
    return _msg(
        f"""
        SIP/2.0 {status}
        [last_Via:]
        [last_From:]
        {to}
        [last_Call-ID:]
        [last_CSeq:]
        Contact: {contact}
        """,
        sdp,
    )


class _Scenario:
    """Builds a SIPp scenario whose waits survive a BYE or re-INVITE from the far end."""

    def __init__(self, name: str, sdp: str, contact: str = _UAS_CONTACT) -> None:
        self.name = name
        self.sdp = sdp
        self.contact = contact  # ours, repeated in answers to re-INVITEs
        self.parts: list[str] = []
        self._labels = itertools.count()
        self.references: set[str] = {"ts", "tus"}

    def add(self, xml: str) -> None:
        self.parts.append(xml)

    def label(self, name: str) -> None:
        self.add(f'<label id="{name}"/>')

    def nop(self, actions: str = "", next_label: str | None = None) -> None:
        nxt = f' next="{next_label}"' if next_label else ""
        body = f"<action>{actions}</action>" if actions else ""
        self.add(f"<nop{nxt}>{body}</nop>")

    def new_label(self, stem: str) -> str:
        return f"{stem}{next(self._labels)}"

    def wait(self, ms: int | None, on_timeout: str | None = None, *, on_bye: str) -> None:
        """Wait ``ms`` (None: forever) for time to pass, answering re-INVITEs and
        jumping to ``on_bye`` after logging a BYE from the far end."""
        top = self.new_label("wait")
        reinvite = self.new_label("reinvite")
        done = on_timeout or self.new_label("waited")
        timeout = f' timeout="{max(ms, 1)}" ontimeout="{done}"' if ms is not None else ""
        self.label(top)
        self.add(f'<recv request="INVITE" optional="true"{timeout} next="{reinvite}"/>')
        self.add(f'<recv request="BYE" next="{on_bye}"><action>{_log("BYE_RX")}</action></recv>')
        self.label(reinvite)
        self.add(f"<send>{_reply('200 OK', sdp=self.sdp, contact=self.contact)}</send>")
        self.add(f'<recv request="ACK" next="{top}"/>')
        if on_timeout is None:
            self.label(done)

    def render(self) -> str:
        refs = f'<Reference variables="{",".join(sorted(self.references))}"/>'
        body = "\n".join(self.parts)
        return (
            '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
            f"<scenario name={quoteattr(self.name)}>\n{body}\n{refs}\n</scenario>\n"
        )


def _play(pcap: Path) -> str:
    return f"<exec play_pcap_audio={quoteattr(str(pcap))}/>"


def _caller_scenario(
    *,
    from_user: str | None,
    steps: Sequence[CallStep],
    hangup_after_ms: int | None,
    bye_wait_ms: int,
    ring_timeout_ms: int,
    pcap_dir: Path,
) -> str:
    presses = itertools.count()
    ssrc, seq = random.getrandbits(32), random.randrange(1000, 30000)
    if from_user is None:
        from_hdr = '"Anonymous" <sip:anonymous@anonymous.invalid>'
        contact = "<sip:[local_ip]:[local_port]>"
        privacy = "Privacy: id"
    else:
        from_hdr = f'"{from_user}" <sip:{from_user}@[local_ip]:[local_port]>'
        contact = f"<sip:{from_user}@[local_ip]:[local_port]>"
        privacy = ""
    from_hdr += ";tag=[pid]SIPpTag00[call_number]"
    ruri = "sip:[service]@[remote_ip]:[remote_port]"
    sdp = _sdp("[media_port]")
    sc = _Scenario("hotline caller", sdp, contact)
    # Actions on a <send> run a little after it is sent: log first.
    sc.nop(_log("INVITE_TX"))
    sc.add(
        '<send retrans="500" start_rtd="true">'
        + _msg(
            f"""
            INVITE {ruri} SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>
            Call-ID: [call_id]
            CSeq: 1 INVITE
            Contact: {contact}
            Max-Forwards: 70
            {privacy}
            Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY
            User-Agent: hotline-test-sipp
            """,
            sdp,
        )
        + "</send>"
    )
    # Ringing: provisional responses loop back here, restarting the ring timer.
    sc.label("ring")
    for i, code in enumerate(_PROVISIONAL):
        timeout = f' timeout="{ring_timeout_ms}" ontimeout="cancel"' if i == 0 else ""
        log = _log("RINGING", str(code)) if code in (180, 183) else ""
        action = f"<action>{log}</action>" if log else ""
        sc.add(f'<recv response="{code}" optional="true" next="ring"{timeout}>{action}</recv>')
    for code in _FINAL_FAILURES:
        sc.add(
            f'<recv response="{code}" optional="true" next="rejected">'
            f"<action>{_log('FINAL', str(code))}</action></recv>"
        )
    sc.add(
        '<recv response="200" rtd="true" rrs="true">'
        f"<action>{_log('FINAL', '200')}{_log('ANSWERED')}</action></recv>"
    )
    sc.add(
        "<send>"
        + _msg(
            f"""
            ACK [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 1 ACK
            [routes]
            Contact: {contact}
            Max-Forwards: 70
            """
        )
        + "</send>"
    )

    for step in steps:
        if isinstance(step, Pause):
            sc.wait(step.ms, on_bye="remote_bye")
        elif isinstance(step, Dtmf):
            for digit in step.digits:
                pcap, seq = _key_pcap(digit, next(presses), seq, ssrc, pcap_dir)
                sc.nop(_log("DTMF", digit) + _play(pcap))
                sc.wait(step.gap_ms, on_bye="remote_bye")
        elif isinstance(step, PlayAudio):
            name = re.sub(r"[^\w.-]", "_", step.pcap_path.name)
            sc.nop(_log("PLAY", name) + _play(step.pcap_path))
            sc.wait(pcap_duration_ms(step.pcap_path), on_bye="remote_bye")
        else:
            raise TypeError(f"unknown call step {step!r}")

    if hangup_after_ms is None:
        sc.wait(bye_wait_ms, "bye_wait_over", on_bye="remote_bye")
        sc.label("bye_wait_over")
        sc.nop(_log("BYE_WAIT_TIMEOUT"), "local_bye")
    else:
        sc.wait(hangup_after_ms, "local_bye", on_bye="remote_bye")

    sc.label("local_bye")
    sc.add(
        '<send retrans="500">'
        + _msg(
            f"""
            BYE [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 2 BYE
            [routes]
            Contact: {contact}
            Max-Forwards: 70
            """
        )
        + f"<action>{_log('BYE_TX')}</action></send>"
    )
    sc.add('<recv response="481" optional="true" next="end"/>')
    sc.add('<recv response="200" crlf="true" next="end"/>')

    sc.label("remote_bye")
    sc.add(f'<send next="end">{_reply("200 OK", contact=contact)}</send>')

    sc.label("rejected")
    sc.add(f'<send next="end">{_ack_non_2xx(ruri, from_hdr)}</send>')

    sc.label("cancel")
    sc.add(
        "<send>"
        + _msg(
            f"""
            CANCEL {ruri} SIP/2.0
            [last_Via:]
            From: {from_hdr}
            To: <{ruri}>
            Call-ID: [call_id]
            CSeq: 1 CANCEL
            Max-Forwards: 70
            """
        )
        + f"<action>{_log('CANCEL_TX')}</action></send>"
    )
    sc.label("cancelling")
    sc.add('<recv response="200" optional="true" next="cancelling"/>')
    sc.add(
        '<recv response="487" timeout="5000" ontimeout="end">'
        f"<action>{_log('FINAL', '487')}</action></recv>"
    )
    sc.add(f"<send>{_ack_non_2xx(ruri, from_hdr)}</send>")

    sc.label("end")
    sc.nop(_log("END"))
    return sc.render()


def _ack_non_2xx(ruri: str, from_hdr: str) -> str:
    """ACK of a failure response: same branch as the INVITE, taken from its Via."""
    return _msg(
        f"""
        ACK {ruri} SIP/2.0
        [last_Via:]
        From: {from_hdr}
        [last_To:]
        Call-ID: [call_id]
        CSeq: 1 ACK
        Max-Forwards: 70
        """
    )


def _answerer_scenario(
    mode: AnswerMode,
    hold_ms: int,
    ring_ms: int,
    sdp_media_port: str,
    play_audio: Path | None,
) -> str:
    sdp = _sdp(sdp_media_port)
    sc = _Scenario(f"hotline answerer ({mode})", sdp)
    sc.references |= {"whole", "remote", "local", "invite_via", "invite_cseq"}
    # Keep what later requests (CANCEL, our BYE) need from the INVITE.
    sc.add(
        '<recv request="INVITE" crlf="true" rrs="true"><action>'
        '<ereg regexp="sip:([^@;&gt;]*)@" search_in="hdr" header="From:"'
        ' assign_to="whole,from_user"/>'
        '<ereg regexp="^INVITE sips?:([^@;&gt; ]*)@" search_in="msg" assign_to="whole,dialed"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="From:" assign_to="whole,remote"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="To:" assign_to="whole,local"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="Via:" assign_to="whole,invite_via"/>'
        '<ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="whole,invite_cseq"/>'
        + _log("INVITE", "[$from_user]|[$dialed]")
        + "</action></recv>"
    )
    sc.add(f"<send>{_reply('100 Trying')}</send>")
    if mode == "busy":
        sc.add(f"<send>{_reply('486 Busy Here', to_tag=True)}</send>")
        sc.add(f'<recv request="ACK" next="end"><action>{_log("BUSY")}</action></recv>')
    else:
        sc.add(f"<send>{_reply('180 Ringing', to_tag=True)}</send>")
        cancel_log = f"<action>{_log('CANCEL_RX')}</action>"
        if mode == "no_answer":
            sc.add(f'<recv request="CANCEL" next="cancelled">{cancel_log}</recv>')
        else:
            if ring_ms > 0:
                sc.add(
                    f'<recv request="CANCEL" timeout="{ring_ms}" ontimeout="answer"'
                    f' next="cancelled">{cancel_log}</recv>'
                )
                sc.label("answer")
            sc.add(f'<send retrans="500">{_reply("200 OK", to_tag=True, sdp=sdp)}</send>')
            play = _play(play_audio) if play_audio else ""
            sc.add(
                '<recv request="ACK" rtd="true" crlf="true">'
                f"<action>{_log('ANSWERED')}{play}</action></recv>"
            )
            sc.wait(hold_ms or None, "local_bye", on_bye="remote_bye")
            sc.label("local_bye")
            sc.add(
                '<send retrans="500">'
                + _msg(
                    """
                    BYE [next_url] SIP/2.0
                    Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
                    From: [$local];tag=[pid]SIPpTag01[call_number]
                    To: [$remote]
                    Call-ID: [call_id]
                    CSeq: 101 BYE
                    [routes]
                    Contact: <sip:[local_ip]:[local_port];transport=[transport]>
                    Max-Forwards: 70
                    """
                )
                + f"<action>{_log('BYE_TX')}</action></send>"
            )
            sc.add('<recv response="481" optional="true" next="end"/>')
            sc.add('<recv response="200" next="end"/>')
            sc.label("remote_bye")
            sc.add(f'<send next="end">{_reply("200 OK")}</send>')
        sc.label("cancelled")
        sc.add(f"<send>{_reply('200 OK')}</send>")
        sc.add(
            "<send>"
            + _msg(
                """
                SIP/2.0 487 Request Terminated
                Via: [$invite_via]
                From: [$remote]
                To: [$local];tag=[pid]SIPpTag01[call_number]
                Call-ID: [call_id]
                CSeq: [$invite_cseq] INVITE
                """
            )
            + "</send>"
        )
        sc.add('<recv request="ACK" next="end"/>')
    sc.label("end")
    sc.nop(_log("END"))
    return sc.render()


# --------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Ports:
    """The UDP ports of one SIPp instance, reserved until :meth:`release`."""

    sip: int
    media: int
    control: int

    @classmethod
    def allocate(cls, sip: int | None = None) -> _Ports:
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


def _die_with_parent() -> None:
    """Have the kernel SIGTERM SIPp if the test process dies without stopping it
    (an answerer otherwise serves, and spins, forever)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


async def _spawn(sipp_bin: str, args: list[str], cwd: Path) -> asyncio.subprocess.Process:
    """SIPp with stdout discarded (it redraws its statistics screen there)."""
    with (cwd / "stderr.txt").open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sipp_bin,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


async def _stop(proc: asyncio.subprocess.Process, grace: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL if SIPp has not gone after ``grace`` seconds."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return proc.returncode


def _check_user(value: str, what: str) -> str:
    if not _SAFE_USER.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match {_SAFE_USER.pattern}")
    return value


# --------------------------------------------------------------------- caller


@dataclass
class CallResult:
    """What one call looked like from the caller's side.

    ``hung_up_by`` is ``"caller"`` when we sent BYE or CANCEL, ``"remote"`` when
    the far end sent BYE, ``None`` when there was no dialog to end (rejected,
    or SIPp gave up on its own).
    """

    answered: bool
    final_status: int | None
    hung_up_by: HangupBy | None
    exit_code: int | None
    log_text: str
    call_id: str | None
    started_at: float | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    dtmf_sent_at: list[KeyPress] = field(default_factory=list)
    bye_wait_timed_out: bool = False
    timed_out: bool = False  # killed by the Python-side guard
    call_number: int = 0  # SIPp's call counter (1-based): line N of the injection file

    @property
    def keys(self) -> str:
        return "".join(k.digit for k in self.dtmf_sent_at)


@dataclass
class LoadResult:
    """``elapsed_s`` is the SIPp run's wall time, which includes SIPp's wait of
    1 / rate before the first call; ``calls`` has each call's own timings."""

    successful: int  # answered and ended by a BYE from either side
    failed: int
    elapsed_s: float
    exit_code: int | None
    calls: list[CallResult]
    log_text: str
    timed_out: bool = False


def _call_results(events: Sequence[_Event]) -> dict[int, CallResult]:
    by_call: dict[int, CallResult] = {}
    for ev in events:
        res = by_call.get(ev.call_number)
        if res is None:
            res = by_call[ev.call_number] = CallResult(
                answered=False,
                final_status=None,
                hung_up_by=None,
                exit_code=None,
                log_text="",
                call_id=ev.call_id,
                call_number=ev.call_number,
            )
        match ev.kind:
            case "INVITE_TX":
                res.started_at = ev.at
            case "RINGING":
                res.ringing_at = res.ringing_at or ev.at
            case "FINAL":
                res.final_status = int(ev.extra)
            case "ANSWERED":
                res.answered, res.answered_at = True, ev.at
            case "DTMF":
                res.dtmf_sent_at.append(KeyPress(ev.extra, ev.at))
            case "BYE_RX":
                res.hung_up_by = res.hung_up_by or "remote"
            case "BYE_TX" | "CANCEL_TX":
                res.hung_up_by = res.hung_up_by or "caller"
            case "BYE_WAIT_TIMEOUT":
                res.bye_wait_timed_out = True
            case "END":
                res.ended_at = ev.at
    return by_call


class SippCaller:
    """Places calls from SIPp: one process per :meth:`call`, one for a whole
    :meth:`run_load`.  Each run gets its own folder under ``workdir``."""

    def __init__(self, workdir: Path, sipp_bin: str = "sipp") -> None:
        self.workdir = Path(workdir)
        self.sipp_bin = sipp_bin
        self._runs = itertools.count(1)

    def _run_dir(self, kind: str) -> Path:
        path = self.workdir / f"{kind}-{next(self._runs):03d}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    async def call(
        self,
        *,
        target: str,
        number: str,
        caller_id: str | None,
        steps: Sequence[CallStep] = (),
        hangup_after_ms: int | None = None,
        timeout_s: float = 60,
        ring_timeout_ms: int | None = None,
    ) -> CallResult:
        """Call ``number`` at ``target`` ("127.0.0.1:PORT"), run ``steps`` once
        answered, then hang up after ``hangup_after_ms`` more, or (``None``) wait
        for the far end's BYE until ``timeout_s`` is spent and hang up then.

        An unanswered call is cancelled after ``ring_timeout_ms`` (default: half
        of ``timeout_s``) counted from the last provisional response.  SIPp is
        killed if it runs ``timeout_s`` + 10 s; the result then says ``timed_out``.
        """
        run = self._run_dir("call")
        ring_ms = ring_timeout_ms if ring_timeout_ms is not None else int(timeout_s * 500)
        bye_wait_ms = max(1000, int(timeout_s * 1000) - _steps_ms(steps) - 2000)
        scenario = _caller_scenario(
            from_user=None if caller_id is None else _check_user(caller_id, "caller_id"),
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            bye_wait_ms=bye_wait_ms,
            ring_timeout_ms=ring_ms,
            pcap_dir=run,
        )
        (run / "caller.xml").write_text(scenario, encoding="ascii")
        ports = _Ports.allocate()
        args = [
            target, "-sf", "caller.xml", "-s", _check_user(number, "number"),
            *ports.args(),
            "-m", "1", "-r", "1000", "-l", "1",  # a high rate places the call at once
            "-cid_str", f"hotline-{uuid.uuid4().hex[:12]}-%u@127.0.0.1",
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
            "-trace_msg", "-message_file", "messages.log",
        ]  # fmt: skip
        proc = await _spawn(self.sipp_bin, args, run)
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s + 10)
        except TimeoutError:
            timed_out = True
        finally:
            exit_code = await _stop(proc)
            ports.release()
        tail = _LogTail(run / "events.log")
        tail.poll()
        results = _call_results(tail.events)
        result = results.get(1) or CallResult(False, None, None, None, "", None)
        result.exit_code = None if timed_out else exit_code
        result.timed_out = timed_out
        result.log_text = _logs_text(
            run / name for name in ("stderr.txt", "errors.log", "events.log", "messages.log")
        )
        return result

    async def run_load(
        self,
        *,
        target: str,
        number: str,
        calls: int,
        rate_cps: float,
        steps: Sequence[CallStep] = (),
        hangup_after_ms: int | None = None,
        caller_ids: Sequence[str] | None = None,
        max_concurrent: int | None = None,
        timeout_s: float = 300,
        call_timeout_s: float = 60,
    ) -> LoadResult:
        """``calls`` calls at ``rate_cps`` from one SIPp process (``-r``/``-m``).

        ``caller_ids`` are used in turn (anonymous when ``None``).  Each call
        behaves as in :meth:`call` with ``timeout_s=call_timeout_s``; the whole
        run is killed after ``timeout_s``.  No message trace is kept (too big).
        """
        run = self._run_dir("load")
        scenario = _caller_scenario(
            from_user="[field0]" if caller_ids else None,
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            bye_wait_ms=max(1000, int(call_timeout_s * 1000) - _steps_ms(steps) - 2000),
            ring_timeout_ms=int(call_timeout_s * 500),
            pcap_dir=run,
        )
        (run / "caller.xml").write_text(scenario, encoding="ascii")
        ports = _Ports.allocate()
        args = [
            target, "-sf", "caller.xml", "-s", _check_user(number, "number"),
            *ports.args(),
            "-m", str(calls), "-r", f"{rate_cps:g}",
            "-l", str(max_concurrent or calls),
            "-cid_str", f"hotline-{uuid.uuid4().hex[:12]}-%u@127.0.0.1",
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
            "-trace_screen", "-screen_file", "screen.log",
        ]  # fmt: skip
        if caller_ids:
            lines = ["SEQUENTIAL", *(f"{_check_user(c, 'caller_id')};" for c in caller_ids)]
            (run / "callers.csv").write_text("\n".join(lines) + "\n", encoding="ascii")
            args += ["-inf", "callers.csv"]
        started = time.time()
        proc = await _spawn(self.sipp_bin, args, run)
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            exit_code = await _stop(proc)
            ports.release()
        elapsed = time.time() - started
        tail = _LogTail(run / "events.log")
        tail.poll()
        results = [r for _, r in sorted(_call_results(tail.events).items())]
        ok = sum(1 for r in results if r.answered and r.hung_up_by and r.ended_at)
        return LoadResult(
            successful=ok,
            failed=calls - ok,
            elapsed_s=elapsed,
            exit_code=exit_code,
            calls=results,
            timed_out=timed_out,
            log_text=_logs_text(run / name for name in ("stderr.txt", "errors.log", "screen.log")),
        )


# --------------------------------------------------------------------- answerer


@dataclass
class AnsweredCall:
    """One INVITE an answerer received, and what became of it."""

    call_id: str
    caller_id: str  # user part of From ("anonymous" for a withheld number)
    dialed: str  # user part of the Request-URI (the number a trunk was asked for)
    rung_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: Literal["answerer", "remote", "cancel", "busy"] | None = None


class SippAnswerer:
    """A SIPp UAS playing one phone (agent, chairman, carrier), serving any
    number of calls, in sequence or at once, until stopped.

    Modes: ``answer`` (100, 180, 200 after ``ring_ms``; plays ``g711a.pcap`` so
    the PBX sees media; BYE after ``hold_ms``, or waits for the far end's BYE
    when ``hold_ms == 0``), ``no_answer`` (rings until CANCEL, then 487) and
    ``busy`` (486).

    ``advertise_media_port`` puts another RTP port in the SDP than SIPp's own,
    for tests that capture what the far end sends.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        mode: AnswerMode = "answer",
        hold_ms: int = 2000,
        sipp_bin: str = "sipp",
        *,
        ring_ms: int = 0,
        play_audio: bool = True,
        advertise_media_port: int | None = None,
        port: int | None = None,
    ) -> None:
        if mode not in ("answer", "no_answer", "busy"):
            raise ValueError(f"unknown answerer mode {mode!r}")
        self.name = _check_user(name, "answerer name")
        self.mode: AnswerMode = mode
        self.hold_ms = hold_ms
        self.ring_ms = ring_ms
        self.sipp_bin = sipp_bin
        self.dir = Path(workdir) / name
        self._play_audio = play_audio
        self._advertise = advertise_media_port
        self._proc: asyncio.subprocess.Process | None = None
        self._ports: _Ports | None = None
        self._tail = _LogTail(self.dir / "events.log")
        self._calls: dict[str, AnsweredCall] = {}
        self._baseline = 0
        self._fixed_port = port  # e.g. the trunk port a config names; else a free one
        self.port = 0
        self.media_port = 0

    @property
    def contact(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError(f"answerer {self.name} already started")
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in ("events.log", "errors.log", "stderr.txt"):
            (self.dir / stale).unlink(missing_ok=True)
        self._tail = _LogTail(self.dir / "events.log")
        self._calls, self._baseline = {}, 0
        self._ports = _Ports.allocate(self._fixed_port)
        self.port, self.media_port = self._ports.sip, self._ports.media
        media = str(self._advertise) if self._advertise else "[media_port]"
        audio = AUDIO_PCAP if self._play_audio and AUDIO_PCAP.is_file() else None
        scenario = _answerer_scenario(self.mode, self.hold_ms, self.ring_ms, media, audio)
        (self.dir / "answerer.xml").write_text(scenario, encoding="ascii")
        args = [
            "-sf", "answerer.xml",
            *self._ports.args(),
            "-trace_logs", "-log_file", "events.log",
            "-trace_err", "-error_file", "errors.log",
        ]  # fmt: skip
        self._proc = await _spawn(self.sipp_bin, args, self.dir)
        await self._wait(lambda: _port_bound(self.port), 10, "SIPp to bind its port")

    async def stop(self) -> None:
        if self._proc is not None:
            await _stop(self._proc)
            self._proc = None
        if self._ports is not None:
            self._ports.release()
            self._ports = None
        self._refresh()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what happened

    def _refresh(self) -> None:
        for ev in self._tail.poll():
            call = self._calls.get(ev.call_id)
            if ev.kind == "INVITE":
                caller_id, _, dialed = ev.extra.partition("|")
                self._calls[ev.call_id] = AnsweredCall(ev.call_id, caller_id, dialed, ev.at)
                continue
            if call is None:
                continue
            match ev.kind:
                case "ANSWERED":
                    call.answered_at = ev.at
                case "BYE_TX":
                    call.ended_by = call.ended_by or "answerer"
                case "BYE_RX":
                    call.ended_by = call.ended_by or "remote"
                case "CANCEL_RX":
                    call.ended_by = "cancel"
                case "BUSY":
                    call.ended_by = "busy"
                case "END":
                    call.ended_at = ev.at

    @property
    def calls(self) -> list[AnsweredCall]:
        """Calls since the start or the last :meth:`reset`, in arrival order."""
        self._refresh()
        return list(self._calls.values())[self._baseline :]

    def reset(self) -> None:
        """Forget earlier calls (for session-wide phones shared by tests)."""
        self._refresh()
        self._baseline = len(self._calls)

    @property
    def rung_count(self) -> int:
        return len(self.calls)

    @property
    def ring_times(self) -> list[float]:
        return [c.rung_at for c in self.calls]

    @property
    def caller_ids(self) -> list[str]:
        return [c.caller_id for c in self.calls]

    @property
    def answered_count(self) -> int:
        return sum(1 for c in self.calls if c.answered_at is not None)

    def log_text(self) -> str:
        return _logs_text(self.dir / name for name in ("stderr.txt", "errors.log", "events.log"))

    async def wait_rung(self, count: int = 1, timeout: float = 20) -> None:
        await self._wait(lambda: self.rung_count >= count, timeout, f"{count} INVITE(s)")

    async def wait_answered(self, count: int = 1, timeout: float = 20) -> None:
        await self._wait(lambda: self.answered_count >= count, timeout, f"{count} answer(s)")

    async def wait_ended(self, count: int = 1, timeout: float = 20) -> None:
        """Until ``count`` calls are over (SIPp has left the scenario)."""

        def ended() -> bool:
            return sum(1 for c in self.calls if c.ended_at is not None) >= count

        await self._wait(ended, timeout, f"{count} ended call(s)")

    async def _wait(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        if self._proc is None:
            raise RuntimeError(f"answerer {self.name} is not running")
        deadline = time.monotonic() + timeout
        while not probe():
            if self._proc.returncode is not None:
                raise RuntimeError(
                    f"SIPp answerer {self.name} exited ({self._proc.returncode}) while "
                    f"waiting for {what}\n{self.log_text()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"answerer {self.name} ({self.mode}, {self.contact}): no {what} within "
                    f"{timeout}s; saw {len(self.calls)} call(s)\n{self.log_text()}"
                )
            await asyncio.sleep(0.01)
