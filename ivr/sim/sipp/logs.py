"""SIPp's event lines (``<log>`` actions stamped by SIPp's own clock) and the
tails of its log files for failure messages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr


@dataclass
class SippEvent:
    kind: str
    call_id: str
    call_number: int
    at: float
    extra: str


_EVENT_MARK = "HL|"


def log_event(kind: str, extra: str = "") -> str:
    """Actions logging one event line, stamped by SIPp's clock."""
    message = f"{_EVENT_MARK}{kind}|[call_id]|[call_number]|[$ts]|[$tus]|{extra}"
    return f'<gettimeofday assign_to="ts,tus"/><log message={quoteattr(message)}/>'


def _parse_events(text: str) -> list[SippEvent]:
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
            events.append(SippEvent(kind, call_id, int(number), at, extra))
        except ValueError:
            continue
    return events


class LogTail:
    """Incremental reader of a SIPp log file (SIPp flushes each ``<log>`` line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.events: list[SippEvent] = []

    def poll(self) -> list[SippEvent]:
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


def logs_text(files: Iterable[Path], limit: int = 20000) -> str:
    parts = []
    for path in files:
        text = _tail(path, limit).strip()
        if text:
            parts.append(f"==== {path.name} ====\n{text}")
    return "\n".join(parts)
