"""The FastAGI edge: replies stay paired with their commands, hang-ups are hang-ups.

A fake Asterisk at the byte level: :class:`AsteriskSide` answers each command
the AGI session writes with the reply line Asterisk 22 would send
(``res_agi.c``), and can slip in the ``HANGUP`` line Asterisk writes when the
caller hangs up, before or after any reply. The bytes reach
:class:`ivr.agi.channel.AgiRequest` through a real asyncio ``StreamReader``,
in whatever chunks the test chooses.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.channel import AgiChannel, AgiRequest, CallerHungUp
from ivr.agi.listener import FastAgiApplication

ENV = {"agi_network_script": "entry", "agi_uniqueid": "1700000000.1", "agi_arg_1": "Đức"}


class AsteriskSide:
    """The writer end of the session; each command written is answered by
    feeding ``replies[n]`` (bytes, possibly with a HANGUP line) to the reader,
    cut into pieces by ``chunk``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        replies: list[bytes],
        chunk: Callable[[bytes], list[bytes]] = lambda data: [data],
        close_after: bool = False,
    ) -> None:
        self.reader = reader
        self.replies = list(replies)
        self.chunk = chunk
        self.close_after = close_after
        self.commands: list[str] = []

    def write(self, data: bytes) -> None:
        self.commands.append(data.decode("utf-8").rstrip("\n"))
        if self.replies:
            for piece in self.chunk(self.replies.pop(0)):
                self.reader.feed_data(piece)
        if not self.replies and self.close_after:
            self.reader.feed_eof()

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        pass


def session(replies: list[bytes], **kwargs: Any) -> tuple[AgiChannel, AgiRequest, AsteriskSide]:
    reader = asyncio.StreamReader()
    side = AsteriskSide(reader, replies, **kwargs)
    request = AgiRequest(app=None, headers=ENV, reader=reader, writer=side)
    return AgiChannel(request), request, side


async def test_a_hangup_line_before_the_reply_ends_that_command_and_the_next_gets_its_own() -> None:
    channel, request, side = session(
        [
            b"HANGUP\n200 result=-1 endpos=1200\n",  # during STREAM FILE
            b"200 result=1 (citizen-42)\n",  # GET FULL VARIABLE still works dead
        ]
    )
    with pytest.raises(CallerHungUp):
        await channel.stream_file("/prompts/welcome", "0123456789")
    assert request.hung_up
    assert await channel.get_full_variable("${CASE}") == "citizen-42"
    assert side.commands == [
        'STREAM FILE /prompts/welcome "0123456789"',
        'GET FULL VARIABLE "${CASE}"',
    ]


async def test_a_hangup_line_between_commands_is_the_next_commands_hangup_not_its_reply() -> None:
    channel, _request, _side = session(
        [
            b"200 result=1\n",  # SET VARIABLE, answered before the caller hung up
            b"HANGUP\n511 Command Not Permitted on a dead channel or intercepted channel\n",
            b"200 result=1 (x)\n",
        ]
    )
    await channel.set_variable("HOTLINE_ROUTE", "queue")
    with pytest.raises(CallerHungUp):
        await channel.get_data("/prompts/menu", 5000, 2)
    assert await channel.get_full_variable("${X}") == "x"


async def test_result_minus_one_is_a_hangup_whichever_command_gets_it() -> None:
    for call in (
        lambda c: c.get_full_variable("${QUEUE_WAITING_COUNT(field)}"),
        lambda c: c.get_data("/prompts/menu", 5000, 2),
        lambda c: c.stream_file("/prompts/welcome"),
        lambda c: c.wait_for_digit(3000),
        lambda c: c.set_variables({"A": "1", "B": "2"}),
    ):
        channel, _request, _side = session([b"200 result=-1\n"])
        with pytest.raises(CallerHungUp):
            await call(channel)


async def test_the_end_of_the_session_is_a_hangup() -> None:
    channel, request, _side = session([b"200 result=1\n"], close_after=True)
    await channel.set_variable("A", "1")
    with pytest.raises(CallerHungUp):
        await channel.verbose("after the end")
    assert request.hung_up


async def test_a_multi_line_usage_error_is_read_whole_and_the_next_reply_is_paired() -> None:
    channel, _request, _side = session(
        [
            b"520-Invalid command syntax.  Proper usage follows:\n"
            b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
            b"520 End of proper usage.\n",
            b"200 result=1 (fine)\n",
        ]
    )
    with pytest.raises(CallerHungUp):  # get_data treats any error as the end
        await channel.get_data("", 0, 0)
    assert await channel.get_full_variable("${Y}") == "fine"


def test_the_application_is_made_where_get_event_loop_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.14: asyncio.get_event_loop() raises outside a running loop, and
    # panoramisk's Application.__init__ called it.
    def no_loop() -> None:
        raise RuntimeError("There is no current event loop")

    monkeypatch.setattr(asyncio, "get_event_loop", no_loop)

    async def entry(request: Any) -> None:
        pass

    app = FastAgiApplication()
    app.add_route("entry", entry)
    assert app._route == {"entry": entry}


# --- properties: any chunking, a hang-up at every point of a flow -------------------

FLOW: list[tuple[str, bytes, str]] = [
    # (what the session does, Asterisk's reply, what the channel returns)
    ("answer", b"200 result=0\n", "None"),
    ("welcome", b"200 result=0 endpos=8000\n", ""),
    ("menu", b"200 result=12\n", "12"),
    ("variable", b"200 result=1 (Nguy\xe1\xbb\x85n Th\xe1\xbb\x8b H\xc3\xa0)\n", "Nguyễn Thị Hà"),
    ("digit", b"200 result=49\n", "1"),
    ("route", b"200 result=1\n", "None"),
]


async def _run_flow(channel: AgiChannel) -> list[str]:
    """The flow's commands in order; each outcome as text, CallerHungUp as 'hangup'."""
    steps: dict[str, Callable[[], Any]] = {
        "answer": lambda: channel.verbose("call start"),
        "welcome": lambda: channel.stream_file("/prompts/welcome", "0123456789"),
        "menu": lambda: channel.get_data("/prompts/menu", 5000, 2),
        "variable": lambda: channel.get_full_variable("${CALLERID(name)}"),
        "digit": lambda: channel.wait_for_digit(3000),
        "route": lambda: channel.set_variable("HOTLINE_ROUTE", "queue"),
    }
    outcomes = []
    for name, _reply, _value in FLOW:
        try:
            outcomes.append(str(await steps[name]()))
        except CallerHungUp:
            outcomes.append("hangup")
    return outcomes


def _chunker(cuts: list[int]) -> Callable[[bytes], list[bytes]]:
    def chunk(data: bytes) -> list[bytes]:
        points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
        return [data[a:b] for a, b in itertools.pairwise(points) if b > a]

    return chunk


def _expected(hangup_at: int | None) -> list[str]:
    """The command in flight when HANGUP arrives gets 'hangup'; the others their
    own reply (Asterisk answers them as it did: the fake keeps its replies)."""
    return [
        "hangup" if index == hangup_at else value
        for index, (_name, _reply, value) in enumerate(FLOW)
    ]


def _replies(hangup_at: int | None, before_reply: bool) -> list[bytes]:
    replies = [reply for _name, reply, _value in FLOW]
    if hangup_at is not None:
        hangup = b"HANGUP\n"
        replies[hangup_at] = (
            hangup + replies[hangup_at] if before_reply else replies[hangup_at] + hangup
        )
    return replies


@pytest.mark.parametrize("before_reply", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("hangup_at", [None, *range(len(FLOW))])
def test_a_hangup_at_every_point_of_a_flow_in_every_chunking_keeps_replies_paired(
    hangup_at: int | None, before_reply: bool, record_property: Any
) -> None:
    if hangup_at is not None and not before_reply:
        # A HANGUP written after a reply is read by the next command: that one is
        # in flight when the reader meets it (the last one's is never read).
        expected = _expected(hangup_at + 1 if hangup_at + 1 < len(FLOW) else None)
    else:
        expected = _expected(hangup_at)
    replies = _replies(hangup_at, before_reply)
    tried = 0

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(0, 64), max_size=8))
    def chunked(cuts: list[int]) -> None:
        nonlocal tried
        tried += 1

        async def run() -> list[str]:
            channel, _request, _side = session(replies, chunk=_chunker(cuts))
            return await _run_flow(channel)

        assert asyncio.run(run()) == expected

    chunked()
    where = "before" if before_reply else "after"
    print(f"\nhang-up {where} reply {hangup_at}: {tried} chunkings of each reply")
    record_property("chunkings_tried", tried)


# --- the request: the AGI environment in any chunking -------------------------------

REQUEST_ENV = {
    "agi_network": "yes",
    "agi_network_script": "entry",
    "agi_request": "agi://127.0.0.1:4573/entry",
    "agi_channel": "PJSIP/pstn-00000001",
    "agi_uniqueid": "1700000000.1",
    "agi_callerid": "0912345678",
    "agi_calleridname": "Nguyễn Thị Hà",
    "agi_arg_1": "bac-tu-liem",
}


class ChunkedAsterisk:
    """Writes the AGI environment in the given pieces, then answers commands."""

    def __init__(self, reader: asyncio.StreamReader, pieces: list[bytes]) -> None:
        self.reader = reader
        for piece in pieces:
            reader.feed_data(piece)
        self.commands: list[str] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.commands.append(data.decode())
        self.reader.feed_data(b"HANGUP\n200 result=-1\n")  # hung up during the first

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        self.closed = True


def test_the_agi_environment_in_any_chunking_reaches_the_route_whole(
    record_property: Any,
) -> None:
    head = "".join(f"{k}: {v}\n" for k, v in REQUEST_ENV.items()).encode() + b"\n"
    tried = 0

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(0, len(head)), max_size=30))
    def chunked(cuts: list[int]) -> None:
        nonlocal tried
        tried += 1
        seen: list[Any] = []

        async def entry(request: AgiRequest) -> None:
            channel = AgiChannel(request)
            try:
                await channel.stream_file("/prompts/welcome")
            except CallerHungUp:
                seen.append(("hangup", dict(request.headers)))

        async def run() -> ChunkedAsterisk:
            app = FastAgiApplication()
            app.add_route("entry", entry)
            reader = asyncio.StreamReader()
            points = sorted({0, len(head), *cuts})
            asterisk = ChunkedAsterisk(reader, [head[a:b] for a, b in itertools.pairwise(points)])
            await app.handler(reader, asterisk)  # type: ignore[arg-type]
            return asterisk

        asterisk = asyncio.run(run())
        assert seen == [("hangup", REQUEST_ENV)]
        assert asterisk.closed

    chunked()
    print(f"\n{tried} chunkings of a FastAGI request")
    record_property("chunkings_tried", tried)
