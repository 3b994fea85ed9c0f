"""A config applied while running builds the prompts it changed before it becomes
current (issue 12): a schedule changed in the console is said with its new hours,
a ward added by an areas import has its name to read back. Incremental, off the
event loop, and a synthesizer that fails leaves the old files and the config still
applies with a warning naming the prompt. Integration tier: espeak-ng runs.

Every test starts from the example's prompts already built (copied with their
manifests), so only what the edit changes is synthesized: two files or so."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import ivr.prompts
import ivr.service
from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.prompt_setup import build_hotline_prompts
from ivr.prompts import MANIFEST_NAME, PromptBuildError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
HOTLINE = "bac-tu-liem"
LANGUAGES = ("vi", "en")
NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
SATURDAY = 'sat: ["08:00-11:30"]'
SATURDAY_SHORTER = 'sat: ["08:00-10:30"]'
LAST_WARD = """            shortcut: "13"
            chairman: tel:0900000113@pstn        # Chủ tịch UBND phường (di động)
            fallbacks:
              - tel:0900000213@pstn              # Phó Chủ tịch
              - phone:vp-xuan-tao                    # Văn phòng UBND phường
              - queue:operator
"""
NEW_WARD = """          - code: phu-thuong
            name: Phường Phú Thượng
            shortcut: "14"
            chairman: tel:0900000114@pstn
"""


class WatchedSource(ConfigSource):
    """A config source that notes, at the moment a config becomes current, what
    ``look`` sees on disk (the prompts must already be there)."""

    def __init__(self, config: HotlineConfig, look: Callable[[], Any]) -> None:
        super().__init__(config)
        self.look = look
        self.seen_when_current: list[Any] = []

    async def replace(self, config: HotlineConfig) -> list[str]:
        self.seen_when_current.append(self.look())
        return await super().replace(config)


@pytest.fixture
def prompts(tmp_path: Path, built_prompts: Path) -> Path:
    """The example's prompts as `hotline prompts build` left them (manifests too)."""
    root = tmp_path / "prompts"
    shutil.copytree(built_prompts / HOTLINE, root / HOTLINE)
    shutil.copytree(built_prompts / "moh", root / "moh")
    return root


@pytest.fixture
def config_file(tmp_path: Path, prompts: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
        ("  prompts: ../prompts\n", f"  prompts: {prompts}\n"),
        (
            "routing_table: ../var/routing.json",
            f"routing_table: {tmp_path / 'routing.json'}\n  config_history: {tmp_path / 'history'}",
        ),
        ("url: sqlite:///../var/hotline.db", f"url: sqlite:///{tmp_path}/h.db"),
        (
            "timezone: Asia/Ho_Chi_Minh\n",
            "timezone: Asia/Ho_Chi_Minh\n"
            f"web: {{cookie_secure: false, secret_file: {tmp_path / 'web-secret'}}}\n",
        ),
        (SATURDAY, SATURDAY),
        (LAST_WARD, LAST_WARD),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def folder(prompts: Path, language: str) -> Path:
    return prompts / HOTLINE / language


def manifest(prompts: Path, language: str) -> dict[str, str]:
    return json.loads((folder(prompts, language) / MANIFEST_NAME).read_text(encoding="utf-8"))


def snapshot(prompts: Path) -> dict[str, tuple[int, bytes]]:
    """Every prompt file of the hotline: modification time (ns) and content."""
    return {
        f"{language}/{path.name}": (path.stat().st_mtime_ns, path.read_bytes())
        for language in LANGUAGES
        for path in sorted(folder(prompts, language).glob("*.wav"))
    }


def stray_files(prompts: Path) -> list[str]:
    """Anything a build leaves beside the prompts besides them, the manifest and its lock."""
    return [
        f"{language}/{path.name}"
        for language in LANGUAGES
        for path in folder(prompts, language).iterdir()
        if path.suffix != ".wav" and path.name not in (MANIFEST_NAME, ivr.prompts.LOCK_NAME)
    ]


def prompt_warnings(warnings: list[str]) -> list[str]:
    return [warning for warning in warnings if "prompt" in warning]


async def test_a_changed_schedule_rebuilds_the_after_hours_prompt_and_nothing_else(
    config_file: Path, prompts: Path
) -> None:
    before = snapshot(prompts)
    manifests_before = {language: manifest(prompts, language) for language in LANGUAGES}
    source = WatchedSource(load_config(config_file), lambda: snapshot(prompts))
    applier = ConfigApplier(source, clock=lambda: NOW)
    edited = config_file.read_text(encoding="utf-8").replace(SATURDAY, SATURDAY_SHORTER)

    applied = await applier.apply_text(edited)

    assert applier.config is applied.config
    assert prompt_warnings(applied.warnings) == []
    rebuilt = {f"{language}/out_of_hours.wav" for language in LANGUAGES}
    after = snapshot(prompts)
    # Already rebuilt when the new config became current: the first call hears 10:30.
    [when_current] = source.seen_when_current
    assert when_current == after
    for name in rebuilt:
        assert after[name][1] != before[name][1], name
    # Every other prompt is untouched, file and manifest entry alike.
    assert {k: v for k, v in after.items() if k not in rebuilt} == {
        k: v for k, v in before.items() if k not in rebuilt
    }
    for language in LANGUAGES:
        now = manifest(prompts, language)
        old = manifests_before[language]
        assert now["out_of_hours"] != old["out_of_hours"]
        assert {k: v for k, v in now.items() if k != "out_of_hours"} == {
            k: v for k, v in old.items() if k != "out_of_hours"
        }
    # What was built is reported (shown to the administrator, audited).
    assert sorted(applied.prompts) == sorted(prompts / HOTLINE / name for name in rebuilt)


async def test_a_ward_added_has_its_name_to_read_back_before_the_config_is_current(
    config_file: Path, prompts: Path
) -> None:
    names = [folder(prompts, language) / "area_phu-thuong.wav" for language in LANGUAGES]
    assert not any(path.exists() for path in names)
    source = WatchedSource(load_config(config_file), lambda: [p.exists() for p in names])
    applier = ConfigApplier(source, clock=lambda: NOW)
    # What `hotline areas import` + SIGHUP does: the file gains a unit, then is re-read.
    config_file.write_text(
        config_file.read_text(encoding="utf-8").replace(LAST_WARD, LAST_WARD + NEW_WARD),
        encoding="utf-8",
    )

    applied = await applier.reload_file()

    assert applier.config.area("phu-thuong") is not None
    assert source.seen_when_current == [[True, True]]
    assert sorted(applied.prompts) == sorted(names)
    assert prompt_warnings(applied.warnings) == []
    for language in LANGUAGES:
        assert "area_phu-thuong" in manifest(prompts, language)


def failing_espeak(bin_dir: Path) -> Path:
    """An espeak-ng that writes half a file where it was told, then fails."""
    bin_dir.mkdir()
    script = bin_dir / "espeak-ng"
    script.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do [ "$1" = -w ] && out="$2"; shift; done\n'
        'printf RIFF > "$out"\n'
        "echo 'cannot speak this text' >&2\n"
        "exit 1\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


async def test_a_failing_synthesizer_applies_the_config_with_a_warning_and_keeps_the_old_file(
    config_file: Path, prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PATH", f"{failing_espeak(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"
    )
    before = snapshot(prompts)
    manifests_before = {language: manifest(prompts, language) for language in LANGUAGES}
    applier = ConfigApplier(load_config(config_file), clock=lambda: NOW)
    edited = config_file.read_text(encoding="utf-8").replace(SATURDAY, SATURDAY_SHORTER)

    applied = await applier.apply_text(edited)

    # The phone side is not held back by a prompt: the config is current.
    assert applier.config is applied.config
    assert applier.config.schedules["office"].weekly.sat[0].end.hour == 10
    warnings = prompt_warnings(applied.warnings)
    for language in LANGUAGES:
        assert any(
            f"{HOTLINE}/{language}/out_of_hours" in w and "cannot speak this text" in w
            for w in warnings
        ), warnings
    assert applied.prompts == []
    # Nothing half-written: the old files, the old manifests (so the next build
    # retries), no temporary file left behind.
    assert snapshot(prompts) == before
    assert {language: manifest(prompts, language) for language in LANGUAGES} == manifests_before
    assert stray_files(prompts) == []


async def test_a_new_hotline_has_its_whole_set_before_the_config_is_current(
    config_file: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydub.generators import Sine

    from tests.test_tenancy import B, add_second_hotline

    spoken: list[str] = []

    def tone(parts: Any, name: str) -> Any:
        # A whole set is ~80 prompts a language: a tone per prompt keeps this test
        # quick; the tests above run espeak-ng itself.
        spoken.append(name)
        return Sine(440, sample_rate=8000).to_audio_segment(duration=200)

    monkeypatch.setattr(ivr.prompts, "_synthesize", tone)
    new_folders = [prompts / B / language for language in LANGUAGES]
    source = WatchedSource(
        load_config(config_file),
        lambda: [{p.name for p in f.glob("*.wav")} for f in new_folders],
    )
    applier = ConfigApplier(source, clock=lambda: NOW)
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    add_second_hotline(data)
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")

    applied = await applier.reload_file()

    assert applier.config.hotline(B) is not None
    assert prompt_warnings(applied.warnings) == []
    [when_current] = source.seen_when_current
    for names in when_current:
        assert {"greeting.wav", "main_menu.wav", "out_of_hours.wav", "beep.wav"} <= names
        assert "area_xuan-tao.wav" in names  # its ward menus can read a unit back
    # Only the new hotline's prompts were made: the first one's texts did not change.
    assert applied.prompts and all(path.is_relative_to(prompts / B) for path in applied.prompts)
    assert len(spoken) == len([p for p in applied.prompts if p.name != "beep.wav"])


async def test_synthesis_runs_off_the_event_loop_while_calls_are_served(
    config_file: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_synthesize = ivr.prompts._synthesize
    loop_ran: list[bool] = []

    def synthesize_if_the_loop_runs(*args: Any, **kwargs: Any) -> Any:
        # The loop (the FastAGI server's, in `hotline serve`) must answer while a
        # prompt is synthesized; on the loop's own thread it never could.
        answered = threading.Event()
        loop.call_soon_threadsafe(answered.set)
        loop_ran.append(answered.wait(timeout=10))
        if not loop_ran[-1]:
            raise PromptBuildError("the event loop was blocked during synthesis")
        return real_synthesize(*args, **kwargs)

    monkeypatch.setattr(ivr.prompts, "_synthesize", synthesize_if_the_loop_runs)
    applier = ConfigApplier(load_config(config_file), clock=lambda: NOW)
    edited = config_file.read_text(encoding="utf-8").replace(SATURDAY, SATURDAY_SHORTER)

    applied = await applier.apply_text(edited)

    assert loop_ran == [True, True]  # out_of_hours, in vi and en
    assert prompt_warnings(applied.warnings) == []
    assert len(applied.prompts) == 2


def test_two_builds_of_one_folder_at_once_keep_each_others_manifest_entries(
    config_file: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = config_file.read_text(encoding="utf-8")
    changed_hours = config_file.with_name("hours.yaml")
    changed_hours.write_text(text.replace(SATURDAY, SATURDAY_SHORTER), encoding="utf-8")
    new_ward = config_file.with_name("ward.yaml")
    new_ward.write_text(text.replace(LAST_WARD, LAST_WARD + NEW_WARD), encoding="utf-8")
    real_synthesize = ivr.prompts._synthesize
    other: list[threading.Thread] = []

    def synthesize_while_another_build_runs(parts: Any, name: str) -> Any:
        # The first build, midway through the Vietnamese folder, lets a second one
        # (another apply, `hotline prompts build`) run; without a lock on the
        # folder it rewrites the manifest under the first one's feet.
        if not other and threading.current_thread() is first:
            other.append(threading.Thread(target=build_hotline_prompts, args=(ward_config,)))
            other[0].start()
            other[0].join(timeout=2)  # it waits for the folder, or is done
        return real_synthesize(parts, name)

    monkeypatch.setattr(ivr.prompts, "_synthesize", synthesize_while_another_build_runs)
    ward_config = load_config(new_ward)
    first = threading.Thread(target=build_hotline_prompts, args=(load_config(changed_hours),))
    first.start()
    first.join(timeout=120)
    assert other, "the first build synthesized nothing"
    other[0].join(timeout=120)
    assert not first.is_alive() and not other[0].is_alive()

    for language in LANGUAGES:
        assert "area_phu-thuong" in manifest(prompts, language), language
        assert (folder(prompts, language) / "area_phu-thuong.wav").is_file()
    assert stray_files(prompts) == []


async def test_serve_builds_what_the_config_changed_before_it_takes_calls(
    config_file: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file was edited while the service was stopped: its first call must
    # already hear the new hours, as after `hotline prompts build`.
    config_file.write_text(
        config_file.read_text(encoding="utf-8").replace(SATURDAY, SATURDAY_SHORTER),
        encoding="utf-8",
    )
    config = load_config(config_file)
    before = {language: manifest(prompts, language)["out_of_hours"] for language in LANGUAGES}
    seen_at_start: list[dict[str, str]] = []

    class Stopped:
        async def close(self, drain_seconds: float = 0.0, hurry: Any = None) -> None:
            return None

    async def start_services(*args: Any, **kwargs: Any) -> Stopped:
        seen_at_start.append(
            {language: manifest(prompts, language)["out_of_hours"] for language in LANGUAGES}
        )
        return Stopped()

    async def no_workers(*args: Any) -> list[Any]:
        return []

    monkeypatch.setattr(ivr.service, "start_services", start_services)
    monkeypatch.setattr(ivr.service, "start_worker_processes", no_workers)
    monkeypatch.setattr(ivr.service, "stop_worker_processes", no_workers)
    stop = asyncio.Event()
    stop.set()
    await ivr.service.serve(config, stop)

    [at_start] = seen_at_start
    assert all(at_start[language] != before[language] for language in LANGUAGES)


ADMIN_PASSWORD = "mật-khẩu-quản-trị-đủ-dài"


async def test_the_console_shows_and_audits_the_prompts_an_edit_built(
    config_file: Path, prompts: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import select

    from ivr.audit import AuditEntry
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.web.app import create_app
    from ivr.web.store import UserStore

    applier = ConfigApplier(load_config(config_file), clock=lambda: NOW)
    config = applier.config
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    UserStore(sessions).add("quantri", ADMIN_PASSWORD, "admin")
    client = TestClient(TestServer(create_app(config, sessions, secret=b"k" * 32, applier=applier)))
    await client.start_server()
    try:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', await login.text())
        assert token is not None
        signed_in = await client.post(
            "/login",
            data={"username": "quantri", "password": ADMIN_PASSWORD,
                  "csrf_token": token.group(1), "next": "/"},
            allow_redirects=False,
        )  # fmt: skip
        assert signed_in.status == 302, await signed_in.text()
        csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
        shown = (await (await client.get("/api/v1/config")).json())["text"]
        page = await client.post(
            "/admin/config",
            data={"text": shown.replace(SATURDAY, SATURDAY_SHORTER), "csrf_token": csrf},
        )
        html = await page.text()
        assert page.status == 200, html
        # Said in the administrator's language, with what was rebuilt.
        assert "Lời thông báo thoại đã tạo" in html
        assert '<span id="config-prompts">2</span> · out_of_hours' in html
        # Through the API: the files themselves.
        answer = await client.post(
            "/api/v1/config",
            json={"text": shown.replace(SATURDAY, 'sat: ["08:00-09:30"]')},
            headers={"X-CSRF-Token": csrf},
        )
        assert answer.status == 200, await answer.text()
        assert sorted((await answer.json())["prompts"]) == sorted(
            str(folder(prompts, language) / "out_of_hours.wav") for language in LANGUAGES
        )
    finally:
        await client.close()
    with sessions() as session:
        details = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "config_apply")
        ).all()
    engine.dispose()
    assert len(details) == 2 and all("2 prompts built" in detail for detail in details)


def test_prompts_build_lists_what_it_could_not_build_and_exits_1(
    config_file: Path,
    prompts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ivr.cli import main as hotline

    espeak_dir = failing_espeak(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{espeak_dir}{os.pathsep}{os.environ['PATH']}")
    config_file.write_text(
        config_file.read_text(encoding="utf-8").replace(SATURDAY, SATURDAY_SHORTER),
        encoding="utf-8",
    )
    before = snapshot(prompts)

    assert hotline(["--config", str(config_file), "prompts", "build"]) == 1

    errors = capsys.readouterr().err
    for language in LANGUAGES:
        assert f"{HOTLINE}/{language}/out_of_hours" in errors
    assert snapshot(prompts) == before and stray_files(prompts) == []


def test_one_warning_per_reason_and_a_bounded_list(config_file: Path, prompts: Path) -> None:
    from ivr.prompt_setup import LISTED_FAILURES, prompt_warnings
    from ivr.prompts import PromptBuildReport, PromptFailure

    config = load_config(config_file)
    missing = "espeak-ng is not installed"
    # A new hotline's whole set on a machine without espeak-ng: one line, not hundreds.
    report = PromptBuildReport(
        failed=[PromptFailure(folder(prompts, "vi") / f"area_{n}.wav", missing) for n in range(300)]
    )
    [warning] = prompt_warnings(config, report)
    assert warning.startswith(f"prompt not built: {HOTLINE}/vi/area_0, {HOTLINE}/vi/area_1,")
    assert f"and {300 - LISTED_FAILURES} more ({missing})" in warning
    # espeak-ng's own messages differ per prompt: the list stays bounded all the same.
    report = PromptBuildReport(
        failed=[
            PromptFailure(folder(prompts, "en") / f"p{n}.wav", f"failed on p{n}") for n in range(20)
        ]
    )
    warnings = prompt_warnings(config, report)
    assert len(warnings) == LISTED_FAILURES + 1
    assert warnings[-1] == f"{20 - LISTED_FAILURES} more prompts not built: see the log"
