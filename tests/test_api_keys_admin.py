"""Open311 API keys in the administrators' console (ivr/web/api_keys_admin.py)
against a real database and the real intake: a key issued on the page is shown
once and works on the Open311 POST, a key revoked on the page is refused at
the very next request, only administrators reach the pages (others are
audited), forms need their CSRF token, and bad input comes back with the
clerk's message."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from ivr.audit import AuditEntry
from ivr.cases.models import Case
from ivr.config import HotlineConfig, load_config
from ivr.web.api_keys import ApiKeyStore, ApiKeyView, CheckedKeys, Open311ApiKey
from ivr.web.app import create_app
from tests.rig.console import Account, console_sessions
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

PASSWORD = "mật-khẩu-đủ-dài"
HOTLINE = "bac-tu-liem"
KEYS = "/admin/api-keys"
POST_REQUEST = "/open311/v2/requests.json"


def _config(tmp_path: Path) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["web"] = {"cookie_secure": False}
    data["channels"] = {"open311": {"enabled": True}}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class Console:
    """The console's app on a test server, with clients signed in by name."""

    def __init__(self, config: HotlineConfig, sessions: Any) -> None:
        self.config, self.sessions = config, sessions
        self.server = TestServer(create_app(config, sessions, secret=b"s" * 32))
        self.clients: list[TestClient] = []

    async def client(self) -> TestClient:
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    async def signed_in(self, username: str) -> tuple[TestClient, str]:
        client = await self.client()
        token = _csrf(await (await client.get("/login")).text())
        answer = await client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            allow_redirects=False,
        )
        assert answer.status == 302, await answer.text()
        me = await (await client.get("/api/v1/me")).json()
        return client, me["csrf_token"]

    def api_keys(self) -> list[ApiKeyView]:
        return ApiKeyStore(self.sessions).all()

    def audit(self) -> list[tuple[str, str, str]]:
        with self.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target).order_by(
                    AuditEntry.id
                )
            ).all()
        return [(r.actor, r.action, r.target) for r in rows]

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _issued_key(page: str) -> str:
    match = re.search(r'<code id="issued-key">([^<]+)</code>', page)
    assert match, page
    return html.unescape(match.group(1))


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return _config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("quantri", "admin"),
        Account("giamsat", "supervisor"),
        Account("dtv1", "agent", agent_id=config.agents[0].id),
        password=PASSWORD,
    ) as factory:
        yield factory


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


async def _post_report(client: TestClient, key: str) -> Any:
    return await client.post(
        POST_REQUEST,
        data={"api_key": key, "service_code": "hien-truong", "lat": "21.07", "long": "105.76",
              "description": "Đèn đường hỏng ở ngõ 12"},
    )  # fmt: skip


@pytest.mark.db
async def test_an_issued_key_is_shown_once_works_and_is_refused_once_revoked(
    console: Console,
) -> None:
    admin, _ = await console.signed_in("quantri")
    page = await admin.get(KEYS)
    assert page.status == 200
    text = await page.text()
    assert "Khóa API Open311" in text and 'id="issue-key"' in text
    token = _csrf(text)  # the form's own token, as a browser would send it

    issued = await admin.post(
        KEYS, data={"csrf_token": token, "hotline_id": HOTLINE, "app_name": "  iHanoi  ",
                    "contact": "Sở TT&TT Hà Nội"},
    )  # fmt: skip
    assert issued.status == 200
    assert issued.headers["Cache-Control"] == "no-store"
    issued_text = await issued.text()
    key = _issued_key(issued_text)
    assert key.startswith("o311_")
    assert "Hãy sao chép khóa ngay bây giờ" in issued_text  # the warning, in Vietnamese
    (view,) = console.api_keys()
    assert (view.app_name, view.hotline_id, view.contact) == ("iHanoi", HOTLINE, "Sở TT&TT Hà Nội")
    assert view.created_by == "quantri"

    # The list never holds the key: only its first characters, to tell keys apart.
    listed = await (await admin.get(KEYS)).text()
    assert key not in listed and key[8:] not in listed
    assert view.key_prefix in listed and "iHanoi" in listed and "Đang hoạt động" in listed

    # The key works on the Open311 POST (the real intake opens the case).
    app_client = await console.client()
    answer = await _post_report(app_client, key)
    assert answer.status == 200, await answer.text()
    (created,) = await answer.json()
    assert console.count(Case) == 1 and created["service_request_id"]

    confirm = await admin.get(f"{KEYS}/{view.id}/revoke")
    assert confirm.status == 200
    confirm_text = await confirm.text()
    assert 'id="confirm-revoke"' in confirm_text and key not in confirm_text
    revoked = await admin.post(
        f"{KEYS}/{view.id}/revoke", data={"csrf_token": _csrf(confirm_text)},
        allow_redirects=False,
    )  # fmt: skip
    assert revoked.status == 303 and revoked.headers["Location"] == f"{KEYS}?revoked={view.id}"
    after = await (await admin.get(revoked.headers["Location"])).text()
    assert f"Đã thu hồi khóa số {view.id} của iHanoi" in after
    assert "Đã thu hồi lúc" in after and "quantri" in after

    # The very next request is refused, although this process checked the key
    # a moment ago (the 2 s trust must not outlive a revocation made here).
    refused = await _post_report(app_client, key)
    assert refused.status == 403
    assert await refused.json() == [{"code": 403, "description": "api_key is not valid"}]
    assert console.count(Case) == 1

    trail = [(actor, action) for actor, action, _ in console.audit()]
    assert ("quantri", "open311_key_add") in trail and ("quantri", "open311_key_revoke") in trail
    # Revoking again changes nothing and audits nothing more.
    again = await admin.post(f"{KEYS}/{view.id}/revoke", data={"csrf_token": token})
    assert again.status == 200
    assert [a for _, a, _ in console.audit()].count("open311_key_revoke") == 1


@pytest.mark.db
@pytest.mark.parametrize("username", ["giamsat", "dtv1"])
async def test_supervisors_and_agents_are_refused_and_audited(
    console: Console, username: str
) -> None:
    view, key = ApiKeyStore(console.sessions).create(HOTLINE, "iHanoi", "quantri")
    client, token = await console.signed_in(username)
    attempts = [
        ("GET", KEYS, None),
        ("POST", KEYS, {"csrf_token": token, "hotline_id": HOTLINE, "app_name": "Lạ"}),
        ("GET", f"{KEYS}/{view.id}/revoke", None),
        ("POST", f"{KEYS}/{view.id}/revoke", {"csrf_token": token}),
    ]
    for method, path, data in attempts:
        answer = await client.request(method, path, data=data, allow_redirects=False)
        assert answer.status == 403, (method, path)
        assert key not in await answer.text()
    refusals = [t for actor, action, t in console.audit()
                if actor == username and action == "route_refused"]  # fmt: skip
    assert refusals == [f"{method} {path}" for method, path, _ in attempts]
    assert [(k.app_name, k.active) for k in console.api_keys()] == [("iHanoi", True)]


@pytest.mark.db
async def test_a_forged_post_without_the_csrf_token_is_refused(console: Console) -> None:
    view, _ = ApiKeyStore(console.sessions).create(HOTLINE, "iHanoi", "quantri")
    admin, _ = await console.signed_in("quantri")
    form = {"hotline_id": HOTLINE, "app_name": "Ứng dụng giả"}
    for token in (None, "", "forged-token"):
        fields = form if token is None else {**form, "csrf_token": token}
        assert (await admin.post(KEYS, data=fields)).status == 403
        revoke = {} if token is None else {"csrf_token": token}
        assert (await admin.post(f"{KEYS}/{view.id}/revoke", data=revoke)).status == 403
    assert [(k.app_name, k.active) for k in console.api_keys()] == [("iHanoi", True)]
    assert console.count(Open311ApiKey) == 1


@pytest.mark.db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"app_name": "   "}, "app_name", "Vui lòng nhập tên ứng dụng."),
        ({"app_name": "x" * 129}, "app_name", "Tên ứng dụng dài tối đa 128 ký tự."),
        ({"app_name": "iHanoi\x00"}, "app_name", "Tên ứng dụng chứa ký tự không hiển thị được."),
        ({"hotline_id": ""}, "hotline_id", "Chọn đường dây nóng mà ứng dụng sẽ gửi phản ánh tới."),
        ({"hotline_id": "hue"}, "hotline_id", "Không có đường dây nóng hue trong hệ thống."),
        ({"contact": "c" * 256}, "contact", "Thông tin liên hệ dài tối đa 255 ký tự."),
    ],
)
async def test_bad_input_shows_the_form_again_with_the_message(
    console: Console, fields: dict[str, str], field: str, message: str
) -> None:
    admin, token = await console.signed_in("quantri")
    form = {"csrf_token": token, "hotline_id": HOTLINE, "app_name": "iHanoi <b>", **fields}
    answer = await admin.post(KEYS, data=form)
    assert answer.status == 400
    page = await answer.text()
    found = re.search(rf'<p class="problem" id="problem-{field}">([^<]+)</p>', page)
    assert found and html.unescape(found.group(1)) == message, page
    assert page.count('class="problem"') == 1
    if field != "app_name":  # what was typed comes back, escaped
        assert 'value="iHanoi &lt;b&gt;"' in page
    assert 'id="issued-key"' not in page and console.api_keys() == []
    assert "open311_key_add" not in [a for _, a, _ in console.audit()]


@pytest.mark.db
async def test_the_messages_are_in_english_for_an_english_reader(console: Console) -> None:
    admin, token = await console.signed_in("quantri")
    admin.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    answer = await admin.post(KEYS, data={"csrf_token": token, "hotline_id": "hue",
                                          "app_name": ""})  # fmt: skip
    page = await answer.text()
    assert answer.status == 400
    assert "Enter the app&#39;s name." in page and "There is no hotline hue here." in page
    assert "Open311 API keys" in page


@pytest.mark.db
async def test_an_unknown_key_is_not_found(console: Console) -> None:
    admin, token = await console.signed_in("quantri")
    assert (await admin.get(f"{KEYS}/42/revoke")).status == 404
    assert (await admin.post(f"{KEYS}/42/revoke", data={"csrf_token": token})).status == 404
    huge = "9" * 30  # past any database integer: still a plain 404
    assert (await admin.post(f"{KEYS}/{huge}/revoke", data={"csrf_token": token})).status == 404
    assert (await admin.get(f"{KEYS}/{huge}/revoke")).status == 404


def test_a_revocation_in_this_process_ends_every_checked_key_trust() -> None:
    view = ApiKeyView(1, HOTLINE, "app", "", "o311_abcdef", None, "x", None)  # type: ignore[arg-type]
    checked = CheckedKeys(seconds=60.0)
    checked.put("o311_key", view, now=100.0)
    assert checked.get("o311_key", now=101.0) == view
    from ivr.web import api_keys

    api_keys._revoked_here()
    assert checked.get("o311_key", now=101.0) is None
