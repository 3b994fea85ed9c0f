"""Runs a flow generator against an AGI channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ivr.agi.channel import ALL_KEYS, AgiChannel, CallerHungUp
from ivr.flow.call_flow import Reply
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
    SetLanguage,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


class PromptFiles:
    """Maps prompt names to the paths Asterisk plays (absolute, no extension):
    ``<root>/<hotline_id>/<language>/<name>``, one folder per hotline.

    A missing prompt is logged once and skipped: silence is better than a call
    that breaks because a recording was not installed.
    """

    def __init__(self, root: Path, hotline_id: str, language: str) -> None:
        self.root, self.hotline_id, self.language = root, hotline_id, language
        self._folder = root / hotline_id / language
        self._known: dict[str, str | None] = {}
        # The same hotline's folders in other languages, made once and shared.
        self._languages: dict[str, PromptFiles] = {language: self}

    def in_language(self, language: str | None) -> PromptFiles:
        """The same hotline's prompts in ``language`` (None or the same: these)."""
        if language is None or language == self.language:
            return self
        if language not in self._languages:
            other = type(self)(self.root, self.hotline_id, language)
            other._languages = self._languages
            self._languages[language] = other
        return self._languages[language]

    def path(self, name: str) -> str | None:
        if name not in self._known:
            base = self._folder / name
            found = any(base.with_suffix(ext).exists() for ext in (".wav", ".sln", ".gsm", ".ulaw"))
            if not found:
                logger.warning("prompt %s is missing in %s", name, self._folder)
            self._known[name] = str(base) if found else None
        return self._known[name]


class CaseDirectory(Protocol):
    """What the flow may ask about cases (implemented over ivr.cases)."""

    async def find(self, request: FindCases) -> tuple[CaseInfo, ...]: ...


class NoCases:
    """For deployments or tests without case records: nothing is ever found."""

    async def find(self, request: FindCases) -> tuple[CaseInfo, ...]:
        return ()


async def execute_flow(
    flow: Generator[Any, Reply, T],
    channel: AgiChannel,
    prompts: PromptFiles,
    on_mark: Callable[[str], Awaitable[None]] | None = None,
    cases: CaseDirectory | None = None,
) -> T:
    """Drive ``flow`` on ``channel`` and return what the flow returns.

    A :class:`SetLanguage` step switches ``prompts`` to that language's folder for
    the rest of the flow and sets ``CHANNEL(language)``, so the prompts the
    dialplan plays later (voicemail, queue) follow the caller's choice."""
    directory = cases or NoCases()
    reply: Reply = None
    step = flow.send(None)
    while True:
        try:
            if isinstance(step, Mark):
                reply = None
                if on_mark is not None:
                    await on_mark(step.step)
            elif isinstance(step, Play):
                reply = await _play(step, channel, prompts)
            elif isinstance(step, Collect):
                reply = await _collect(step, channel, prompts)
            elif isinstance(step, FindCases):
                reply = CasesFound(await directory.find(step))
            elif isinstance(step, QueueLoad):
                reply = await queue_load(channel, step.queue)
            elif isinstance(step, SetLanguage):
                reply = None
                prompts = prompts.in_language(step.language)
                await channel.set_variable("CHANNEL(language)", step.language)
            else:  # pragma: no cover - the flow yields only these kinds
                raise TypeError(f"unknown step {step!r}")
        except CallerHungUp:
            reply = Input.hangup()
        try:
            step = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result


async def queue_load(channel: AgiChannel, queue: str) -> QueueLoadInfo:
    """How busy ``queue`` is, from Asterisk's own queue functions."""

    async def number(expression: str) -> int:
        text = await channel.get_full_variable(expression)
        return int(text) if text.isdigit() else 0

    await channel.get_full_variable(f"${{QUEUE_VARIABLES({queue})}}")  # sets QUEUEHOLDTIME
    return QueueLoadInfo(
        waiting=await number(f"${{QUEUE_WAITING_COUNT({queue})}}"),
        ready_agents=await number(f"${{QUEUE_MEMBER({queue},free)}}"),
        agents=await number(f"${{QUEUE_MEMBER({queue},logged)}}"),
        average_hold_seconds=await number("${QUEUEHOLDTIME}"),
    )


async def _play(step: Play, channel: AgiChannel, prompts: PromptFiles) -> Input:
    escape = ALL_KEYS if step.interruptible else ""
    for name in step.prompts:
        path = prompts.path(name)
        if path is None:
            continue
        key = await channel.stream_file(path, escape)
        if key:
            return Input.keys(key)
    return Input.none()


async def _collect(step: Collect, channel: AgiChannel, prompts: PromptFiles) -> Input:
    timeout_ms = step.timeout_seconds * 1000
    if step.already:
        digits = step.already
        while len(digits) < step.max_digits and not digits.endswith("#"):
            key = await channel.wait_for_digit(timeout_ms)
            if not key:
                break
            digits += key
        return Input.keys(digits)
    path = prompts.path(step.prompt) or "silence/1"
    return Input.keys(await channel.get_data(path, timeout_ms, step.max_digits))
