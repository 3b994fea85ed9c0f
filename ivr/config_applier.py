"""Apply a changed config to the running hotline without dropping calls.

It drives Asterisk (files, reloads) and every running part, so it sits beside
the composition root (:mod:`ivr.service`), not in the config package, which
only reads and checks files.

Order: give masked secrets back their saved values (the console never sees
them, see :mod:`ivr.config.secret_mask`) → check the text, refusing changes to
paths, ``config_dir`` and the database (nothing is touched when it has an
error) → save it (mode 0600) with
the previous version kept → the prompts it changed (hours, unit and hotline
names, own texts, a new ward's name, a new hotline's set), built in a thread
so calls up go on, a failure a warning → routing table for the classic AGI fallback →
Asterisk's files → module reloads over AMI → the new config becomes current in
the process's one :class:`~ivr.config.source.ConfigSource`, which every running
part reads (routing decisions, roster, console, cases, retention) and whose
subscribers then react (the queue manager re-applies the roster). Calls already
up are not touched: a reload only changes what new calls see.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.asterisk.reload import ReloadError, reload_modules, write_config_dir
from ivr.config.edit import check_config_text, restart_only_changes, save_config_text
from ivr.config.loader import load_config
from ivr.config.schema import HotlineConfig
from ivr.config.secret_mask import mask_secrets, unmask_secrets
from ivr.config.source import ConfigSource
from ivr.db.models import utc_now
from ivr.prompt_setup import prompt_warnings, update_hotline_prompts
from ivr.routing_table import write_routing_table

if TYPE_CHECKING:
    from ivr.prompts import PromptBuildReport

logger = logging.getLogger(__name__)


class StaleConfigError(RuntimeError):
    """The file changed since the text to apply was made from it (another
    administrator's change in between): nothing was touched."""


@dataclass
class AppliedConfig:
    """What applying did; shown to the administrator and audited."""

    config: HotlineConfig
    backup: Path | None  # the previous version of the file
    rendered: list[Path] = field(default_factory=list)  # Asterisk files that changed
    reloaded: list[str] = field(default_factory=list)  # "node: module"
    restart_needed: list[str] = field(default_factory=list)  # settings a restart takes over
    warnings: list[str] = field(default_factory=list)
    prompts: list[Path] = field(default_factory=list)  # prompt files (re)built for it


class ConfigApplier:
    """Owns the config file of a running ``hotline serve`` (one change at a time)."""

    def __init__(
        self,
        config: HotlineConfig | ConfigSource,
        clock: Callable[[], datetime] = utc_now,
        build_prompts: Callable[[HotlineConfig], PromptBuildReport] = update_hotline_prompts,
    ) -> None:
        self.config_source = ConfigSource.of(config)
        if self.config_source.current.source is None:
            raise ValueError("a config read from a file is needed to apply changes")
        self.clock = clock
        self.build_prompts = build_prompts  # blocking (espeak-ng): called in a thread
        self._lock = asyncio.Lock()

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    @property
    def source(self) -> Path:
        """The config file (the config itself is in ``config_source``)."""
        path = self.config.source
        assert path is not None
        return path

    def current_text(self) -> str:
        """The file as saved, secrets included: never send it to a browser."""
        return self.source.read_text(encoding="utf-8")

    def masked_text(self) -> str:
        """The file with every secret masked: what the console shows."""
        return mask_secrets(self.current_text())

    async def apply_text(self, text: str, *, base_sha256: str | None = None) -> AppliedConfig:
        """Check ``text``, save it as the config file and apply it. Secrets
        still masked keep their saved values. Raises
        :class:`~ivr.config.loader.ConfigError` (file, line, field) and then
        leaves the file and everything running untouched. With ``base_sha256``
        (the SHA-256 of the file ``text`` was made from) a file changed since
        raises :class:`StaleConfigError`, checked under the lock so two
        previews of the same version cannot both apply."""
        async with self._lock:
            stored = await asyncio.to_thread(self.current_text)
            if (
                base_sha256 is not None
                and hashlib.sha256(stored.encode("utf-8")).hexdigest() != base_sha256
            ):
                raise StaleConfigError("the config changed since this change was prepared")
            text = unmask_secrets(text, stored, self.source)
            new = await asyncio.to_thread(check_config_text, self.source, text, self.config)
            history = new.resolve_path(new.paths.config_history)
            backup = await asyncio.to_thread(
                save_config_text, self.source, text, history, self.clock()
            )
            logger.info("config saved; the previous version is %s", backup)
            return await self._take_over(new, backup)

    async def reload_file(self) -> AppliedConfig:
        """Re-read the file (edited by hand; SIGHUP) and apply it."""
        async with self._lock:
            new = await asyncio.to_thread(load_config, self.source)
            return await self._take_over(new, None)

    async def _take_over(self, new: HotlineConfig, backup: Path | None) -> AppliedConfig:
        result = AppliedConfig(new, backup, restart_needed=restart_only_changes(self.config, new))
        # First the prompts, so the first call under the new config hears its
        # texts (a changed schedule's hours, a new ward's name). espeak-ng runs in
        # a thread: the FastAGI server shares this loop. A prompt that cannot be
        # built keeps its old file and becomes a warning; the config still applies.
        prompts = await asyncio.to_thread(self.build_prompts, new)
        result.prompts = prompts.built
        result.warnings.extend(prompt_warnings(new, prompts))
        await asyncio.to_thread(write_routing_table, new)
        config_dir = new.asterisk.config_dir
        if config_dir is None:
            result.warnings.append(
                "asterisk.config_dir is not set: render Asterisk's files with "
                "`hotline asterisk-config` and reload Asterisk yourself"
            )
        else:
            result.rendered = await asyncio.to_thread(
                write_config_dir, new, new.resolve_path(config_dir)
            )
            try:
                result.reloaded = await reload_modules(new)
            except (ReloadError, OSError, TimeoutError) as exc:
                logger.warning("Asterisk was not reloaded: %s", exc)
                result.warnings.append(f"Asterisk was not reloaded: {exc}")
        # Last: the running parts see the new config once Asterisk has it.
        result.warnings.extend(await self.config_source.replace(new))
        return result
