"""The AMI edge: bytes from Asterisk to the live model, whole characters only.

Bytes are fed to :class:`ivr.asterisk.ami_protocol.AmiProtocol` exactly as
asyncio would (``data_received`` per TCP read), split wherever a network may
split them; the property tests compare what comes out with the recorded
events (bench/fixtures/ami_events.jsonl, from the real Asterisk, turned back
into AMI wire text, plus events with Vietnamese names).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from panoramisk.message import Message

from ivr.asterisk.ami_gate import GatedManager
from ivr.asterisk.ami_protocol import AmiProtocol, AmiStreamCounters
from ivr.config import load_config
from ivr.web.live import Client, LiveHub
from queue_manager.ami import AmiLink
from queue_manager.model import LiveModel

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "bench" / "fixtures" / "ami_events.jsonl"
# Recorded by tests/test_ami_edge_e2e.py: 40 members with Vietnamese names added
# on the real Asterisk and read back in two QueueStatus bursts.
FIXTURE_VI = REPO / "bench" / "fixtures" / "ami_events_vi.jsonl"
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"

NGUYEN = "Nguyễn Thị Hà"
VIETNAMESE_EVENTS: list[dict[str, str]] = [
    {"Event": "QueueMemberAdded", "Queue": "operator", "Interface": "PJSIP/2001",
     "MemberName": NGUYEN, "StateInterface": "PJSIP/2001", "Membership": "dynamic",
     "Penalty": "0", "CallsTaken": "0", "LastCall": "0", "Status": "1", "Paused": "0"},
    {"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": "1700000000.7",
     "Channel": "PJSIP/trunk-00000007", "CallerIDNum": "0912000777",
     "CallerIDName": "Trần Văn Đức", "Position": "1", "Count": "1"},
    {"Event": "QueueMemberStatus", "Queue": "procedures", "Interface": "PJSIP/2002",
     "MemberName": "Phạm Ngọc Ánh — Tổ một cửa", "Status": "2", "Paused": "0"},
]  # fmt: skip


def wire(event: dict[str, Any]) -> bytes:
    """One event as Asterisk writes it: header lines, then a blank line."""
    lines = []
    for name, value in event.items():
        if name == "content":  # panoramisk's body field, not a header
            continue
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{name}: {item}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def recorded_events(path: Path = FIXTURE) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for event in events:
        event.pop("content", None)
    return events


class FakeTransport:
    """The transport side asyncio gives a protocol: records writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Collector:
    """The protocol's factory (panoramisk's Manager role), reduced to what the
    reader calls: dispatch and connection_lost."""

    forgetable_actions = ()

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.awaiting_actions: list[Any] = []

    def dispatch(self, message: Message) -> None:
        event = dict(message.items())
        assert event.pop("content") == ""  # panoramisk's body field, empty on events
        self.events.append(event)

    def connection_lost(self, exc: object) -> None:
        pass


def feed(chunks: list[bytes]) -> tuple[list[dict[str, Any]], AmiStreamCounters]:
    protocol = AmiProtocol()
    protocol.connection_made(FakeTransport())
    collector = Collector()
    protocol.factory = collector
    for chunk in chunks:
        protocol.data_received(chunk)
    protocol.connection_lost(None)
    return collector.events, protocol.counters


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


# --- the proof: "Nguyễn" split inside "ễ" arrives whole --------------------------


async def test_a_name_split_inside_a_letter_arrives_whole_in_the_model_and_on_the_wallboard() -> (
    None
):
    config = load_config(EXAMPLE)
    model = LiveModel("local", queue_settings={q.id: (30, 0) for q in config.queues})
    link = AmiLink("local", "127.0.0.1", 5038, "hotline", "secret", model)

    class Source:
        def subscribe(self, callback: Any) -> Any:
            return model.subscribe(callback)

        def snapshot(self) -> dict[str, Any]:
            return {"local": model.snapshot()}

    hub = LiveHub(config, Source())
    hub.start()
    sent: list[str] = []

    class Socket:
        closed = False

        async def send_str(self, data: str) -> None:
            sent.append(data)

    client = Client(Socket(), "wallboard")  # type: ignore[arg-type]
    hub.clients.add(client)

    # The link's own manager and reader, as AmiLink wires them.
    manager = GatedManager(loop=asyncio.get_running_loop(), ping_delay=10**6)
    manager.register_event("*", link._on_event)
    protocol = AmiProtocol()
    protocol.connection_made(FakeTransport())
    made: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    made.set_result((protocol.transport, protocol))
    manager.connection_made(made)

    data = BANNER + wire(VIETNAMESE_EVENTS[0])
    ee = "ễ".encode()
    cut = data.index(ee) + 1  # inside the three bytes of "ễ"
    protocol.data_received(data[:cut])
    protocol.data_received(data[cut:])
    manager.close()

    member = model.queues["operator"].members["PJSIP/2001"]
    assert member.name == NGUYEN
    await asyncio.sleep(0)  # the hub's scheduled flush
    frame = json.loads(client.outbox.get_nowait())
    operator = next(q for q in frame["board"]["queues"] if q["id"] == "operator")
    assert [a["name"] for a in operator["agents"]] == [NGUYEN]
    assert manager.counters.invalid_utf8 == 0


async def test_an_event_callback_that_raises_is_counted_and_the_link_reads_on() -> None:
    manager = GatedManager(loop=asyncio.get_running_loop(), ping_delay=10**6)
    seen: list[str] = []

    def broken(_manager: Any, message: Message) -> None:
        if message["Queue"] == "a":
            raise RuntimeError("a bug in one handler")
        seen.append(message["Queue"])

    async def broken_async(_manager: Any, message: Message) -> None:
        raise RuntimeError("a bug in a coroutine handler")

    manager.register_event("QueueCallerJoin", broken)
    manager.register_event("QueueCallerJoin", broken_async)
    protocol = AmiProtocol()
    transport = FakeTransport()
    protocol.connection_made(transport)
    made: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    made.set_result((transport, protocol))
    manager.connection_made(made)
    for queue in ("a", "b"):
        protocol.data_received(wire({"Event": "QueueCallerJoin", "Queue": queue}))
    for _ in range(3):
        await asyncio.sleep(0)  # the coroutine callbacks run and fail
    assert seen == ["b"]
    assert not transport.closed
    assert manager.counters.callback_errors == 3  # one sync failure, two async ones
    manager.close()


# --- properties: any chunking yields the same events -------------------------------


def test_the_recorded_stream_parses_back_to_the_recorded_events() -> None:
    events = recorded_events() + recorded_events(FIXTURE_VI) + VIETNAMESE_EVENTS
    stream = BANNER + b"".join(wire(e) for e in events)
    got, counters = feed([stream])
    assert got == events
    assert counters.skipped() == 0 and counters.lines_without_colon == 0


def test_split_at_every_byte_offset_yields_the_same_events(
    record_property: Any,
) -> None:
    # The Vietnamese events and the resync burst around them (QueueParams,
    # QueueMember, QueueEntry): every split position inside a letter, a header
    # name, the CR LF pairs and the blank line.
    burst = [e for e in recorded_events(FIXTURE_VI) if e.get("Event") == "QueueMember"]
    events = [*recorded_events()[:8], *burst[:6], *VIETNAMESE_EVENTS]
    assert any("Nguyễn" in str(e.get("Name")) for e in burst[:6])
    stream = BANNER + b"".join(wire(e) for e in events)
    for offset in range(len(stream) + 1):
        got, counters = feed(split_at(stream, [offset]))
        assert got == events, f"split at byte {offset}"
        assert counters.skipped() == 0
    print(f"\n{len(stream) + 1} two-piece splits (every byte offset) of {len(events)} events")
    record_property("byte_offsets_tried", len(stream) + 1)


def test_random_chunkings_of_the_whole_recording_yield_the_same_events(
    record_property: Any,
) -> None:
    events = recorded_events() + recorded_events(FIXTURE_VI) + VIETNAMESE_EVENTS
    stream = BANNER + b"".join(wire(e) for e in events)
    tried = 0

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.integers(0, len(stream)), max_size=400))
    def chunked(cuts: list[int]) -> None:
        nonlocal tried
        tried += 1
        got, _counters = feed(split_at(stream, cuts))
        assert got == events

    chunked()
    one_byte, _ = feed([stream[i : i + 1] for i in range(len(stream))])
    assert one_byte == events
    print(f"\n{tried} random chunkings and one byte-by-byte feed of {len(events)} events")
    record_property("random_chunkings_tried", tried)


# --- malformed input: counted, skipped, the neighbours kept -------------------------

BEFORE = [
    {"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": "1.1", "CallerIDName": "Lê Văn"},
    {"Event": "QueueMemberPause", "Queue": "operator", "Interface": "PJSIP/2001", "Paused": "1"},
]  # fmt: skip
AFTER = [
    {"Event": "QueueCallerLeave", "Queue": "operator", "Uniqueid": "1.1", "Position": "1"},
    {"Event": "QueueMemberAdded", "Queue": "field", "Interface": "PJSIP/2003",
     "MemberName": "Đỗ Thị Hồng"},
]  # fmt: skip

MALFORMED: dict[str, tuple[bytes, list[dict[str, Any]], str]] = {
    # name: (bytes between BEFORE and AFTER, events they yield, the counter that counts)
    "event cut at the front": (
        b"ue: operator\r\nUniqueid: 1.9\r\nPosition: 2\r\n\r\n",
        [],
        "unrecognised",
    ),
    "line without a colon": (
        b"Event: QueueMemberStatus\r\nQueue: field\r\nthis line has none\r\nStatus: 2\r\n\r\n",
        [{"Event": "QueueMemberStatus", "Queue": "field", "Status": "2"}],
        "lines_without_colon",
    ),
    "1 MB header": (
        b"Event: QueueParams\r\nQueue: field\r\nHuge: " + b"x" * (1 << 20) + b"\r\n\r\n",
        [],
        "oversized",
    ),
    "invalid UTF-8": (
        b"Event: QueueMemberStatus\r\nQueue: field\r\nMemberName: Ng\xff\xc3n\r\n\r\n",
        [{"Event": "QueueMemberStatus", "Queue": "field", "MemberName": "Ng\ufffd\ufffdn"}],
        "invalid_utf8",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_counted_and_skipped_keeping_the_events_around_it(
    case: str, record_property: Any
) -> None:
    bad, yielded, counter = MALFORMED[case]
    stream = BANNER + b"".join(map(wire, BEFORE)) + bad + b"".join(map(wire, AFTER))
    expected = [*BEFORE, *yielded, *AFTER]
    got, counters = feed([stream])
    assert got == expected
    assert getattr(counters, counter) == 1
    tried = 0

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(0, len(stream)), max_size=60))
    def chunked(cuts: list[int]) -> None:
        nonlocal tried
        tried += 1
        got, counters = feed(split_at(stream, cuts))
        assert got == expected
        assert getattr(counters, counter) == 1

    chunked()
    print(f"\n{case}: {tried} random chunkings")
    record_property("random_chunkings_tried", tried)


def test_an_event_cut_by_the_end_of_the_connection_is_counted() -> None:
    stream = BANNER + wire(BEFORE[0]) + wire(BEFORE[1])[:-7]
    got, counters = feed([stream])
    assert got == BEFORE[:1]
    assert counters.truncated == 1


def test_the_banner_split_across_reads_is_still_taken_off() -> None:
    stream = BANNER + wire(BEFORE[0])
    for cut in range(1, len(BANNER) + 1):
        got, counters = feed(split_at(stream, [cut]))
        assert got == BEFORE[:1]
        assert counters.lines_without_colon == 0


async def test_bytes_that_arrive_before_the_manager_takes_the_protocol_are_held() -> None:
    # The link awaits create_connection before it hands the protocol to its
    # manager; events read in between used to meet a protocol without factory.
    manager = GatedManager(loop=asyncio.get_running_loop(), ping_delay=10**6)
    seen: list[str] = []
    manager.register_event("*", lambda _m, message: seen.append(message["Queue"]))
    protocol = AmiProtocol()
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(BANNER + wire(BEFORE[0]))
    made: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    made.set_result((transport, protocol))
    manager.connection_made(made)
    protocol.data_received(wire(AFTER[1]))
    assert seen == ["operator", "field"]
    assert manager.counters.handler_errors == 0
    manager.close()


async def test_the_gated_manager_takes_the_running_loop_not_get_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # panoramisk's Manager.connect() falls back to asyncio.get_event_loop(),
    # which raises outside a running loop from Python 3.14.
    def no_loop() -> None:
        raise RuntimeError("There is no current event loop")

    monkeypatch.setattr(asyncio, "get_event_loop", no_loop)
    manager = GatedManager()
    assert manager.loop is asyncio.get_running_loop()
    assert manager.config["protocol_factory"] is AmiProtocol
