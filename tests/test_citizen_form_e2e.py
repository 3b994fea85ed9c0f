"""The public report form end to end: the real ``hotline serve --only web``
(tests/rig/serve.py) with the real intake, posted to over HTTP like a browser
posts (multipart, a real JPEG made with Pillow).

Marked ``db``: it runs on SQLite, and on the rig's PostgreSQL with
HOTLINE_TEST_DB=postgresql.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image
from sqlalchemy import func, select

from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.intake.models import CaseAttachment
from ivr.intake.service import IntakeService
from ivr.web.intake_state import attachments_root
from tests.rig.serve import Served, running_serve, write_serve_config

pytestmark = [pytest.mark.db, pytest.mark.integration]

PHONE = "0912 345 678"
DESCRIPTION = 'Cống tràn ngõ 5 <script>alert("x")</script> <b>ngập</b> sau mưa.'


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def serve_config(tmp_path: Path) -> Path:
    def tweak(data: dict[str, Any]) -> None:
        data["channels"] = {"web_form": {"enabled": True, "submissions_per_window": 4,
                                         "max_upload_bytes": 512 * 1024}}  # fmt: skip

    return write_serve_config(tmp_path, tweak=tweak)


@pytest_asyncio.fixture(loop_scope="session")
async def served(serve_config: Path) -> AsyncIterator[Served]:
    async with running_serve(serve_config) as running:
        yield running


@pytest.fixture
def store(serve_config: Path) -> Iterator[tuple[HotlineConfig, Any]]:
    config = load_config(serve_config)
    engine = make_engine(config.database_url)
    yield config, make_session_factory(engine)
    engine.dispose()


async def _token(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        assert page.status == 200
        match = re.search(r'name="form_token" value="([^"]+)"', await page.text())
    assert match
    return match.group(1)


def _form(token: str, files: list[tuple[str, bytes, str]], **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    values = {"topic": "", "ward": "dong-ngac", "address": "Ngõ 5 phố Đông Ngạc",
              "description": DESCRIPTION, "name": "Nguyễn Văn An", "phone": PHONE,
              "email": "", "form_token": token, **fields}  # fmt: skip
    for name, value in values.items():
        data.add_field(name, value)
    for filename, content, content_type in files:
        data.add_field("files", content, filename=filename, content_type=content_type)
    return data


def _web_cases(sessions: Any) -> list[Case]:
    with sessions() as session:
        return list(session.scalars(select(Case).where(Case.channel == "web").order_by(Case.id)))


def _attachment_count(sessions: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CaseAttachment)) or 0)


async def test_a_photo_report_creates_one_case_with_its_stored_photo_even_posted_twice(
    served: Served, store: tuple[HotlineConfig, Any]
) -> None:
    config, sessions = store
    topic = config.cases.topics[0].code
    photo = _jpeg()
    async with aiohttp.ClientSession() as http:
        token = await _token(http, served.base_url + "/report")
        posts = []
        for _ in range(2):  # a double tap on "send": the same form token twice
            async with http.post(served.base_url + "/report", data=_form(
                    token, [("den-hong.jpg", photo, "image/jpeg")], topic=topic,
                    publish_consent="1")) as answer:  # fmt: skip
                posts.append((answer.status, await answer.text()))
    assert [status for status, _ in posts] == [200, 200], served.log
    codes = [re.search(r'id="case-code">(\d+)<', html) for _, html in posts]
    assert codes[0] and codes[1] and codes[0].group(1) == codes[1].group(1)
    code = codes[0].group(1)

    [case] = _web_cases(sessions)
    assert case.code == code and case.hotline_id == config.hotlines[0].id
    assert (case.topic, case.area_code) == (topic, "dong-ngac")
    assert case.due_date.strftime("%d/%m/%Y") in posts[0][1]  # the due date shown
    root = attachments_root(config.resolve_path(config.paths.recordings))
    intake = IntakeService(sessions, config, CaseService(sessions, config), root)
    [row] = intake.attachments_of(case.id)
    assert row.kind == "image" and row.media_type == "image/jpeg"
    stored = intake.attachment_for(case.id, row.id)
    assert stored is not None and stored.path is not None
    with Image.open(stored.path) as image:  # a real image, as stored
        assert image.size == (64, 48)


async def test_an_oversized_upload_gets_a_413_page_and_nothing_is_written(
    served: Served, store: tuple[HotlineConfig, Any]
) -> None:
    config, sessions = store
    big = _jpeg() + b"\0" * (600 * 1024)  # past max_upload_bytes (512 KiB)
    async with aiohttp.ClientSession() as http:
        token = await _token(http, served.base_url + "/report?lang=en")
        async with http.post(served.base_url + "/report?lang=en", data=_form(
                token, [("big.jpg", big, "image/jpeg")],
                topic=config.cases.topics[0].code)) as answer:  # fmt: skip
            html = await answer.text()
    assert answer.status == 413
    assert "Nothing was saved" in html and "at most 512 KB" in html
    assert _web_cases(sessions) == [] and _attachment_count(sessions) == 0
    folder = attachments_root(config.resolve_path(config.paths.recordings))
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


async def test_status_page_shows_html_escaped_and_a_wrong_phone_is_not_found(
    served: Served, store: tuple[HotlineConfig, Any]
) -> None:
    config, _ = store
    async with aiohttp.ClientSession() as http:
        token = await _token(http, served.base_url + "/report")
        async with http.post(served.base_url + "/report", data=_form(
                token, [], topic=config.cases.topics[0].code)) as answer:  # fmt: skip
            found = re.search(r'id="case-code">(\d+)<', await answer.text())
        assert found, served.log
        code = found.group(1)

        async def look_up(contact: str, case_code: str = code) -> tuple[int, str]:
            async with http.post(
                served.base_url + "/report/status?lang=en",
                data={"code": case_code, "contact": contact},
            ) as page:
                return page.status, await page.text()  # fmt: skip

        status, html = await look_up("+84912345678")  # the same number, written otherwise
        assert status == 200
        assert 'id="status-value">received<' in html
        assert '<script>alert("x")</script>' not in html and "<b>ngập</b>" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &lt;b&gt;ngập&lt;/b&gt;" in html

        wrong_status, wrong = await look_up("0987 654 321")
        unknown_status, unknown = await look_up(PHONE, "99999999")
    assert wrong_status == unknown_status == 404
    assert 'id="status-value"' not in wrong

    def without_inputs(text: str) -> str:
        return re.sub(r'value="[^"]*"', "", text)

    assert without_inputs(wrong) == without_inputs(unknown)  # a code's existence never shows


async def test_posts_past_the_per_address_budget_get_a_429_page(
    served: Served, store: tuple[HotlineConfig, Any]
) -> None:
    config, sessions = store
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(5):  # the budget is 4 posts per window
            token = await _token(http, served.base_url + "/report?lang=en")
            async with http.post(served.base_url + "/report?lang=en", data=_form(
                    token, [], topic=config.cases.topics[0].code)) as answer:  # fmt: skip
                statuses.append(answer.status)
                html = await answer.text()
                retry_after = answer.headers.get("Retry-After")
    assert statuses == [200, 200, 200, 200, 429]
    assert "Too many reports" in html and retry_after is not None and int(retry_after) > 0
    assert len(_web_cases(sessions)) == 4


async def test_a_file_that_is_no_photo_comes_back_on_the_form_and_nothing_is_written(
    served: Served, store: tuple[HotlineConfig, Any]
) -> None:
    config, sessions = store
    fake = b"MZ\x90\x00" + b"\0" * 2048  # a program, named and labelled as a photo
    async with aiohttp.ClientSession() as http:
        token = await _token(http, served.base_url + "/report")
        async with http.post(served.base_url + "/report", data=_form(
                token, [("anh.jpg", fake, "image/jpeg")],
                topic=config.cases.topics[0].code)) as answer:  # fmt: skip
            html = await answer.text()
    assert answer.status == 400, html
    assert 'id="e-files"' in html and 'href="#f-files"' in html
    assert "Ngõ 5 phố Đông Ngạc" in html  # the citizen's input kept
    assert _web_cases(sessions) == [] and _attachment_count(sessions) == 0
