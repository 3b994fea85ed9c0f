"""Helpers for tests of config errors: where a text is in a config file, and the
errors loading it gives (each names file:line:field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.config.loader import ConfigError


def line_of(path: Path, text: str, after: str = "") -> int:
    """The 1-based line of the first ``text`` found after the line holding ``after``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if text in lines[i]) + 1


def config_problems(path: Path) -> str:
    """The error text of a config file that must not load."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)
