"""The container files match the systemd units: same user, same folders, same
commands, and every file they copy is in the build context.

No linter for Containerfiles (hadolint) is packaged for Debian, so the files
are read by :func:`instructions` below: one instruction per logical line
(backslash continuations joined, comments and blank lines dropped), the
instruction word first, JSON-form CMD parsed as JSON. Building them is
described in docs/operations.md ("Containers"), with what was tried here.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path

import pytest

from tests.rig.stack import REPO
from tests.test_systemd_units import UNITS, one, read_unit

CONTAINERS = REPO / "asterisk-docker"
HOTLINE_FILE = CONTAINERS / "Dockerfile.hotline"
ASTERISK_FILE = CONTAINERS / "Dockerfile.asterisk"
KNOWN = {"FROM", "ARG", "RUN", "COPY", "ENV", "USER", "WORKDIR", "VOLUME", "EXPOSE", "CMD",
         "STOPSIGNAL", "LABEL", "ENTRYPOINT", "HEALTHCHECK", "SHELL", "ADD"}  # fmt: skip


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; an unknown instruction fails."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued RUN
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        word, _, arguments = text.partition(" ")
        assert word.upper() == word and word in KNOWN, f"{path.name}: unknown {word!r}"
        result.append((word, arguments.strip()))
    assert not pending, f"{path.name}: ends inside a continued line"
    return result


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    starts = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    assert starts, f"{path.name}: no FROM"
    return steps[starts[-1] :]


def last(steps: list[tuple[str, str]], word: str) -> str:
    found = [arguments for name, arguments in steps if name == word]
    assert found, word
    return found[-1]


def _matches(pattern: str, path: str) -> bool:
    """Docker's and podman's matching: the pattern cleaned (a trailing / drops),
    ``*`` within one path segment, ``**`` any number of segments."""
    return _match_parts(pattern.strip("/").split("/"), path.split("/"))


def _match_parts(wanted: list[str], parts: list[str]) -> bool:
    if not wanted:
        return not parts
    if wanted[0] == "**":
        return any(_match_parts(wanted[1:], parts[n:]) for n in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], wanted[0])
        and _match_parts(wanted[1:], parts[1:])
    )


def ignored(relative: str) -> bool:
    """Whether .containerignore leaves ``relative`` out of the build context:
    the last pattern that matches it or a folder above it wins; ``!`` re-includes."""
    patterns = [
        line.strip()
        for line in (REPO / ".containerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if any(_matches(body, prefix) for prefix in prefixes):
            result = not negate
    return result


@pytest.mark.parametrize("path", [HOTLINE_FILE, ASTERISK_FILE])
def test_both_images_run_as_the_hotline_user(path: Path) -> None:
    stage = final_stage(path)
    assert last(stage, "USER") == "hotline"
    # Created with a fixed name in both images, so they share volumes' ownership.
    assert any("useradd --system --gid hotline" in a for w, a in stage if w == "RUN")


@pytest.mark.parametrize("path", [HOTLINE_FILE, ASTERISK_FILE])
def test_every_copied_file_is_in_the_build_context(path: Path) -> None:
    """Both files build from the repository root (docs/operations.md)."""
    for word, arguments in instructions(path):
        if word != "COPY" or "--from=" in arguments:
            continue
        sources = [a for a in shlex.split(arguments) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"{path.name}: COPY {source}: no such file"
            assert not ignored(source), f"{path.name}: COPY {source}: left out by .containerignore"


def test_the_context_leaves_out_the_venv_and_built_prompts_but_not_the_code() -> None:
    assert ignored(".venv") and ignored(".git") and ignored("prompts/bac-tu-liem")
    assert ignored("ivr/__pycache__")
    assert not ignored("prompts/custom") and not ignored("prompts/catalog.yaml")
    assert not ignored("ivr/cli.py") and not ignored("deploy/asterisk/asterisk.conf")
    assert not ignored("prompts/custom/welcome.wav")


def test_the_hotline_image_runs_what_hotline_service_runs() -> None:
    stage = final_stage(HOTLINE_FILE)
    unit = read_unit(UNITS / "hotline.service")
    assert json.loads(last(stage, "CMD")) == shlex.split(one(unit, "ExecStart"))
    config = one(unit, "Environment").split("=", 1)[1]
    assert f"HOTLINE_CONFIG={config}" in last(stage, "ENV")
    assert last(stage, "STOPSIGNAL") == "SIGTERM"
    assert last(stage, "WORKDIR") == one(unit, "WorkingDirectory")
    volumes = json.loads(last(stage, "VOLUME"))
    state = f"/var/lib/{one(unit, 'StateDirectory')}"
    assert sorted(volumes) == sorted([state, *one(unit, "ReadWritePaths").split()])


def test_the_asterisk_image_runs_what_hotline_asterisk_service_runs() -> None:
    stage = final_stage(ASTERISK_FILE)
    unit = read_unit(UNITS / "hotline-asterisk.service")
    command = shlex.split(one(unit, "ExecStart"))
    assert json.loads(last(stage, "CMD")) == command
    conf = command[command.index("-C") + 1]
    copies = [a for w, a in stage if w == "COPY" and a.endswith(conf)]
    assert copies and "deploy/asterisk/asterisk.conf" in copies[0]
    # Built by the same script as `hotline asterisk-install`, into the unit's prefix.
    build = instructions(ASTERISK_FILE)
    assert any("provision-asterisk.sh" in a for w, a in build if w == "RUN")
    assert "HOTLINE_ASTERISK_PREFIX=/opt/asterisk" in last(build, "ENV")
    assert command[0].startswith("/opt/asterisk/")


def test_the_reader_refuses_a_misspelled_instruction(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN true \\\n  && true\nUSR hotline\n")
    with pytest.raises(AssertionError, match="unknown 'USR'"):
        instructions(bad)
