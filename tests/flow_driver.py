"""Drives a call flow with scripted caller input, recording every step (no PBX)."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ivr.flow.steps import (
    CaseInfo,
    CasesFound,
    Collect,
    FindCases,
    Input,
    Mark,
    Play,
    QueueLoad,
    QueueLoadInfo,
)

T = TypeVar("T")


@dataclass
class ScriptedCaller:
    """Answers Play with ``barge_in`` keys (once) and Collect with ``answers`` in order.

    Running out of answers means the caller hung up.
    """

    answers: list[Input]
    barge_in: str = ""
    cases: dict[str, CaseInfo] = field(default_factory=dict)  # by code
    caller_cases: list[CaseInfo] = field(default_factory=list)  # open cases of the caller
    # How busy queues are; by default an agent is free, so nothing is announced.
    queue_load: QueueLoadInfo = field(default_factory=lambda: QueueLoadInfo(0, 1, 1, 0))
    steps: list[Play | Collect | Mark | FindCases] = field(default_factory=list)

    def run(self, flow: Generator[Any, Any, T]) -> T:
        answers = iter(self.answers)
        step = flow.send(None)
        while True:
            self.steps.append(step)
            reply: Input | None
            if isinstance(step, Mark):
                reply = None
            elif isinstance(step, QueueLoad):
                reply = self.queue_load
            elif isinstance(step, FindCases):
                if step.code is not None:
                    found = self.cases.get(step.code)
                    reply = CasesFound((found,) if found else ())
                else:
                    reply = CasesFound(tuple(self.caller_cases))
            elif isinstance(step, Play):
                barge = step.interruptible and self.barge_in
                reply = Input.keys(self.barge_in) if barge else Input.none()
                if step.interruptible:
                    self.barge_in = ""
            elif step.already and len(step.already) >= step.max_digits:
                reply = Input.keys(step.already)  # as the AGI executor: nothing more to read
            else:
                reply = next(answers, Input.hangup())
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                return stop.value

    @property
    def prompts_heard(self) -> list[str]:
        heard: list[str] = []
        for step in self.steps:
            if isinstance(step, Play):
                heard += step.prompts
            elif isinstance(step, Collect) and not step.already:
                heard.append(step.prompt)
        return heard

    @property
    def marks(self) -> list[str]:
        return [step.step for step in self.steps if isinstance(step, Mark)]


def keys(*sequence: str) -> list[Input]:
    return [Input.keys(s) if s else Input.none() for s in sequence]


def as_list(values: Iterable[str]) -> list[str]:
    return list(values)
