"""The console's voice prompt pages (ivr/web/admin_prompts.py) on a real database:
every prompt of a hotline with the sound callers hear and where it comes from;
an upload sniffed from its bytes, converted, previewed with both players and
made live only on confirmation; removal brings the synthesized voice back;
a bad file is refused in the clerk's words with nothing changed; everything is
audited with who; a supervisor manages only their own hotline's prompts.
Integration tier (db): ffmpeg and espeak-ng run."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.config import HotlineConfig, load_config
from ivr.prompt_upload import PENDING_FOLDER, live_file, own_recording
from ivr.web.app import create_app
from tests.rig.console import Account, console_sessions
from tests.rig.postgres import fresh_database_url
from tests.test_prompt_upload import tone_wav, wav_facts

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
COMBINED = REPO / "examples" / "combined.yaml"
PASSWORD = "mật-khẩu-đủ-dài"
HOTLINE = "bac-tu-liem-2026"
OTHER = "thanh-xuan"
PAGE = f"/admin/prompts/{HOTLINE}/vi"


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["paths"]["prompts"] = str(tmp_path / "prompts")
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["web"] = {"cookie_secure": False}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    # The greeting as a build left it (a tone stands for the voice here).
    played = live_file(tmp_path / "prompts", HOTLINE, "vi", "greeting")
    played.parent.mkdir(parents=True)
    played.write_bytes(tone_wav(0.5, rate=8000, channels=1, frequency=300))
    return config


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("quantri", "admin"),
        Account("giamsat-tx", "supervisor", hotline_id=OTHER),
        Account("dtv1", "agent", agent_id=config.agents[0].id),
        password=PASSWORD,
    ) as factory:
        yield factory


class Console:
    def __init__(self, config: HotlineConfig, sessions: Any) -> None:
        self.config, self.sessions = config, sessions
        self.server = TestServer(create_app(config, sessions, secret=b"s" * 32))
        self.clients: list[TestClient] = []
        self.root = config.resolve_path(config.paths.prompts)

    async def signed_in(self, username: str) -> tuple[TestClient, str]:
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        token = _csrf(await (await client.get("/login")).text())
        answer = await client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            allow_redirects=False,
        )
        assert answer.status == 302, await answer.text()
        me = await (await client.get("/api/v1/me")).json()
        return client, me["csrf_token"]

    def audit(self) -> list[tuple[str, str, str, str]]:
        with self.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.detail)
                .where(AuditEntry.action.like("prompt%"))
                .order_by(AuditEntry.id)
            ).all()
        return [(r.actor, r.action, r.target, r.detail or "") for r in rows]

    def staged(self) -> list[Path]:
        folder = self.root / "custom" / PENDING_FOLDER
        return sorted(folder.glob("*")) if folder.is_dir() else []


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


@pytest_asyncio.fixture(loop_scope="session")
async def console(config: HotlineConfig, sessions: Any) -> AsyncIterator[Console]:
    running = Console(config, sessions)
    await running.server.start_server()
    try:
        yield running
    finally:
        for client in running.clients:
            await client.close()
        await running.server.close()


def mp3(tmp_path: Path, seconds: float) -> bytes:
    source, target = tmp_path / "studio-take.wav", tmp_path / "take.mp3"
    source.write_bytes(tone_wav(seconds))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), str(target)], check=True
    )
    return target.read_bytes()


def upload_form(token: str, data: bytes, filename: str, content_type: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("recording", io.BytesIO(data), filename=filename, content_type=content_type)
    return form


async def test_the_list_shows_every_prompt_with_its_sound_and_origin(console: Console) -> None:
    client, _ = await console.signed_in("quantri")

    page = await client.get(PAGE)

    text = await page.text()
    assert page.status == 200, text
    assert 'id="prompt-greeting"' in text and 'id="prompt-goodbye"' in text
    assert f'src="{PAGE}/greeting/audio"' in text  # the audio route, by prompt name
    assert "Giọng tổng hợp" in text  # synthesized, in Vietnamese first
    assert 'id="prompt-area_phuong-ba-dinh"' in text  # the area announcements too
    unit_name = console.config.hotline(HOTLINE).unit_name  # type: ignore[union-attr]
    assert unit_name in text and "{unit_name}" not in text  # the text to record, filled in
    sound = await client.get(f"{PAGE}/greeting/audio")
    assert sound.status == 200 and sound.content_type == "audio/wav"
    assert await sound.read() == live_file(console.root, HOTLINE, "vi", "greeting").read_bytes()
    chooser = await (await client.get("/admin/prompts")).text()
    assert f'href="/admin/prompts/{OTHER}/vi"' in chooser


async def test_upload_preview_confirm_then_remove_brings_back_the_synthesized_voice(
    console: Console, tmp_path: Path
) -> None:
    client, token = await console.signed_in("quantri")
    played = live_file(console.root, HOTLINE, "vi", "greeting")
    before = played.read_bytes()

    # An MP3 under a misleading name and type: the bytes decide.
    answer = await client.post(
        f"{PAGE}/greeting/upload",
        data=upload_form(token, mp3(tmp_path, 1.4), "loi-chao.txt", "text/plain"),
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    preview_url = answer.headers["Location"]
    assert re.fullmatch(rf"{PAGE}/new/[0-9a-f]{{32}}", preview_url)
    preview = await (await client.get(preview_url)).text()
    assert f'src="{PAGE}/greeting/audio"' in preview  # the current sound
    assert f'src="{preview_url}/audio"' in preview  # and the new one
    staged = await client.get(f"{preview_url}/audio")
    assert staged.status == 200
    assert wav_facts(await staged.read())[:3] == (8000, 1, 2)
    assert played.read_bytes() == before  # not live yet

    live = await client.post(
        f"{preview_url}/confirm", data={"csrf_token": token}, allow_redirects=False
    )

    assert live.status == 303, await live.text()
    after = played.read_bytes()
    assert after != before and wav_facts(after)[3] == pytest.approx(1.4, abs=0.3)
    assert own_recording(console.root, HOTLINE, "vi", "greeting") is not None
    listing = await (await client.get(live.headers["Location"])).text()
    assert 'id="prompt-notice"' in listing and "Bản ghi âm phòng thu" in listing
    again = await client.post(f"{preview_url}/confirm", data={"csrf_token": token})
    assert again.status == 404  # a staged upload goes live once

    confirm_page = await client.get(f"{PAGE}/greeting/remove")
    assert confirm_page.status == 200
    removed = await client.post(
        f"{PAGE}/greeting/remove", data={"csrf_token": token}, allow_redirects=False
    )

    assert removed.status == 303, await removed.text()
    assert own_recording(console.root, HOTLINE, "vi", "greeting") is None
    voice = played.read_bytes()
    assert voice != after and wav_facts(voice)[3] > 2  # espeak-ng says the greeting again
    actions = [(actor, action, target) for actor, action, target, _ in console.audit()]
    assert actions == [
        ("quantri", "prompt_upload", f"prompt:{HOTLINE}/vi/greeting"),
        ("quantri", "prompt_live", f"prompt:{HOTLINE}/vi/greeting"),
        ("quantri", "prompt_removed", f"prompt:{HOTLINE}/vi/greeting"),
    ]
    assert "loi-chao.txt" in console.audit()[1][3]


async def test_a_discarded_upload_changes_nothing(console: Console, tmp_path: Path) -> None:
    client, token = await console.signed_in("quantri")
    played = live_file(console.root, HOTLINE, "vi", "greeting")
    before = played.read_bytes()
    answer = await client.post(
        f"{PAGE}/greeting/upload",
        data=upload_form(token, tone_wav(1.0), "a.wav", "audio/wav"),
        allow_redirects=False,
    )
    preview_url = answer.headers["Location"]

    await client.post(f"{preview_url}/discard", data={"csrf_token": token})

    assert played.read_bytes() == before and console.staged() == []
    assert (await client.get(preview_url)).status == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><body>not a sound</body></html>", "Đây không phải tệp âm thanh"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64, "không phát được"),
        (b"", "Tệp trống"),
    ],
    ids=["html", "broken-wav", "empty"],
)
async def test_a_bad_file_is_refused_in_the_clerks_words_and_nothing_changes(
    console: Console, data: bytes, message: str
) -> None:
    client, token = await console.signed_in("quantri")
    played = live_file(console.root, HOTLINE, "vi", "greeting")
    before = played.read_bytes()

    answer = await client.post(
        f"{PAGE}/greeting/upload", data=upload_form(token, data, "x.wav", "audio/wav")
    )

    text = await answer.text()
    assert answer.status == 400 and message in text, text
    assert played.read_bytes() == before
    assert console.staged() == []
    assert [a[1] for a in console.audit()] == ["prompt_upload_refused"]


async def test_a_supervisor_manages_only_their_own_hotlines_prompts(
    console: Console, tmp_path: Path
) -> None:
    admin, admin_token = await console.signed_in("quantri")
    staged = await admin.post(
        f"{PAGE}/greeting/upload",
        data=upload_form(admin_token, tone_wav(1.0), "a.wav", "audio/wav"),
        allow_redirects=False,
    )
    token_part = staged.headers["Location"].rsplit("/", 1)[1]
    client, token = await console.signed_in("giamsat-tx")
    played = live_file(console.root, HOTLINE, "vi", "greeting")
    before = played.read_bytes()

    own = await client.get("/admin/prompts", allow_redirects=False)
    assert own.status == 302 and own.headers["Location"] == f"/admin/prompts/{OTHER}/vi"
    assert (await client.get(f"/admin/prompts/{OTHER}/vi")).status == 200
    for url in (PAGE, f"{PAGE}/greeting/audio", f"{PAGE}/new/{token_part}/audio"):
        assert (await client.get(url)).status == 403, url
    upload = await client.post(
        f"{PAGE}/greeting/upload", data=upload_form(token, tone_wav(1.0), "b.wav", "audio/wav")
    )
    assert upload.status == 403
    confirm = await client.post(f"{PAGE}/new/{token_part}/confirm", data={"csrf_token": token})
    assert confirm.status == 403
    # Another hotline's staged upload, named under their own hotline: not theirs.
    crossed = await client.post(
        f"/admin/prompts/{OTHER}/vi/new/{token_part}/confirm",
        data={"csrf_token": token},
    )
    assert crossed.status == 404
    assert played.read_bytes() == before
    assert len(console.staged()) == 2  # the admin's upload, still staged (wav + its note)
    refusals = [a for a in console.audit() if a[0] == "giamsat-tx"]
    assert refusals and all(a[1] == "prompts_refused" for a in refusals)

    agent, _ = await console.signed_in("dtv1")
    assert (await agent.get(PAGE)).status == 403


async def test_only_the_hotlines_own_prompts_and_languages_are_served(console: Console) -> None:
    client, _token = await console.signed_in("quantri")

    for url in (
        f"{PAGE}/no_such_prompt/audio",
        f"/admin/prompts/{HOTLINE}/fr",
        f"/admin/prompts/{HOTLINE}/fr/greeting/audio",
        "/admin/prompts/no-such-hotline/vi",
        f"{PAGE}/english_offer/audio",  # this hotline offers no English key
        f"{PAGE}/..%2f..%2fhotline.yaml/audio",
    ):
        assert (await client.get(url)).status == 404, url
    no_token = await client.post(
        f"{PAGE}/greeting/upload", data=upload_form("", tone_wav(1.0), "a.wav", "audio/wav")
    )
    assert no_token.status == 403 and console.staged() == []
