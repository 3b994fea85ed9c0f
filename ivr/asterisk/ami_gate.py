"""The one gate every AMI action passes before it is written to Asterisk.

panoramisk writes an action as ``Key: value`` lines ended by an empty line and
escapes nothing. A value holding CR or LF would end the action and start
another one (``x\\r\\n\\r\\nAction: Hangup\\r\\nChannel: /./`` hangs up every
call), and the AMI user may originate, i.e. ring any phone into ChanSpy. So no
action leaves this process unless every header name is a plain token and no
value holds CR, LF or NUL. Free text (a pause reason, a name typed in the
console) must never be sent at all: callers send codes and ids; this gate is
the last line, not the only one.

Both panoramisk managers the project uses (the queue manager's links and the
reload-only connection) subclass :class:`GatedManager`, so the check sits in
the one method that turns an action into bytes. The same class isolates event
callbacks: in panoramisk 1.4 an exception escaping one ends the reader and so
the connection; here it is logged and counted, and the link reads on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from ivr.asterisk.ami_protocol import AmiProtocol, AmiStreamCounters

logger = logging.getLogger(__name__)

# AMI header names are letters, digits, '-' and '_' (Asterisk's own, and ours).
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_FORBIDDEN = ("\r", "\n", "\0")
_MAX_VALUE = 1024


class _RedactSecrets(logging.Filter):
    """panoramisk logs whole actions in places ("Fail to send …", "Adding
    action … to awaiting list"), which would put an AMI Login's ``Secret`` in
    the log; the value is replaced before any handler sees the record."""

    _SECRET = re.compile(r"(?i)(secret['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._SECRET.sub(r"\1********", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


for _name in ("panoramisk", "panoramisk.manager", "panoramisk.ami_protocol"):
    logging.getLogger(_name).addFilter(_RedactSecrets())


class UnsafeAmiAction(ValueError):
    """An action that would change meaning on the wire; nothing was sent."""


def _check_value(name: str, value: Any) -> None:
    text = str(value)
    if any(ch in text for ch in _FORBIDDEN):
        raise UnsafeAmiAction(f"AMI header {name!r} holds a line break or NUL: refused")
    if len(text) > _MAX_VALUE:
        raise UnsafeAmiAction(f"AMI header {name!r} is longer than {_MAX_VALUE} characters")


def check_action(action: Mapping[str, Any]) -> None:
    """Raise :class:`UnsafeAmiAction` unless ``action`` is safe to write.

    A list value (panoramisk writes one header line per item, as Originate's
    ``Variable`` needs) is checked item by item.
    """
    if not action.get("Action"):
        raise UnsafeAmiAction("an AMI action needs an 'Action' header")
    for name, value in action.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UnsafeAmiAction(f"AMI header name {name!r} is not a plain token")
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            _check_value(name, item)


class GatedManager(Manager):
    """panoramisk's Manager whose every action passes :func:`check_action`, whose
    reader is :class:`~ivr.asterisk.ami_protocol.AmiProtocol`, and whose event
    callbacks cannot end the link. ``counters`` add up over reconnects."""

    pinger: asyncio.TimerHandle | None  # panoramisk's keep-alive timer (untyped there)

    def __init__(self, **config: Any) -> None:
        config.setdefault("protocol_factory", AmiProtocol)
        if config.get("loop") is None:
            # panoramisk falls back to asyncio.get_event_loop() when it needs a
            # loop, which raises outside a running loop from Python 3.14.
            with contextlib.suppress(RuntimeError):
                config["loop"] = asyncio.get_running_loop()
        super().__init__(**config)
        self.counters = AmiStreamCounters()

    def connection_made(self, f: Any) -> None:
        super().connection_made(f)
        if isinstance(self.protocol, AmiProtocol):
            self.protocol.counters = self.counters
            # Bytes may arrive between the connection and this call (the link
            # awaits create_connection first): the reader held them.
            self.protocol.attached()

    def dispatch(self, event: Message) -> list[str]:
        """panoramisk's dispatch with every callback isolated."""
        matches = []
        event.manager = self
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                try:
                    ret = callback(self, event)
                except Exception:
                    self.counters.callback_errors += 1
                    logger.exception("AMI event callback %r failed on %s", callback, event.event)
                    continue
                if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
                    task = asyncio.ensure_future(ret, loop=self.loop)
                    task.add_done_callback(self._callback_done)
        return matches

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.counters.callback_errors += 1
        logger.error("AMI event callback failed", exc_info=task.exception())

    def send_action(  # type: ignore[no-untyped-def]
        self, action: Mapping[str, Any], as_list: bool | None = None, **kwargs: Any
    ):
        try:
            check_action({**action, **kwargs})
        except UnsafeAmiAction as exc:
            # Logged without the hostile value itself.
            logger.warning("AMI action refused before sending: %s", exc)
            raise
        # The object itself goes on: panoramisk re-sends its own Action objects
        # after a reconnect and keeps their futures.
        return super().send_action(action, as_list=as_list, **kwargs)
