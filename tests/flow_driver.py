"""Drives a call flow through the real AGI executor (:func:`execute_flow`) against
a fake Asterisk (:class:`~tests.rig.agi_peer.AgiPeer`) with scripted caller
input, recording what the flow asked for and what the caller heard (no PBX)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ivr.agi.channel import AgiChannel
from ivr.agi.executor import PromptFiles, execute_flow
from ivr.flow.steps import CaseInfo, FindCases, Input, QueueLoadInfo
from tests.rig.agi_peer import AgiPeer

T = TypeVar("T")

_FUNCTION = re.compile(r"\$\{(\w+)(?:\((.*)\))?\}")


class EveryPrompt(PromptFiles):
    """Every prompt is installed, and its "path" is its name: what the caller
    heard reads as prompt names (``en/<name>`` once the caller chose English)."""

    def __init__(
        self, root: Path = Path("prompts"), hotline_id: str = "hotline", language: str = "vi"
    ) -> None:
        super().__init__(root, hotline_id, language)

    def path(self, name: str) -> str | None:
        return name if self.language == "vi" else f"{self.language}/{name}"


@dataclass
class ScriptedCaller:
    """Presses ``barge_in`` keys during the first playback that allows it, and
    answers each prompt that reads keys with ``answers`` in order.

    Running out of answers means the caller hung up.
    """

    answers: list[Input]
    barge_in: str = ""
    cases: dict[str, CaseInfo] = field(default_factory=dict)  # by code
    caller_cases: list[CaseInfo] = field(default_factory=list)  # open cases of the caller
    # How busy queues are; by default an agent is free, so nothing is announced.
    queue_load: QueueLoadInfo = field(default_factory=lambda: QueueLoadInfo(0, 1, 1, 0))
    steps: list[Any] = field(default_factory=list)  # what the flow yielded, in order
    marks: list[str] = field(default_factory=list)  # where the executor said the caller is
    peer: AgiPeer | None = None  # the AGI session of the last run

    def run(self, flow: Generator[Any, Any, T]) -> T:
        """Run ``flow`` to its end (for synchronous tests)."""
        return asyncio.run(self.play(flow))

    async def play(self, flow: Generator[Any, Any, T]) -> T:
        self.peer = AgiPeer(
            {"agi_uniqueid": "1795420947.1"},
            self.answers,
            barge_in=self.barge_in,
            evaluate=self._queue_function,
        )
        return await execute_flow(
            self._recorded(flow), AgiChannel(self.peer), EveryPrompt(), self._mark, self
        )

    def _recorded(self, flow: Generator[Any, Any, T]) -> Generator[Any, Any, T]:
        """``flow`` unchanged, with each step it yields noted in :attr:`steps`."""
        step = flow.send(None)
        while True:
            self.steps.append(step)
            reply = yield step
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                result: T = stop.value
                return result

    async def _mark(self, step: str) -> None:
        self.marks.append(step)

    async def find(self, request: FindCases) -> tuple[CaseInfo, ...]:
        """The case directory the executor asks (see ``CaseDirectory``)."""
        if request.code is not None:
            found = self.cases.get(request.code)
            return (found,) if found else ()
        return tuple(self.caller_cases)

    def _queue_function(self, expression: str) -> str | None:
        """Asterisk's queue functions, as ``queue_load`` reads them, for any queue."""
        match = _FUNCTION.fullmatch(expression)
        if match is None:
            return None
        name, args = match.group(1), (match.group(2) or "").split(",")
        load = self.queue_load
        if name == "QUEUE_WAITING_COUNT":
            return str(load.waiting)
        if name == "QUEUE_MEMBER" and args[-1] == "free":
            return str(load.ready_agents)
        if name == "QUEUE_MEMBER" and args[-1] == "logged":
            return str(load.agents)
        if name == "QUEUEHOLDTIME":
            return str(load.average_hold_seconds)
        if name == "QUEUE_VARIABLES":
            return ""
        return None

    @property
    def prompts_heard(self) -> list[str]:
        """Prompts played to the caller, in order (a barge-in cuts a Play short)."""
        return list(self.peer.played) if self.peer is not None else []


def keys(*sequence: str) -> list[Input]:
    return [Input.keys(s) if s else Input.none() for s in sequence]
