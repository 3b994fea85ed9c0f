"""``channels.attachments`` (issue 14): defaults when absent, and a bad limit
refused with the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ivr.config import load_config
from ivr.config.channels import AttachmentLimits
from tests.config_checks import config_problems, line_of
from tests.rig.stack import EXAMPLE


def write_config(folder: Path, edit: Any = None) -> Path:
    """The example config (no database is opened: a unit test), edited."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    if edit is not None:
        edit(data)
    path = folder / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_limits_default_when_the_section_is_absent(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    limits = config.channels.attachments
    assert limits == AttachmentLimits()
    assert (limits.image_max_bytes, limits.video_max_bytes, limits.pdf_max_bytes) == (
        10 * 1024 * 1024, 50 * 1024 * 1024, 10 * 1024 * 1024,
    )  # fmt: skip
    assert (limits.max_per_message, limits.thumbnail_pixels) == (5, 320)


def test_a_bad_limit_names_file_line_and_field(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["channels"] = {"attachments": {"video_max_bytes": 0, "max_per_message": 5}}

    path = write_config(tmp_path, edit)
    error = config_problems(path)
    line = line_of(path, "video_max_bytes")
    assert f"{path}:{line}: channels.attachments.video_max_bytes" in error
