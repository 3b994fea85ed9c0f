"""What the voice prompt pages (ivr/web/admin_prompts.py) answer around the
sound itself: a prompt or staged upload the hotline does not have is a 404 on
every route it names; each route of another hotline refused to a supervisor is
audited once, under that hotline; every step of an upload leads where the
clerk expects, a removal of what is not a studio recording and a discard of
what is gone lead back to the list; a rebuild that fails is still audited and
answers 500. The rebuild is stubbed (the pages' answers are under test, not
espeak-ng). Integration tier (db)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.config import HotlineConfig, load_config
from ivr.prompt_upload import live_file
from ivr.prompts import PromptBuildReport, PromptFailure
from ivr.web import admin_prompts
from ivr.web.app import create_app
from tests.rig.console import Account, ServedConsole, config_with_own_folders, console_sessions
from tests.test_prompt_upload import tone_wav

pytestmark = pytest.mark.db

COMBINED = Path(__file__).resolve().parents[1] / "examples" / "combined.yaml"
PASSWORD = "mật-khẩu-đủ-dài"
HOTLINE = "bac-tu-liem-2026"
PAGE = f"/admin/prompts/{HOTLINE}/vi"
NO_UPLOAD = f"{PAGE}/new/{'0' * 32}"  # a token of the right form that names nothing


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    data["paths"]["prompts"] = str(tmp_path / "prompts")
    config = load_config(config_with_own_folders(tmp_path, yaml.safe_dump(data)))
    # The greeting as a build left it: synthesized (a tone stands for the voice).
    played = live_file(tmp_path / "prompts", HOTLINE, "vi", "greeting")
    played.parent.mkdir(parents=True)
    played.write_bytes(tone_wav(0.5, rate=8000, channels=1, frequency=300))
    return config


class PromptConsole(ServedConsole):
    """The console over ``config`` (no config applier: the prompt pages need none)."""

    def __init__(self, config: HotlineConfig, sessions: Any) -> None:
        super().__init__(create_app(config, sessions, secret=b"s" * 32), PASSWORD)
        self.sessions = sessions

    def prompt_audit(self) -> list[tuple[str, str, str]]:
        """The audit log's entries of the prompt pages: (actor, action, target)."""
        with self.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                .where(AuditEntry.action.like("prompt%"))
                .order_by(AuditEntry.id)
            ).all()
        return [(r.actor, r.action, r.target) for r in rows]


@pytest_asyncio.fixture
async def console(config: HotlineConfig) -> AsyncIterator[PromptConsole]:
    with console_sessions(
        config.database_url,
        Account("quantri", "admin"),
        Account("giamsat-tx", "supervisor", hotline_id="thanh-xuan"),
        password=PASSWORD,
    ) as sessions:
        async with PromptConsole(config, sessions) as console:
            yield console


def a_recording(token: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("recording", io.BytesIO(tone_wav(1.0)), filename="a.wav",
                   content_type="audio/wav")  # fmt: skip
    return form


class StubRebuild:
    """Stands in for the one-prompt rebuild: records the prompts asked for
    (hotline/language/name), and fails with ``failing`` once it is set."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.failing = ""

    def __call__(
        self, config: HotlineConfig, hotline_id: str, language: str, name: str
    ) -> PromptBuildReport:
        self.asked.append(f"{hotline_id}/{language}/{name}")
        report = PromptBuildReport()
        if self.failing:
            report.failed.append(PromptFailure(Path(name), self.failing))
        return report


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> StubRebuild:
    stub = StubRebuild()
    monkeypatch.setattr(admin_prompts, "build_one_prompt", stub)
    return stub


async def test_a_prompt_or_upload_the_hotline_lacks_is_not_found_on_every_route(
    console: PromptConsole,
) -> None:
    client, token = await console.signed_in("quantri")

    answers = {
        "audio": await client.get(f"{PAGE}/no_such_prompt/audio"),
        "upload": await client.post(f"{PAGE}/no_such_prompt/upload", data=a_recording(token)),
        "remove page": await client.get(f"{PAGE}/no_such_prompt/remove"),
        "remove": await client.post(f"{PAGE}/no_such_prompt/remove", data={"csrf_token": token}),
        "preview": await client.get(NO_UPLOAD),
        "preview audio": await client.get(f"{NO_UPLOAD}/audio"),
        "confirm": await client.post(f"{NO_UPLOAD}/confirm", data={"csrf_token": token}),
    }

    assert {step: a.status for step, a in answers.items()} == dict.fromkeys(answers, 404)
    assert console.prompt_audit() == []


async def test_each_route_of_another_hotline_is_refused_and_audited_under_it(
    console: PromptConsole,
) -> None:
    client, token = await console.signed_in("giamsat-tx")
    form = {"csrf_token": token}

    answers = [
        await client.get(PAGE),
        await client.get(f"{PAGE}/greeting/audio"),
        await client.post(f"{PAGE}/greeting/upload", data=a_recording(token)),
        await client.get(NO_UPLOAD),
        await client.get(f"{NO_UPLOAD}/audio"),
        await client.post(f"{NO_UPLOAD}/confirm", data=form),
        await client.post(f"{NO_UPLOAD}/discard", data=form),
        await client.get(f"{PAGE}/greeting/remove"),
        await client.post(f"{PAGE}/greeting/remove", data=form),
    ]

    assert [a.status for a in answers] == [403] * len(answers)
    refused = ("giamsat-tx", "prompts_refused", f"hotline:{HOTLINE}")
    assert console.prompt_audit() == [refused] * len(answers)


async def test_each_step_of_an_upload_leads_where_the_clerk_expects(
    console: PromptConsole, rebuilds: StubRebuild
) -> None:
    client, token = await console.signed_in("quantri")
    form = {"csrf_token": token}

    async def staged() -> str:
        answer = await client.post(
            f"{PAGE}/greeting/upload", data=a_recording(token), allow_redirects=False
        )
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]

    discarded = await client.post(f"{await staged()}/discard", data=form, allow_redirects=False)
    confirmed = await client.post(f"{await staged()}/confirm", data=form, allow_redirects=False)
    removed = await client.post(f"{PAGE}/greeting/remove", data=form, allow_redirects=False)

    assert (discarded.status, discarded.headers["Location"]) == (303, f"{PAGE}#prompt-greeting")
    assert (confirmed.status, confirmed.headers["Location"]) == (
        303, f"{PAGE}?done=live&prompt=greeting",
    )  # fmt: skip
    assert (removed.status, removed.headers["Location"]) == (
        303, f"{PAGE}?done=removed&prompt=greeting",
    )  # fmt: skip
    assert rebuilds.asked == [f"{HOTLINE}/vi/greeting"] * 2
    target = f"prompt:{HOTLINE}/vi/greeting"
    assert [action for _, action, _ in console.prompt_audit()] == [
        "prompt_upload", "prompt_upload", "prompt_live", "prompt_removed",
    ]  # fmt: skip
    assert {t for _, _, t in console.prompt_audit()} == {target}


async def test_what_is_gone_or_not_recorded_leads_back_to_the_list(
    console: PromptConsole, rebuilds: StubRebuild
) -> None:
    client, token = await console.signed_in("quantri")
    form = {"csrf_token": token}

    discarded = await client.post(f"{NO_UPLOAD}/discard", data=form, allow_redirects=False)
    asked = await client.get(f"{PAGE}/greeting/remove", allow_redirects=False)
    removed = await client.post(f"{PAGE}/greeting/remove", data=form, allow_redirects=False)

    assert (discarded.status, discarded.headers["Location"]) == (303, PAGE)
    # The greeting is synthesized: there is no studio recording to remove.
    assert (asked.status, asked.headers["Location"]) == (303, f"{PAGE}#prompt-greeting")
    assert (removed.status, removed.headers["Location"]) == (303, f"{PAGE}#prompt-greeting")
    assert rebuilds.asked == [] and console.prompt_audit() == []


async def test_a_failed_rebuild_is_still_audited_and_answers_500(
    console: PromptConsole, rebuilds: StubRebuild
) -> None:
    client, token = await console.signed_in("quantri")
    preview = await client.post(
        f"{PAGE}/greeting/upload", data=a_recording(token), allow_redirects=False
    )
    rebuilds.failing = "the sound could not be written"

    answer = await client.post(
        f"{preview.headers['Location']}/confirm", data={"csrf_token": token}, allow_redirects=False
    )

    assert answer.status == 500
    assert "the sound could not be written" in await answer.text()
    assert [action for _, action, _ in console.prompt_audit()] == ["prompt_upload", "prompt_live"]
