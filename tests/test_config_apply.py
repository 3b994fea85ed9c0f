"""Applying an edited config: checked before anything is touched, saved whole with
the old version kept, handed to the running parts, restart-only changes named.
(With a real Asterisk and browser: tests/test_admin_config_e2e.py.)"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.config import ConfigError, HotlineConfig, load_config
from ivr.config.edit import restart_only_changes, save_config_text
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.prompts import PromptBuildReport

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"
NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


class Follower:
    """A running part: remembers the configs it was given."""

    def __init__(self) -> None:
        self.received: list[HotlineConfig] = []

    async def replace_config(self, config: HotlineConfig) -> None:
        self.received.append(config)


def no_prompts(config: HotlineConfig) -> PromptBuildReport:
    """Prompts are not what these tests apply (tests/test_prompts_on_apply.py is)."""
    return PromptBuildReport()


def following(config: HotlineConfig, *followers: Follower) -> ConfigSource:
    """A config source the followers subscribe to (as running parts do)."""
    source = ConfigSource(config)
    for follower in followers:
        source.subscribe(follower.replace_config)
    return source


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "routing_table: ../var/routing.json",
        f"routing_table: {tmp_path / 'routing.json'}\n  config_history: {tmp_path / 'history'}",
    )
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_save_keeps_the_old_version_and_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text("old: 1\n", encoding="utf-8")
    os.chmod(path, 0o644)
    backup = save_config_text(path, "new: 2\n", tmp_path / "history", NOW)
    assert path.read_text(encoding="utf-8") == "new: 2\n"
    assert backup is not None and backup.read_text(encoding="utf-8") == "old: 1\n"
    assert backup.name == "hotline-20261123T083000.000000Z.yaml"
    # The file and its history hold secrets: the service user's only.
    assert path.stat().st_mode & 0o777 == 0o600
    assert backup.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "history").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history", "hotline.yaml"]


async def test_a_wrong_text_names_file_line_and_field_and_touches_nothing(
    config_file: Path,
) -> None:
    config = load_config(config_file)
    follower = Follower()
    applier = ConfigApplier(
        following(config, follower), clock=lambda: NOW, build_prompts=no_prompts
    )
    original = config_file.read_text(encoding="utf-8")
    wrong = original.replace('shortcut: "03"', 'shortcut: "3x"')
    with pytest.raises(ConfigError) as caught:
        await applier.apply_text(wrong)
    [problem] = caught.value.problems
    assert problem.file == config_file
    assert problem.line == wrong.splitlines().index('            shortcut: "3x"') + 1
    assert problem.field.endswith(".shortcut")
    assert config_file.read_text(encoding="utf-8") == original
    assert follower.received == [] and applier.config is config
    assert not (config_file.parent / "history").exists()


async def test_a_valid_text_is_saved_and_given_to_every_running_part(config_file: Path) -> None:
    config = load_config(config_file)
    first, second = Follower(), Follower()
    applier = ConfigApplier(
        following(config, first, second), clock=lambda: NOW, build_prompts=no_prompts
    )
    original = config_file.read_text(encoding="utf-8")
    edited = original.replace('shortcut: "03"', 'shortcut: "33"')
    applied = await applier.apply_text(edited)
    assert config_file.read_text(encoding="utf-8") == edited
    assert applied.backup is not None and applied.backup.read_text(encoding="utf-8") == original
    assert [c.area("dong-ngac").shortcut for c in first.received + second.received] == ["33"] * 2
    assert applier.config is applied.config
    # No Asterisk folder in this config: saying so instead of pretending.
    assert applied.rendered == [] and applied.reloaded == []
    assert any("config_dir" in warning for warning in applied.warnings)
    assert applied.restart_needed == []


async def test_a_file_edited_by_hand_is_applied_on_reload(config_file: Path) -> None:
    follower = Follower()
    applier = ConfigApplier(following(load_config(config_file), follower), build_prompts=no_prompts)
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace("port: 5060}", "port: 5062}", 1), encoding="utf-8")
    applied = await applier.reload_file()
    assert applied.backup is None
    assert follower.received[0].asterisk.sip.port == 5062
    assert applied.restart_needed == ["asterisk.sip"]


def test_restart_only_changes_name_the_sockets_and_the_database(config_file: Path) -> None:
    old = load_config(config_file)
    new = old.model_copy(
        update={"database": old.database.model_copy(update={"url": "sqlite:///other.db"})}
    )
    assert restart_only_changes(old, new) == ["database"]
    assert restart_only_changes(old, old) == []
