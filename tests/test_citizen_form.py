"""The public report form and status page (issue 14) without ``hotline serve``:
the checks of what a citizen types (pure), the form token, and the pages
through the app with a fake intake that records what it was handed.

The fake stands in for :class:`ivr.intake.service.IntakeService`; the real one
is exercised end to end in tests/test_citizen_form_e2e.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from ivr.config import HotlineConfig, load_config
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.intake.types import IntakeRefused, IntakeResult, Submission
from ivr.web import citizen_form
from ivr.web.app import create_app
from ivr.web.citizen_form import FormTokens, check_report, parse_contact
from ivr.web.intake_state import INTAKE
from ivr.web.state import STATE
from tests.config_checks import config_problems, line_of
from tests.rig.intake import InMemoryIntake
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

EXAMPLE_CONFIG = load_config(EXAMPLE)
HOTLINE = EXAMPLE_CONFIG.hotlines[0]
TOPIC = EXAMPLE_CONFIG.cases.topics[0].code
WARD = "dong-ngac"
GOOD = {
    "topic": TOPIC, "ward": WARD, "address": "Ngõ 5 phố Đông Ngạc",
    "description": "Đèn đường ngõ 5 hỏng từ tuần trước, tối không đi được.",
    "name": "Nguyễn Văn An", "phone": "0912 345 678", "email": "An.Nguyen@Example.VN",
}  # fmt: skip


# --- what the citizen types (pure) ----------------------------------------------------


def test_a_good_report_is_accepted_with_the_contacts_normalised() -> None:
    form = check_report(GOOD, EXAMPLE_CONFIG, HOTLINE)
    assert form.errors == {}
    assert form.phone_e164 == "+84912345678"
    assert form.email == "an.nguyen@example.vn"
    assert not form.publish_consent and not form.share_location  # unticked unless posted
    submission = citizen_form.submission_of(form, HOTLINE.id, "nonce-1", ())
    assert submission.channel is Channel.WEB
    assert submission.contacts == (
        (ContactKind.PHONE, "+84912345678"), (ContactKind.EMAIL, "an.nguyen@example.vn"),
    )  # fmt: skip
    assert submission.idempotency_key == f"web-form:{HOTLINE.id}:nonce-1"
    assert (submission.topic, submission.area_code) == (TOPIC, WARD)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"phone": "12345", "email": ""}, "phone", "Vietnamese phone number"),
        ({"phone": "113", "email": ""}, "phone", "Vietnamese phone number"),  # a short code
        ({"email": "an@@x", "phone": ""}, "email", "email address"),
        ({"email": "a@b.vn\r\nBcc: x@y.vn"}, "email", "email address"),
        ({"phone": "", "email": ""}, "phone", "phone number or an email"),
        ({"description": "hỏng"}, "description", "at least 10"),
        ({"description": "x" * 5001}, "description", "too long"),
        ({"name": "An\r\nX-Header: 1"}, "name", "not allowed"),
        ({"topic": ""}, "topic", "Choose what"),
        ({"topic": "<script>"}, "topic", "options in the list"),
        ({"ward": "nowhere"}, "ward", "options in the list"),
        ({"latitude": "21.07"}, "latitude", "both latitude and longitude"),
        ({"latitude": "91", "longitude": "105.7"}, "latitude", "both latitude and longitude"),
        ({"latitude": "nan", "longitude": "105.7"}, "latitude", "both latitude and longitude"),
    ],
)
def test_each_bad_field_gets_its_own_message(
    change: dict[str, str], field: str, words: str
) -> None:
    form = check_report({**GOOD, **change}, EXAMPLE_CONFIG, HOTLINE)
    assert field in form.errors, form.errors
    assert words in form.errors[field]


def test_coordinates_and_a_multiline_description_are_cleaned() -> None:
    form = check_report(
        {**GOOD, "latitude": "21,070123456", "longitude": " 105.76 ",
         "description": "Dòng một\r\nDòng hai\tcó tab"},
        EXAMPLE_CONFIG, HOTLINE,
    )  # fmt: skip
    assert form.errors == {}
    assert (form.latitude, form.longitude) == (21.070123, 105.76)
    assert form.values["description"] == "Dòng một\nDòng hai\tcó tab"


def test_too_many_files_is_a_message_on_the_files_field() -> None:
    limit = EXAMPLE_CONFIG.channels.web_form.max_files
    form = check_report(GOOD, EXAMPLE_CONFIG, HOTLINE, files=limit + 1)
    assert form.errors["files"].startswith("At most")


def test_status_contact_is_a_phone_or_an_email() -> None:
    assert parse_contact(" 0912.345.678 ") == (ContactKind.PHONE, "+84912345678")
    assert parse_contact("AN@example.vn") == (ContactKind.EMAIL, "an@example.vn")
    assert parse_contact("113") is None
    assert parse_contact("an@example.vn\nBcc: x@y.vn") is None
    assert parse_contact("") is None


def test_the_form_section_is_off_by_default_and_a_bad_value_names_its_line(
    tmp_path: Path,
) -> None:
    assert EXAMPLE_CONFIG.channels.web_form.enabled is False  # no public form unless asked
    text = EXAMPLE.read_text(encoding="utf-8").rstrip("\n") + (
        "\nchannels:\n  web_form:\n    enabled: true\n    max_files: 99\n"
    )
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    message = config_problems(path)
    assert f"hotline.yaml:{line_of(path, 'max_files')}: channels.web_form.max_files" in message


def test_sizes_read_as_a_citizen_reads_them() -> None:
    assert citizen_form.size_text(60 * 1024 * 1024) == "60 MB"
    assert citizen_form.size_text(512 * 1024) == "512 KB"


def test_form_token_is_bound_to_its_hotline_and_expires() -> None:
    tokens = FormTokens(b"k" * 32)
    token = tokens.issue("a", now=1_000_000)
    nonce = token.split(".")[0]
    assert tokens.check(token, "a", 3600, now=1_000_100) == nonce
    assert tokens.check(token, "b", 3600, now=1_000_100) is None  # another hotline's form
    assert tokens.check(token, "a", 3600, now=1_003_601) is None  # too old
    assert FormTokens(b"o" * 32).check(token, "a", 3600, now=1_000_100) is None  # another key
    forged = f"{nonce}x.{token.split('.', 1)[1]}"
    assert tokens.check(forged, "a", 3600, now=1_000_100) is None
    assert tokens.check("garbage", "a", 3600) is None


# --- the pages, with a fake intake -------------------------------------------------------


@dataclass
class FakeView:
    case_code: str
    status: str
    received_at: datetime
    due_date: date
    text: str
    answer: str | None = None
    answered_at: datetime | None = None
    hotline_id: str = HOTLINE.id


@dataclass
class FakeIntake(InMemoryIntake):
    """Keeps each case's status view too, found by its code and a contact."""

    views: dict[str, tuple[FakeView, set[tuple[ContactKind, str]]]] = field(default_factory=dict)

    def created(self, submission: Submission, result: IntakeResult) -> None:
        code = result.case_code
        view = FakeView(code, "received", datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
                        date(2026, 12, 21), submission.text)  # fmt: skip
        self.views[code] = (view, set(submission.contacts))

    def status(self, case_code: str, contact: tuple[ContactKind, str] | None) -> Any | None:
        found = self.views.get(case_code)
        if found is None or contact not in found[1]:
            return None
        return found[0]

    def thread(self, case_id: int) -> list[Any]:
        view = next(v for v, _ in self.views.values() if v.case_code.endswith(f"{case_id:04d}"))
        staff = SimpleNamespace(direction=MessageDirection.OUTBOUND, text="staff only")
        citizen = SimpleNamespace(direction=MessageDirection.INBOUND, text=view.text)
        return [SimpleNamespace(message=staff), SimpleNamespace(message=citizen)]

    # The case service's one read the status page makes.
    def find_by_code(self, code: str) -> Any | None:
        found = self.views.get(code)
        if found is None:
            return None
        return SimpleNamespace(id=int(code[-4:]), hotline_id=found[0].hotline_id,
                               summary="staff summary")  # fmt: skip


def _config(
    tmp_path: Path, example: Path = EXAMPLE, web: dict[str, Any] | None = None, **web_form: Any
) -> HotlineConfig:
    data = yaml.safe_load(example.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["web"] = {"cookie_secure": False, **(web or {})}
    data["channels"] = {"web_form": {"enabled": True, **web_form}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@dataclass
class Site:
    client: TestClient
    intake: FakeIntake
    config: HotlineConfig


@pytest.fixture
def sessions_for(tmp_path: Path) -> Iterator[Any]:
    engines: list[Any] = []

    def make(config: HotlineConfig) -> Any:
        upgrade(config.database_url)
        engine = make_engine(config.database_url)
        engines.append(engine)
        return make_session_factory(engine)

    yield make
    for engine in engines:
        engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def site_factory(sessions_for: Any) -> AsyncIterator[Any]:
    clients: list[TestClient] = []

    async def start(config: HotlineConfig) -> Site:
        app = create_app(config, sessions_for(config), secret=b"s" * 32)
        intake = FakeIntake()
        app[INTAKE] = intake
        app[STATE].cases = intake  # type: ignore[assignment]  # its find_by_code
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Site(client, intake, config)

    yield start
    for client in clients:
        await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, site_factory: Any) -> Site:
    return await site_factory(_config(tmp_path, submissions_per_window=6))


def _token(html: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def _fresh_form(site: Site, path: str = "/report") -> str:
    page = await site.client.get(path)
    assert page.status == 200
    return _token(await page.text())


def _multipart(fields: dict[str, str], files: list[tuple[str, bytes, str]] = ()) -> FormData:
    data = FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    for filename, content, content_type in files:
        data.add_field("files", content, filename=filename, content_type=content_type)
    if not files:  # as a browser posts an empty file input
        data.add_field("files", b"", filename="", content_type="application/octet-stream")
    return data


@pytest.mark.db
async def test_form_is_vietnamese_first_with_labels_tied_to_inputs(site: Site) -> None:
    page = await site.client.get("/report")
    html = await page.text()
    assert page.status == 200 and 'lang="vi"' in html
    assert "Phản ánh" in html or "phản ánh" in html
    assert "<script>" not in html.replace('<script src="/static/report.js" defer></script>', "")
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]* id="(f-[^"]+)"', html))
    labelled = set(re.findall(r'<label for="(f-[^"]+)"', html))
    assert ids and ids <= labelled, ids - labelled
    for box in ("publish_consent", "share_location"):
        tag = re.search(rf'<input id="f-{box}"[^>]*>', html)
        assert tag and "checked" not in tag.group(0)  # unticked by default
    english = await (await site.client.get("/report?lang=en")).text()
    assert 'lang="en"' in english and "Send the report" in english
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "Set-Cookie" not in page.headers


@pytest.mark.db
async def test_a_report_with_a_photo_reaches_the_intake_and_shows_code_and_due_date(
    site: Site,
) -> None:
    token = await _fresh_form(site)
    photo = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    fields = {**GOOD, "form_token": token, "publish_consent": "1", "latitude": "21.07",
              "longitude": "105.76"}  # fmt: skip
    posted = _multipart(fields, [("C:\\Users\\an\\đèn hỏng.jpg", photo, "image/jpeg")])
    posted.add_field("avatar", b"GIF89a", filename="x.gif")  # not the form's file input: dropped
    answer = await site.client.post("/report", data=posted)
    html = await answer.text()
    assert answer.status == 200, html
    [submission] = site.intake.submissions
    assert submission.publish_consent and not submission.share_location
    assert (submission.latitude, submission.longitude) == (21.07, 105.76)
    [attachment] = submission.attachments
    assert (attachment.filename, attachment.content, attachment.declared_type) == (
        "đèn hỏng.jpg", photo, "image/jpeg")  # fmt: skip
    assert 'id="case-code">26110001<' in html
    assert "21/12/2026" in html  # the due date, from the intake's view

    # The same form posted again (a double tap, a reload): the same case, nothing new.
    again = await site.client.post(
        "/report", data=_multipart(fields, [("a.jpg", photo, "image/jpeg")])
    )
    assert 'id="case-code">26110001<' in await again.text()
    assert len(site.intake.submissions) == 1


@pytest.mark.db
async def test_errors_reshow_the_form_with_the_input_kept_escaped_and_nothing_sent(
    site: Site,
) -> None:
    token = await _fresh_form(site)
    hostile = '<img src=x onerror="alert(1)">'
    answer = await site.client.post("/report", data=_multipart(
        {**GOOD, "form_token": token, "phone": "12345", "email": "", "name": hostile,
         "description": "hỏng"}))  # fmt: skip
    html = await answer.text()
    assert answer.status == 400
    assert site.intake.submissions == []
    assert 'id="error-summary"' in html
    assert 'href="#f-phone"' in html and 'href="#f-description"' in html
    assert 'id="e-phone"' in html and 'aria-describedby="e-phone"' in html
    assert hostile not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert 'value="0912 345 678"' not in html and 'value="12345"' in html  # what was typed
    assert _token(html) != token  # a fresh token with the re-shown form


@pytest.mark.db
async def test_a_forged_or_foreign_token_makes_no_case(site: Site) -> None:
    token = await _fresh_form(site)
    nonce, issued, mac = token.split(".")
    for bad in (f"{nonce}.{int(issued) - 10 * 86400}.{mac}", "x.1.y", ""):
        answer = await site.client.post(
            "/report?lang=en", data=_multipart({**GOOD, "form_token": bad})
        )
        assert answer.status == 400
        assert "The form was open too long" in await answer.text()
    assert site.intake.submissions == []


@pytest.mark.db
async def test_an_intake_refusal_is_shown_beside_its_field(site: Site) -> None:
    site.intake.refuse = IntakeRefused("This file is neither a photo nor a video.", "attachments")
    token = await _fresh_form(site)
    answer = await site.client.post("/report", data=_multipart(
        {**GOOD, "form_token": token}, [("x.jpg", b"MZ\x90\x00", "image/jpeg")]))  # fmt: skip
    html = await answer.text()
    assert answer.status == 400
    assert 'id="e-files"' in html and "neither a photo nor a video" in html


@pytest.mark.db
async def test_an_oversized_post_is_refused_while_streaming_with_a_413_page(
    tmp_path: Path, site_factory: Any
) -> None:
    site = await site_factory(_config(tmp_path, max_upload_bytes=64 * 1024))
    token = await _fresh_form(site)
    big = b"\xff\xd8\xff" + b"0" * (200 * 1024)
    answer = await site.client.post("/report?lang=en", data=_multipart(
        {**GOOD, "form_token": token}, [("big.jpg", big, "image/jpeg")]))  # fmt: skip
    assert answer.status == 413
    assert "Nothing was saved" in await answer.text()
    # No declared length (chunked): refused part-way through, not after reading it all.
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        head = (f'--b\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n{token}\r\n'
                '--b\r\nContent-Disposition: form-data; name="files"; filename="v.mp4"\r\n'
                "Content-Type: video/mp4\r\n\r\n").encode()  # fmt: skip
        yield head
        for _ in range(64):  # 4 MiB offered, far past the limit
            sent += 1
            yield b"0" * 65536

    streamed = await site.client.post(
        "/report?lang=en",
        data=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    html = await streamed.text()
    assert streamed.status == 413
    assert "Nothing was saved" in html
    assert site.intake.submissions == []


@pytest.mark.db
async def test_posts_past_the_budget_get_a_429_page(tmp_path: Path, site_factory: Any) -> None:
    site = await site_factory(_config(tmp_path, submissions_per_window=2))
    token = await _fresh_form(site)
    for _ in range(2):
        answer = await site.client.post("/report", data=_multipart({**GOOD, "form_token": token}))
        assert answer.status == 200
    limited = await site.client.post("/report?lang=en", data=_multipart(
        {**GOOD, "form_token": token}))  # fmt: skip
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many reports" in await limited.text()


@pytest.mark.db
async def test_status_page_never_tells_a_wrong_contact_from_an_unknown_code(site: Site) -> None:
    token = await _fresh_form(site)
    hostile = "Cống tràn <b>ngập</b> <script>alert(1)</script> ngõ 5"
    done = await site.client.post("/report", data=_multipart(
        {**GOOD, "form_token": token, "description": hostile}))  # fmt: skip
    code = re.search(r'id="case-code">(\d+)<', await done.text())
    assert code is not None
    code_text = code.group(1)

    right = await site.client.post(
        "/report/status?lang=en", data={"code": code_text, "contact": "0912345678"}
    )
    html = await right.text()
    assert right.status == 200
    assert 'id="status-value">received<' in html and "21/12/2026" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the citizen's own words, escaped
    assert "staff" not in html  # never the staff's summary or replies

    wrong = await site.client.post(
        "/report/status?lang=en", data={"code": code_text, "contact": "0987654321"}
    )
    unknown = await site.client.post(
        "/report/status?lang=en", data={"code": "99999999", "contact": "0912345678"}
    )
    assert wrong.status == unknown.status == 404

    def without_inputs(text: str) -> str:
        return re.sub(r'value="[^"]*"', "", text)

    assert without_inputs(await wrong.text()) == without_inputs(await unknown.text())
    assert 'id="status-value"' not in await wrong.text()


@pytest.mark.db
async def test_status_lookups_are_budgeted(tmp_path: Path, site_factory: Any) -> None:
    site = await site_factory(_config(tmp_path, status_lookups_per_window=3))
    for _ in range(3):
        answer = await site.client.post(
            "/report/status", data={"code": "99999999", "contact": "0912345678"}
        )
        assert answer.status == 404
    limited = await site.client.post(
        "/report/status", data={"code": "99999999", "contact": "0912345678"}
    )
    assert limited.status == 429


@pytest.mark.db
async def test_unknown_hotline_and_a_disabled_form_are_not_found(
    tmp_path: Path, site_factory: Any
) -> None:
    site = await site_factory(_config(tmp_path))
    assert (await site.client.get(f"/report/{HOTLINE.id}")).status == 200
    assert (await site.client.get("/report/no-such-hotline")).status == 404
    assert (await site.client.get("/report/status")).status == 200  # a page, not a hotline
    assert (await site.client.post("/report/no-such-hotline", data={})).status == 404
    off = await site_factory(_config(tmp_path / "off", enabled=False))
    assert (await off.client.get("/report")).status == 404
    assert (await off.client.get("/report/status")).status == 404


@pytest.mark.db
async def test_several_hotlines_each_have_their_form_and_a_token_serves_only_its_own(
    tmp_path: Path, site_factory: Any
) -> None:
    combined = EXAMPLE.parent / "combined.yaml"
    site = await site_factory(_config(tmp_path, example=combined))
    first, second = site.config.hotlines[0], site.config.hotlines[1]
    chooser = await (await site.client.get("/report")).text()
    for hotline in site.config.hotlines:
        assert f'href="/report/{hotline.id}?lang=vi"' in chooser
    page = await site.client.get(f"/report/{second.id}")
    html = await page.text()
    assert page.status == 200 and second.name in html
    assert f'action="/report/{second.id}?lang=vi"' in html
    assert (await site.client.post("/report", data=_multipart(GOOD))).status == 404

    token = await _fresh_form(site, f"/report/{first.id}")
    topic = site.config.cases.topics[0].code
    fields = {**GOOD, "topic": topic, "ward": "", "form_token": token}
    foreign = await site.client.post(f"/report/{second.id}?lang=en", data=_multipart(fields))
    assert foreign.status == 400 and "The form was open too long" in await foreign.text()
    assert site.intake.submissions == []
    own = await site.client.post(f"/report/{first.id}", data=_multipart(fields))
    assert own.status == 200
    assert [s.hotline_id for s in site.intake.submissions] == [first.id]


@pytest.mark.db
async def test_wrong_codes_for_one_contact_are_budgeted_whatever_the_address(
    tmp_path: Path, site_factory: Any
) -> None:
    """Codes are short: guesses for one citizen's phone spread over many
    addresses (behind the trusted proxy) still stop at the budget, and then even
    the right code is not read out; another contact is not held up."""
    config = _config(
        tmp_path, web={"trusted_proxies": ["127.0.0.1/32"]},
        submissions_per_window=6, status_lookups_per_window=3,
    )  # fmt: skip
    site = await site_factory(config)
    token = await _fresh_form(site)
    done = await site.client.post("/report", data=_multipart({**GOOD, "form_token": token}))
    code = re.search(r'id="case-code">(\d+)<', await done.text())
    assert code is not None

    def lookup(guess: str, contact: str, address: str) -> Any:
        return site.client.post(
            "/report/status?lang=en", data={"code": guess, "contact": contact},
            headers={"X-Forwarded-For": address},
        )  # fmt: skip

    for n in range(3):  # one wrong guess from each of three addresses
        assert (await lookup("99999999", "0912345678", f"203.0.113.{n + 1}")).status == 404
    held = await lookup(code.group(1), "0912345678", "203.0.113.9")
    assert held.status == 429
    assert "Too many wrong case codes" in await held.text()
    assert 'id="status-value"' not in await held.text()
    other = await lookup("99999999", "0987654321", "203.0.113.9")
    assert other.status == 404  # a different citizen's lookups go on
