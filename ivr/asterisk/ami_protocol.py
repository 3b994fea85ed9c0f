"""The AMI reader: bytes from Asterisk to messages, whole characters only.

panoramisk 1.4's ``AMIProtocol.data_received`` decodes every TCP read on its
own with ``errors='ignore'``: a Vietnamese letter split across two reads
("ễ" is three bytes) is silently dropped, so "Nguyễn" reaches the wallboard
as "Nguyn". QueueStatus bursts at every resync make such splits common.

:class:`AmiProtocol` subclasses panoramisk's protocol and replaces only the
reader: it cuts the byte stream at the blank line that ends every AMI message
and decodes each whole message at once, so a character can never be split.
Everything else (sending actions, matching responses to actions, closing) is
panoramisk's, unchanged. Subclassing rather than vendoring because the reader
is the only part that is wrong, it is 100 lines, and the rest of panoramisk's
protocol is tied to its Manager (``factory``, ``responses``, awaiting actions);
``panoramisk==1.4`` is pinned in pyproject.toml so the parts we override cannot
move under us. docs/queue_manager.md says more.

What the reader does with bad input, each counted in :class:`AmiStreamCounters`
and logged, never fatal to the link, never losing the messages around it:

- a message longer than :attr:`AmiProtocol.max_message_bytes` (a runaway
  header) is discarded up to its end;
- bytes that are not UTF-8 become U+FFFD in that message, which is kept (a lost
  QueueCallerLeave would leave a phantom caller on the board until the next
  resync; a garbled name is the smaller harm);
- a line without a colon is skipped, the rest of its message kept;
- a message with neither ``Event`` nor ``Response`` (the tail of a message cut
  at the front) is skipped, and one cut by a lost connection is counted too;
- a callback that raises is logged and counted (:mod:`ivr.asterisk.ami_gate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

logger = logging.getLogger(__name__)

_END = b"\r\n\r\n"
_BANNER = b"Asterisk Call Manager/"
# Responses whose last lines are free text, not headers (the old Command output).
_HAS_BODY = ("Response: Follows", "Response: Fail")


@dataclass
class AmiStreamCounters:
    """What one AMI link received and what it had to skip (kept across reconnects)."""

    messages: int = 0
    oversized: int = 0  # messages discarded for their size
    invalid_utf8: int = 0  # messages in which bytes were replaced by U+FFFD
    lines_without_colon: int = 0
    unrecognised: int = 0  # messages with neither Event nor Response
    truncated: int = 0  # a message cut by the end of the connection
    callback_errors: int = 0  # event callbacks that raised
    handler_errors: int = 0  # messages whose handling raised inside panoramisk

    def skipped(self) -> int:
        return self.oversized + self.unrecognised + self.truncated


class AmiMessage(Message):
    """panoramisk's :class:`Message`, built in one step (its constructor sets
    headers one by one through the case-insensitive mapping: a third of the
    edge's time), keeping the plain header dictionary as ``fields``: what
    ``dict(message.items())`` gives, without iterating the mapping again."""

    fields: dict[str, Any]

    @classmethod
    def of(cls, headers: dict[str, Any]) -> AmiMessage:
        message = cls.__new__(cls)
        fields = {**headers, "content": ""}  # as panoramisk's Message(headers) holds
        # CaseInsensitiveDict's store (panoramisk 1.4, pinned): lower → (name, value).
        message._store = {name.lower(): (name, value) for name, value in fields.items()}
        message.manager = None
        message.fields = fields
        return message


def parse_message(text: str, counters: AmiStreamCounters) -> Message | None:
    """One AMI message (without its blank line) as panoramisk's :class:`Message`;
    None when it is neither an event nor a response."""
    text = text.strip()
    if not text:
        return None
    if text.startswith(_HAS_BODY):
        message = Message.from_line(text)
        if message is None:
            counters.unrecognised += 1
        return message
    headers: dict[str, Any] = {}
    for line in text.split("\r\n"):
        name, colon, value = line.partition(": ")
        if not colon:  # "Name:" with an empty value and no space, or no colon at all
            name, colon, value = line.partition(":")
            if not colon:
                counters.lines_without_colon += 1
                _warn(counters.lines_without_colon, "AMI line without a colon skipped")
                continue
        if name in headers:  # a repeated header (ChanVariable): a list, as panoramisk
            previous = headers[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                headers[name] = [previous, value]
        else:
            headers[name] = value
    if "Event" not in headers and "Response" not in headers:
        counters.unrecognised += 1
        _warn(counters.unrecognised, "AMI message with neither Event nor Response skipped")
        return None
    result = headers.get("Result")
    if isinstance(result, str):  # panoramisk's quoted key (AGIExec events)
        headers["Result"] = unquote(result).strip()
    return AmiMessage.of(headers)


def _warn(count: int, message: str, *args: Any) -> None:
    """Log the 1st, 10th, 100th and every 1000th time: a peer sending garbage
    must not flood the log (the counters hold the exact figures)."""
    if count in (1, 10, 100) or count % 1000 == 0:
        logger.warning(message + " (%d so far on this link)", *args, count)


class AmiProtocol(AMIProtocol):
    """panoramisk's AMI protocol with a byte-level, character-safe reader."""

    # Asterisk's longest messages are single events of a few KiB; a message this
    # long is a fault, and holding it would let one peer grow our memory at will.
    max_message_bytes = 256 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.counters = AmiStreamCounters()
        self._pending = bytearray()
        self._discarding = False  # inside an oversized message, up to its end

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._pending = bytearray()
        self._discarding = False

    def data_received(self, data: bytes) -> None:
        self._pending += data
        if self.factory is not None:  # else held until the manager takes the protocol
            self._read()

    def attached(self) -> None:
        """The manager has taken this protocol: read what arrived before."""
        if self._pending:
            self._read()

    def _read(self) -> None:
        pending = self._pending
        if self.version is None and not self._read_banner():
            return
        start = 0
        while True:
            end = pending.find(_END, start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end - start > self.max_message_bytes:
                self._oversized()
            else:
                self._message(bytes(pending[start:end]))
            start = end + len(_END)
        if start:
            del pending[:start]
        if len(pending) > self.max_message_bytes:
            if not self._discarding:
                self._oversized()
            self._discarding = True
            del pending[: len(pending) - (len(_END) - 1)]  # keep what may start the end

    def _oversized(self) -> None:
        self.counters.oversized += 1
        _warn(
            self.counters.oversized, "AMI message over %d bytes discarded", self.max_message_bytes
        )

    def _read_banner(self) -> bool:
        """Take the greeting line off the stream; False while it is incomplete."""
        pending = self._pending
        if len(pending) < len(_BANNER) and _BANNER.startswith(bytes(pending)):
            return False
        if not pending.startswith(_BANNER):
            self.version = ""  # no greeting: a peer we only parse
            return True
        eol = pending.find(b"\r\n")
        if eol < 0:
            return False
        self.version = pending[len(_BANNER) : eol].decode("ascii", "replace").strip()
        logger.info("AMI protocol version: %s", self.version)
        del pending[: eol + 2]
        return True

    def _message(self, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.counters.invalid_utf8 += 1
            _warn(
                self.counters.invalid_utf8, "AMI message with bytes that are not UTF-8 (replaced)"
            )
            text = raw.decode("utf-8", "replace")
        message = parse_message(text, self.counters)
        if message is None:
            return
        self.counters.messages += 1
        try:
            self.handle_message(message)
        except Exception:
            # A fault in matching or dispatching one message must not end the
            # reader: asyncio would close the connection for it.
            self.counters.handler_errors += 1
            logger.exception("AMI message could not be handled: %s", message.get("Event"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending.strip() and not self._discarding:
            self.counters.truncated += 1
            logger.warning("AMI connection ended inside a message (%d bytes)", len(self._pending))
        self._pending = bytearray()
        super().connection_lost(exc)
