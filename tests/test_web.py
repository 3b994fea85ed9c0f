"""The web console without a PBX: security rules, role checks, CSRF, rate
limiting, recordings (no path traversal, audited), search, statistics, the
OpenAPI document and the wallboard feed from a live model fed AMI events."""

from __future__ import annotations

import ast
import asyncio
import importlib
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import Recording
from ivr.config import HotlineConfig, load_config
from ivr.db.models import Call, utc_now
from ivr.web.app import create_app
from ivr.web.i18n import VI
from ivr.web.live import LiveHub
from ivr.web.openapi import PATHS
from ivr.web.security import LoginRateLimiter, SessionSigner, hash_password, verify_password
from ivr.web.store import UserStore
from ivr.web.xlsx import workbook
from queue_manager.model import Change, LiveModel
from tests.rig.console import Account, console_sessions
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

TEMPLATES = Path(__file__).resolve().parents[1] / "ivr" / "web" / "templates"
PASSWORD = "mật-khẩu-đủ-dài"


# --- pure parts ---------------------------------------------------------------------


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$") and first != second
    assert verify_password(PASSWORD, first)
    assert not verify_password(PASSWORD + "x", first)
    assert not verify_password(PASSWORD, "md5$abc")


def test_session_cookie_rejects_tampering_and_expiry() -> None:
    signer = SessionSigner(b"k" * 32, lifetime_seconds=60)
    cookie, data = signer.issue(7, 0, now=1000.0)
    assert signer.read(cookie, now=1030.0) == data
    assert signer.read(cookie, now=1061.0) is None  # expired
    body, mac = cookie.split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    assert signer.read(f"{forged}.{mac}", now=1030.0) is None
    other = SessionSigner(b"j" * 32, lifetime_seconds=60)
    assert other.read(cookie, now=1030.0) is None
    assert signer.check_csrf(data, signer.csrf_token(data))
    assert not signer.check_csrf(data, other.csrf_token(data))
    assert not signer.check_csrf(data, None)


def test_rate_limiter_blocks_after_the_allowed_failures_then_forgets() -> None:
    limiter = LoginRateLimiter(attempts=3, window=60)
    keys = ["user:a", "addr:1.2.3.4"]
    for at in (0.0, 1.0, 2.0):
        assert limiter.blocked(keys, now=at) == 0
        limiter.failed(keys, now=at)
    assert limiter.blocked(keys, now=3.0) == pytest.approx(57.0)
    assert limiter.blocked(["user:b", "addr:1.2.3.4"], now=3.0) > 0  # same address
    assert limiter.blocked(keys, now=61.0) == 0


def _read_xlsx(body: bytes) -> list[tuple[Any, ...]]:
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    return list(sheet.iter_rows(values_only=True))


def _xlsx_xml(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return "".join(archive.read(name).decode("utf-8") for name in archive.namelist())


def test_xlsx_export_opens_with_a_real_reader_and_keeps_text_as_text() -> None:
    body = workbook(
        ["code", "summary", "calls", "day"],
        [
            ["HN-001", "Đèn đường hỏng ở ngõ 5", 42, date(2024, 5, 17)],
            ["HN-002", "=HYPERLINK(\"http://x\")", 2.5, datetime(2024, 5, 17, 8, 30)],
            ["+84912000222", "-1+1", Decimal("3.25"), None],
            ["@cmd", "bell\x07 and \ufffe gone", True,
             datetime(2024, 5, 17, 8, 30, tzinfo=UTC)],
        ],
        sheet="cases",
    )  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["cases"]
    sheet = book["cases"]
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"
    rows = _read_xlsx(body)
    assert rows[0] == ("code", "summary", "calls", "day")
    assert rows[1] == ("HN-001", "Đèn đường hỏng ở ngõ 5", 42, datetime(2024, 5, 17))
    assert rows[2] == ("HN-002", '=HYPERLINK("http://x")', 2.5, datetime(2024, 5, 17, 8, 30))
    assert sheet["B3"].data_type == "s" and sheet["A4"].data_type == "s"
    assert rows[3] == ("+84912000222", "-1+1", 3.25, None)
    assert rows[4] == ("@cmd", "bell and  gone", True, "2024-05-17T08:30:00+00:00")
    assert sheet["D2"].number_format == "yyyy-mm-dd"
    # No formula anywhere, and Excel's own "_xHHHH_" escape stays literal. The text
    # may sit in the sheet (inline) or in the shared-string table, so read every part.
    assert "<f>" not in _xlsx_xml(body)
    literal = workbook(["a"], [["_x0041_"]])
    assert "_x005F_x0041_" in _xlsx_xml(literal)
    assert _read_xlsx(literal)[1] == ("_x0041_",)


def test_every_template_text_has_its_vietnamese_form() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    used |= {"idle", "ringing", "talking", "paused", "wrapup", "unavailable"}
    missing = sorted(text for text in used if text not in VI)
    assert not missing, f"no Vietnamese for {missing}"
    assert VI["Sign in"] == "Đăng nhập"


# --- the app with a database --------------------------------------------------------


def _config(tmp_path: Path) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["web"] = {"cookie_secure": False, "login_attempts": 3}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class FakeManager:
    """The queue manager's surface the console uses, over a real LiveModel."""

    def __init__(self, config: HotlineConfig) -> None:
        self.model = LiveModel("local", queue_settings={q.id: (30, 0) for q in config.queues})
        self.calls: list[tuple[str, Any]] = []

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        return self.model.subscribe(callback)

    def snapshot(self) -> dict[str, Any]:
        return {"local": self.model.snapshot()}

    async def login(self, agent_id: str, queues: Any = None, by: str = "") -> list[Any]:
        self.calls.append(("login", agent_id))
        return []

    async def logout(self, agent_id: str, queues: Any = None, by: str = "") -> list[Any]:
        self.calls.append(("logout", agent_id))
        return []

    async def pause(self, agent_id: str, reason: str, queue: str | None = None) -> None:
        self.calls.append(("pause", (agent_id, reason)))

    async def unpause(self, agent_id: str, queue: str | None = None) -> None:
        self.calls.append(("unpause", agent_id))


class Console:
    def __init__(self, config: HotlineConfig, sessions: Any, manager: FakeManager) -> None:
        self.config = config
        self.sessions = sessions
        self.manager = manager
        self.clients: list[TestClient] = []
        self.server: TestServer | None = None

    async def start(self) -> None:
        app = create_app(self.config, self.sessions, secret=b"s" * 32, queue_manager=self.manager)
        self.server = TestServer(app)
        await self.server.start_server()

    async def client(self) -> TestClient:
        assert self.server is not None
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    async def signed_in(self, username: str) -> tuple[TestClient, str]:
        client = await self.client()
        page = await client.get("/login")
        token = _csrf(await page.text())
        answer = await client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
            allow_redirects=False,
        )
        assert answer.status == 302, await answer.text()
        me = await (await client.get("/api/v1/me")).json()
        return client, me["csrf_token"]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


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
        Account("dtv2", "agent", agent_id=config.agents[1].id),
        password=PASSWORD,
    ) as factory:
        yield factory


@pytest_asyncio.fixture(loop_scope="session")
async def console(config: HotlineConfig, sessions: Any) -> AsyncIterator[Console]:
    running = Console(config, sessions, FakeManager(config))
    await running.start()
    try:
        yield running
    finally:
        for client in running.clients:
            await client.close()
        assert running.server is not None
        await running.server.close()


@pytest.mark.db
async def test_pages_need_a_session_and_the_right_role(console: Console) -> None:
    anonymous = await console.client()
    answer = await anonymous.get("/wallboard", allow_redirects=False)
    assert answer.status == 302 and answer.headers["Location"].startswith("/login")
    assert (await anonymous.get("/api/v1/calls")).status == 401

    agent, _token = await console.signed_in("dtv1")
    for path in ("/wallboard", "/stats", "/admin/users", "/api/v1/wallboard", "/calls.csv"):
        refused = await agent.get(path)
        assert refused.status == 403, path
    refused_page = await agent.get("/wallboard")
    assert "Không có quyền truy cập" in await refused_page.text()  # Vietnamese by default
    assert (await agent.get("/agent")).status == 200

    supervisor, _ = await console.signed_in("giamsat")
    assert (await supervisor.get("/wallboard")).status == 200
    assert (await supervisor.get("/agent")).status == 403
    assert (await supervisor.get("/admin/users")).status == 403
    admin, _ = await console.signed_in("quantri")
    assert (await admin.get("/admin/users")).status == 200


@pytest.mark.db
async def test_every_route_declares_roles(console: Console) -> None:
    assert console.server is not None
    app = console.server.app
    from ivr.web.app import STATE

    names = {r.name for r in app.router.routes() if r.name and r.name != "static"}
    assert names == set(app[STATE].roles)


# The route table as it was in one module (issue 10): method, path, roles, name.
ROUTE_TABLE = [
    ("GET", "/login", "PUBLIC", "login"),
    ("POST", "/login", "PUBLIC", "login_submit"),
    ("GET", "/lang/{language}", "PUBLIC", "language"),
    ("GET", "/healthz", "PUBLIC", "health"),
    ("GET", "/metrics", "PUBLIC", "metrics"),
    ("GET", "/api/openapi.json", "PUBLIC", "openapi"),
    ("POST", "/logout", "SIGNED_IN", "logout"),
    ("GET", "/", "SIGNED_IN", "home"),
    ("GET", "/api/v1/me", "SIGNED_IN", "me"),
    ("GET", "/wallboard", "WATCHERS", "wallboard"),
    ("GET", "/ws/wallboard", "WATCHERS", "wallboard_ws"),
    ("GET", "/api/v1/wallboard", "WATCHERS", "wallboard_api"),
    ("POST", "/wallboard/agents/{agent_id}/{action}", "WATCHERS", "supervise"),
    ("POST", "/api/v1/agents/{agent_id}/{action}", "WATCHERS", "supervise_api"),
    ("POST", "/wallboard/spy", "WATCHERS", "spy"),
    ("POST", "/api/v1/spy", "WATCHERS", "spy_api"),
    ("GET", "/stats", "WATCHERS", "stats"),
    ("GET", "/stats.csv", "WATCHERS", "stats_csv"),
    ("GET", "/stats.xlsx", "WATCHERS", "stats_xlsx"),
    ("GET", "/api/v1/stats", "WATCHERS", "stats_api"),
    ("GET", "/stats/monthly", "WATCHERS", "stats_monthly"),
    ("GET", "/api/v1/stats/monthly", "WATCHERS", "stats_monthly_api"),
    ("GET", "/calls.csv", "WATCHERS", "calls_csv"),
    ("GET", "/cases.csv", "WATCHERS", "cases_csv"),
    ("GET", "/calls.xlsx", "WATCHERS", "calls_xlsx"),
    ("GET", "/cases.xlsx", "WATCHERS", "cases_xlsx"),
    ("GET", "/agent", "AGENTS", "agent"),
    ("GET", "/ws/agent", "AGENTS", "agent_ws"),
    ("GET", "/api/v1/agent", "AGENTS", "agent_api"),
    ("POST", "/agent/{action}", "AGENTS", "agent_action"),
    ("POST", "/api/v1/agent/{action}", "AGENTS", "agent_action_api"),
    ("GET", "/agent/pop", "AGENTS", "screen_pop"),
    ("GET", "/calls", "STAFF", "calls"),
    ("GET", "/api/v1/calls", "STAFF", "calls_api"),
    ("GET", "/calls/{uniqueid}", "STAFF", "call"),
    ("GET", "/api/v1/calls/{uniqueid}", "STAFF", "call_api"),
    ("GET", "/api/v1/callers/{number}", "STAFF", "caller_api"),
    ("GET", "/cases", "STAFF", "cases"),
    ("GET", "/api/v1/cases", "STAFF", "cases_api"),
    ("POST", "/cases", "STAFF", "open_case"),
    ("POST", "/api/v1/cases", "STAFF", "open_case_api"),
    ("GET", "/cases/{code}", "STAFF", "case"),
    ("GET", "/api/v1/cases/{code}", "STAFF", "case_api"),
    ("POST", "/cases/{code}", "STAFF", "update_case"),
    ("POST", "/api/v1/cases/{code}", "STAFF", "update_case_api"),
    ("POST", "/cases/{code}/hold", "WATCHERS", "case_hold"),
    ("POST", "/api/v1/cases/{code}/hold", "WATCHERS", "case_hold_api"),
    ("POST", "/cases/{code}/forwards", "STAFF", "forward_case"),
    ("POST", "/cases/{code}/final-answer", "WATCHERS", "approve_final_answer"),
    ("POST", "/api/v1/cases/{code}/forwards", "STAFF", "forward_case_api"),
    ("GET", "/api/v1/cases/{code}/forwards", "STAFF", "case_forwards_api"),
    ("GET", "/api/v1/cases/{code}/final-answer", "STAFF", "final_answer_draft_api"),
    ("POST", "/api/v1/cases/{code}/final-answer", "WATCHERS", "approve_final_answer_api"),
    ("GET", "/api/v1/forwards", "UNITS", "my_forwards_api"),
    ("GET", "/api/v1/forwards/{forward_id}", "FORWARD_READERS", "forward_api"),
    ("POST", "/api/v1/forwards/{forward_id}/extension/{decision}", "WATCHERS", "extension_api"),
    ("POST", "/api/v1/forwards/{forward_id}/attachments", "FORWARD_ACTORS", "upload_api"),
    ("GET", "/api/v1/attachments/{attachment_id}", "FORWARD_READERS", "forward_attachment_api"),
    ("POST", "/api/v1/forwards/{forward_id}/{action}", "FORWARD_ACTORS", "forward_action_api"),
    ("GET", "/forwards", "UNITS", "unit_home"),
    ("GET", r"/forwards/{forward_id:\d+}", "FORWARD_READERS", "unit_forward"),
    (
        "GET",
        r"/forwards/{forward_id:\d+}/recordings/{recording_id:\d+}",
        "FORWARD_READERS",
        "unit_recording",
    ),
    ("POST", r"/forwards/{forward_id:\d+}/extension/{decision}", "WATCHERS", "extension_form"),
    ("POST", r"/forwards/{forward_id:\d+}/answer", "FORWARD_ACTORS", "unit_answer"),
    (
        "POST",
        r"/forwards/{forward_id:\d+}/{action:received|in_progress|extension|return}",
        "FORWARD_ACTORS",
        "unit_action",
    ),
    ("GET", "/api/v1/wallboard/overdue-forwards", "WATCHERS", "overdue_forwards_api"),
    ("GET", "/knowledge", "STAFF", "knowledge"),
    ("GET", "/api/v1/knowledge", "STAFF", "knowledge_api"),
    ("GET", "/knowledge/new", "WATCHERS", "new_article"),
    ("POST", "/knowledge", "WATCHERS", "add_article"),
    ("POST", "/api/v1/knowledge", "WATCHERS", "add_article_api"),
    ("POST", "/knowledge/import", "WATCHERS", "import_articles"),
    ("GET", r"/knowledge/{article_id:\d+}", "STAFF", "article"),
    ("GET", r"/api/v1/knowledge/{article_id:\d+}", "STAFF", "article_api"),
    ("GET", r"/knowledge/{article_id:\d+}/edit", "WATCHERS", "edit_article"),
    ("POST", r"/knowledge/{article_id:\d+}", "WATCHERS", "update_article"),
    ("POST", r"/api/v1/knowledge/{article_id:\d+}", "WATCHERS", "update_article_api"),
    ("POST", "/cases/{code}/knowledge-answer", "STAFF", "kb_answer"),
    ("POST", "/api/v1/cases/{code}/knowledge-answer", "STAFF", "kb_answer_api"),
    ("GET", "/recordings/{recording_id}", "STAFF", "recording"),
    ("GET", "/jobs", "WATCHERS", "jobs"),
    ("GET", "/api/v1/jobs", "WATCHERS", "jobs_api"),
    ("GET", "/admin/users", "ADMINS", "users"),
    ("GET", "/api/v1/users", "ADMINS", "users_api"),
    ("POST", "/admin/users", "ADMINS", "add_user"),
    ("POST", "/api/v1/users", "ADMINS", "add_user_api"),
    ("POST", "/admin/users/{user_id}/active", "ADMINS", "user_active"),
    ("GET", "/admin/audit", "ADMINS", "audit"),
    ("GET", "/admin/audit.csv", "ADMINS", "audit_csv"),
    ("GET", "/api/v1/audit", "ADMINS", "audit_api"),
    ("GET", "/admin/config", "ADMINS", "config"),
    ("POST", "/admin/config", "ADMINS", "config_apply"),
    ("GET", "/admin/changes", "WATCHERS", "config_changes"),
    ("GET", "/api/v1/config/changes", "WATCHERS", "config_changes_api"),
    ("POST", "/admin/changes/apply", "WATCHERS", "config_change_apply"),
    ("POST", "/api/v1/config/changes/apply", "WATCHERS", "config_change_apply_api"),
    ("GET", "/admin/changes/{change_id}/restore", "WATCHERS", "config_change_restore"),
    ("GET", "/api/v1/config", "ADMINS", "config_api"),
    ("POST", "/api/v1/config", "ADMINS", "config_apply_api"),
    # Open311 API keys of client apps, for administrators (issue 14).
    ("GET", "/admin/api-keys", "ADMINS", "api_keys"),
    ("POST", "/admin/api-keys", "ADMINS", "api_key_issue"),
    ("GET", r"/admin/api-keys/{key_id:\d+}/revoke", "ADMINS", "api_key_revoke_confirm"),
    ("POST", r"/admin/api-keys/{key_id:\d+}/revoke", "ADMINS", "api_key_revoke"),
    # The public page of published cases and the consent / publication (issue 13).
    ("GET", "/public/cases", "PUBLIC", "public_cases"),
    ("GET", "/public/cases/{public_id}", "PUBLIC", "public_case"),
    ("GET", "/public/{hotline_id}/cases", "PUBLIC", "public_hotline_cases"),
    ("POST", "/cases/{code}/consent", "STAFF", "case_consent"),
    ("POST", "/api/v1/cases/{code}/consent", "STAFF", "case_consent_api"),
    ("POST", "/cases/{code}/publish", "WATCHERS", "case_publish"),
    ("POST", "/api/v1/cases/{code}/publish", "WATCHERS", "case_publish_api"),
    ("POST", "/cases/{code}/unpublish", "WATCHERS", "case_unpublish"),
    ("POST", "/api/v1/cases/{code}/unpublish", "WATCHERS", "case_unpublish_api"),
    # The public report form and its status page (issue 14).
    ("GET", "/report", "PUBLIC", "report_form"),
    ("POST", "/report", "PUBLIC", "report_submit"),
    ("GET", "/report/status", "PUBLIC", "report_status"),
    ("POST", "/report/status", "PUBLIC", "report_status_lookup"),
    ("GET", "/report/{hotline_id}", "PUBLIC", "report_hotline_form"),
    ("POST", "/report/{hotline_id}", "PUBLIC", "report_hotline_submit"),
    ("GET", "/report/{hotline_id}/status", "PUBLIC", "report_hotline_status"),
    ("POST", "/report/{hotline_id}/status", "PUBLIC", "report_hotline_status_lookup"),
    # The queue of written work, the case's thread, attachments and replies (issue 14).
    ("GET", "/written", "STAFF", "written_work"),
    ("GET", "/api/v1/written-work", "STAFF", "written_work_api"),
    ("GET", "/api/v1/written-work/counts", "STAFF", "written_counts_api"),
    ("GET", "/api/v1/cases/{code}/thread", "STAFF", "case_thread_api"),
    ("POST", "/cases/{code}/replies", "STAFF", "case_reply"),
    ("POST", "/api/v1/cases/{code}/replies", "STAFF", "case_reply_api"),
    ("GET", "/cases/{code}/attachments/{attachment_id}", "FORWARD_READERS", "case_attachment"),
    # Webhooks of the written channels (issue 14), signed by their senders.
    ("POST", "/channels/sms/inbound", "PUBLIC", "channel_sms_inbound"),
    ("POST", "/channels/zalo/webhook", "PUBLIC", "channel_zalo_webhook"),
    # Open311 GeoReport v2 (issue 14): public reads, POSTs with an app's API key.
    ("GET", "/open311/v2/discovery.{fmt:[a-z0-9]+}", "PUBLIC", "open311_discovery"),
    ("GET", "/open311/v2/services.{fmt:[a-z0-9]+}", "PUBLIC", "open311_services"),
    ("GET", "/open311/v2/services/{service_code}.{fmt:[a-z0-9]+}", "PUBLIC", "open311_service"),
    ("POST", "/open311/v2/requests.{fmt:[a-z0-9]+}", "PUBLIC", "open311_post_request"),
    ("GET", "/open311/v2/requests.{fmt:[a-z0-9]+}", "PUBLIC", "open311_requests"),
    ("GET", "/open311/v2/requests/{request_id}.{fmt:[a-z0-9]+}", "PUBLIC", "open311_request"),
    # The people forms (issue 16): queues and agents for a hotline's supervisors too.
    ("GET", "/admin/queues", "WATCHERS", "people_queues"),
    ("POST", "/admin/queues", "WATCHERS", "people_queue_add"),
    ("GET", "/admin/queues/{queue_id}", "WATCHERS", "people_queue"),
    ("POST", "/admin/queues/{queue_id}", "WATCHERS", "people_queue_save"),
    ("POST", "/admin/queues/{queue_id}/remove", "WATCHERS", "people_queue_remove"),
    ("GET", "/admin/agents", "WATCHERS", "people_agents"),
    ("POST", "/admin/agents", "WATCHERS", "people_agent_add"),
    ("GET", "/admin/agents/{agent_id}", "WATCHERS", "people_agent"),
    ("POST", "/admin/agents/{agent_id}", "WATCHERS", "people_agent_save"),
    ("POST", "/admin/agents/{agent_id}/remove", "WATCHERS", "people_agent_remove"),
    ("POST", "/admin/agents/{agent_id}/user", "WATCHERS", "people_agent_user"),
    ("GET", "/admin/phones", "ADMINS", "people_phones"),
    ("POST", "/admin/phones", "ADMINS", "people_phone_add"),
    ("GET", "/admin/phones/{phone_id}", "ADMINS", "people_phone"),
    ("POST", "/admin/phones/{phone_id}", "ADMINS", "people_phone_save"),
    ("POST", "/admin/phones/{phone_id}/remove", "ADMINS", "people_phone_remove"),
    ("POST", "/admin/phones/{phone_id}/secret", "ADMINS", "people_phone_secret"),
    # The roster calendar and the holidays' yearly view (issue 16).
    ("GET", "/admin/roster", "WATCHERS", "roster_week"),
    ("POST", "/admin/roster/cell", "WATCHERS", "roster_cell"),
    ("POST", "/admin/roster/swap", "WATCHERS", "roster_swap"),
    ("GET", "/admin/holidays", "WATCHERS", "holidays_year"),
    ("POST", "/admin/holidays", "ADMINS", "holidays_change"),
    # The ward forms (issue 16): a hotline's supervisor changes its own wards.
    ("GET", "/admin/wards", "WATCHERS", "wards"),
    ("GET", "/admin/wards/{code}", "WATCHERS", "ward"),
    ("POST", "/admin/wards/{code}/chairman", "WATCHERS", "ward_chairman"),
    ("POST", "/admin/wards/{code}/fallbacks", "WATCHERS", "ward_fallbacks"),
    ("POST", "/admin/wards/{code}/test-call", "WATCHERS", "ward_test_call"),
    # Departments, office hours and the complaints message (issue 16).
    ("GET", "/admin/departments", "WATCHERS", "departments"),
    ("POST", "/admin/departments", "WATCHERS", "department_add"),
    ("POST", "/admin/departments/{code}", "WATCHERS", "department_change"),
    ("GET", "/admin/schedules", "WATCHERS", "schedules"),
    ("GET", "/admin/schedules/{schedule_id}", "WATCHERS", "schedule"),
    ("POST", "/admin/schedules/{schedule_id}", "WATCHERS", "schedule_change"),
    ("GET", "/admin/hotlines/{hotline_id}/referral", "WATCHERS", "referral"),
    ("POST", "/admin/hotlines/{hotline_id}/referral", "WATCHERS", "referral_change"),
    # Studio voice prompts (issue 16): a hotline's supervisor manages its own.
    ("GET", "/admin/prompts", "WATCHERS", "prompts"),
    ("GET", "/admin/prompts/{hotline}/{lang}", "WATCHERS", "prompts_list"),
    ("GET", "/admin/prompts/{hotline}/{lang}/{name}/audio", "WATCHERS", "prompt_audio"),
    ("POST", "/admin/prompts/{hotline}/{lang}/{name}/upload", "WATCHERS", "prompt_upload"),
    ("GET", "/admin/prompts/{hotline}/{lang}/new/{token}", "WATCHERS", "prompt_preview"),
    ("GET", "/admin/prompts/{hotline}/{lang}/new/{token}/audio", "WATCHERS", "prompt_new_audio"),
    ("POST", "/admin/prompts/{hotline}/{lang}/new/{token}/confirm", "WATCHERS", "prompt_confirm"),
    ("POST", "/admin/prompts/{hotline}/{lang}/new/{token}/discard", "WATCHERS", "prompt_discard"),
    ("GET", "/admin/prompts/{hotline}/{lang}/{name}/remove", "WATCHERS", "prompt_remove_confirm"),
    ("POST", "/admin/prompts/{hotline}/{lang}/{name}/remove", "WATCHERS", "prompt_remove"),
]
FEATURES = (
    "auth",
    "health",
    "metrics",
    "openapi",
    "wallboard",
    "stats",
    "agent",
    "calls",
    "cases",
    "forwarding",
    "unit_portal",
    "knowledge",
    "public",
    "citizen_form",
    "admin",
    "api_keys_admin",
    "written_work",
    "sms_inbound",
    "zalo",
    "open311",
    "admin_people",
    "admin_roster",
    "admin_holidays",
    "admin_wards",
    "admin_office",
    "config_changes",
    "admin_prompts",
)


def test_each_feature_declares_its_routes_and_the_table_is_unchanged() -> None:
    from ivr.web import app, state

    modules = [importlib.import_module(f"ivr.web.{name}") for name in FEATURES]
    assert [route for module in modules for route in module.ROUTES] == app.ROUTES
    for module in modules:
        for route in module.ROUTES:
            assert route.handler.__module__ == module.__name__, route.name
    names = ("PUBLIC", "STAFF", "WATCHERS", "ADMINS", "AGENTS", "UNITS", "SIGNED_IN",
             "FORWARD_READERS", "FORWARD_ACTORS")  # fmt: skip
    roles = {n: getattr(state, n) for n in names}
    assert sorted((r.method, r.path, r.roles, r.name) for r in app.ROUTES) == sorted(
        (method, path, roles[role], name) for method, path, role, name in ROUTE_TABLE
    )
    # The middleware tells a public route by identity.
    assert all(r.roles is state.PUBLIC for r in app.ROUTES if r.roles == state.PUBLIC)


def test_handlers_hold_no_sql_and_no_ami() -> None:
    """Handlers call the stores, the case service and the queue manager: from
    SQLAlchemy the console's modules take only the session types they pass on,
    and no AMI action is spelled in them."""
    for name in (*FEATURES, "app", "reads", "rendering", "exports"):
        source = Path(importlib.import_module(f"ivr.web.{name}").__file__ or "").read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sqlalchemy") for a in node.names), name
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                assert {a.name for a in node.names} <= {"Session", "sessionmaker"}, name
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert not literals & {"Action", "Originate", "CoreShowChannels"}, name


@pytest.mark.db
async def test_the_written_summary_is_saved_with_one_history_event_per_change(
    console: Console,
) -> None:
    from ivr.cases.service import CaseService
    from ivr.web.store import case_with_history

    service = CaseService(console.sessions, console.config)
    case = service.open_case(
        channel="phone", hotline_id=console.config.hotlines[0].id, caller_number="+84912000999"
    )
    service.set_summary(case.code, "Đèn đường hỏng", "dtv1")
    service.set_summary(case.code, "Đèn đường hỏng", "dtv1")  # unchanged: no second event
    supervisor, token = await console.signed_in("giamsat")
    answer = await supervisor.post(
        f"/api/v1/cases/{case.code}", json={"summary": "Đèn đường hỏng ở ngõ 5"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert answer.status == 200 and (await answer.json())["ok"]
    saved = case_with_history(console.sessions, case.code)
    assert saved is not None and saved.summary == "Đèn đường hỏng ở ngõ 5"
    assert [(e.actor, e.note) for e in saved.history if e.action == "summary"] == [
        ("dtv1", "14 characters"), ("giamsat", "22 characters")
    ]  # fmt: skip


@pytest.mark.db
async def test_posts_without_the_csrf_token_are_refused(console: Console) -> None:
    agent, token = await console.signed_in("dtv1")
    assert (await agent.post("/agent/pause", data={"reason": "break"})).status == 403
    assert (
        await agent.post("/agent/pause", data={"reason": "break", "csrf_token": "forged"})
    ).status == 403
    assert console.manager.calls == []
    ok = await agent.post(
        "/agent/pause", data={"reason": "meal"}, headers={"X-CSRF-Token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert ok.status == 303
    assert console.manager.calls == [("pause", (console.config.agents[0].id, "meal"))]
    # The login form has its own token (no session yet).
    fresh = await console.client()
    bad = await fresh.post("/login", data={"username": "dtv1", "password": PASSWORD})
    assert bad.status == 403


@pytest.mark.db
async def test_login_is_rate_limited_and_audited(console: Console) -> None:
    client = await console.client()
    token = _csrf(await (await client.get("/login")).text())
    statuses = []
    for _ in range(4):
        answer = await client.post(
            "/login",
            data={"username": "giamsat", "password": "wrong-password", "csrf_token": token},
        )
        statuses.append(answer.status)
    assert statuses == [401, 401, 401, 429]
    # Even the right password waits out the window now.
    right = await client.post(
        "/login", data={"username": "giamsat", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert right.status == 429
    assert "Đăng nhập sai quá nhiều lần" in await right.text()
    with console.sessions() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
    assert actions.count("login_failed") == 3 and "login_blocked" in actions


@pytest.mark.db
async def test_disabling_a_user_ends_its_sessions(console: Console) -> None:
    agent, _ = await console.signed_in("dtv2")
    assert (await agent.get("/agent")).status == 200
    users = UserStore(console.sessions)
    target = next(u for u in users.all() if u.username == "dtv2")
    admin, token = await console.signed_in("quantri")
    answer = await admin.post(
        f"/admin/users/{target.id}/active", data={"active": "0"}, headers={"X-CSRF-Token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status == 303
    assert (await agent.get("/agent", allow_redirects=False)).status == 302


def _add_call_with_recording(console: Console, path: Path, uniqueid: str) -> int:
    now = utc_now()
    with console.sessions.begin() as session:
        session.add(
            Call(uniqueid=uniqueid, linkedid=uniqueid, hotline_id="bac-tu-liem",
                 caller_number="+84912000111", started_at=now, outcome="answered")
        )  # fmt: skip
        recording = Recording(call_uniqueid=uniqueid, kind="mix", path=str(path), created_at=now)
        session.add(recording)
        session.flush()
        return recording.id


@pytest.mark.db
async def test_recordings_are_served_by_id_only_inside_the_folder_and_audited(
    console: Console, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir(exist_ok=True)
    inside = folder / "a.wav"
    inside.write_bytes(b"RIFF" + b"\0" * 60)
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF" + b"\0" * 60)
    good = _add_call_with_recording(console, inside, "1700000000.1")
    evil = _add_call_with_recording(console, folder / ".." / "secret.wav", "1700000000.2")

    supervisor, _ = await console.signed_in("giamsat")
    answer = await supervisor.get(f"/recordings/{good}")
    assert answer.status == 200 and (await answer.read()).startswith(b"RIFF")
    download = await supervisor.get(f"/recordings/{good}?download=1")
    assert "attachment" in download.headers["Content-Disposition"]
    assert (await supervisor.get(f"/recordings/{evil}")).status == 404
    assert (await supervisor.get("/recordings/..%2Fsecret.wav")).status == 404
    # An agent hears only the calls it answered.
    agent, _ = await console.signed_in("dtv1")
    assert (await agent.get(f"/recordings/{good}")).status == 403
    with console.sessions() as session:
        entries = [(e.actor, e.action, e.target) for e in session.scalars(select(AuditEntry))]
    assert ("giamsat", "listen", f"recording {good}") in entries
    assert ("giamsat", "download", f"recording {good}") in entries
    assert ("dtv1", "listen_refused", f"recording {good}") in entries


@pytest.mark.db
async def test_case_opened_by_an_agent_is_found_by_number_and_exported(console: Console) -> None:
    agent, token = await console.signed_in("dtv1")
    opened = await agent.post(
        "/api/v1/cases",
        json={"caller_number": "0912 000 222", "summary": "Đèn đường hỏng ở ngõ 5",
              "topic": "hien-truong"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert opened.status == 200, await opened.text()
    code = (await opened.json())["code"]
    found = await (await agent.get("/cases", params={"number": "0912000222"})).text()
    assert code in found and "Đèn đường hỏng" in found
    listed = await (await agent.get("/api/v1/cases", params={"code": code})).json()
    assert [c["caller_number"] for c in listed] == ["+84912000222"]
    updated = await agent.post(
        f"/api/v1/cases/{code}", json={"status": "in_progress", "note": "đã gọi lại"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert updated.status == 200
    detail = await (await agent.get(f"/api/v1/cases/{code}")).json()
    assert detail["status"] == "in_progress"
    assert [h["action"] for h in detail["history"]] == ["opened", "status"]
    supervisor, _ = await console.signed_in("giamsat")
    csv_text = (await (await supervisor.get("/cases.csv")).read()).decode("utf-8-sig")
    assert code in csv_text and "Đèn đường hỏng" in csv_text
    excel = await supervisor.get("/cases.xlsx", params={"number": "0912000222"})
    assert excel.status == 200 and excel.content_type.endswith(".sheet")
    assert 'filename="cases.xlsx"' in excel.headers["Content-Disposition"]
    rows = _read_xlsx(await excel.read())
    assert rows[0][:2] == ("code", "status")
    found_row = dict(zip(rows[0], rows[1], strict=True))
    assert found_row["code"] == code and found_row["summary"] == "Đèn đường hỏng ở ngõ 5"
    assert found_row["caller_number"] == "+84912000222"  # text, not a number
    assert (await agent.get("/cases.xlsx")).status == 403
    with console.sessions() as session:
        exports = [(e.actor, e.target) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "export"))]  # fmt: skip
    assert ("giamsat", "cases.xlsx") in exports


async def test_case_page_shows_the_dialogue_and_search_finds_its_words(
    console: Console, sessions: Any
) -> None:
    from ivr.cases.models import Case, Transcript, TranscriptionJob
    from ivr.queue_records.models import QueueCall
    from ivr.transcription.recognizer import Turn, dialogue_json, dialogue_text

    # dtv1 answered the call (an agent may link a case only to its own calls).
    with sessions.begin() as session:
        session.add(QueueCall(node="local", uniqueid="1801.7", first_queue="operator",
                              queue="operator", joined_at=utc_now(), outcome="answered",
                              agent_id=console.config.agents[0].id))  # fmt: skip
    agent, token = await console.signed_in("dtv1")
    opened = await agent.post(
        "/api/v1/cases",
        json={"caller_number": "0912000333", "summary": "Hố ga mất nắp ở ngõ 7",
              "call_uniqueid": "1801.7"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    code = (await opened.json())["code"]
    page = await (await agent.get(f"/cases/{code}")).text()
    assert 'id="transcript"' in page and "Chưa có bản ghi lời nói" in page
    # The worker ran after the case was opened (as it does at hangup).
    turns = [Turn("agent", 0.4, 1.9, "xin chào"), Turn("caller", 65.2, 68.0, "hố ga mất nắp")]
    text = dialogue_text(turns)
    with sessions.begin() as session:
        job = TranscriptionJob(call_uniqueid="1801.7", status="done", attempts=1)
        session.add(job)
        session.flush()
        case = session.scalar(select(Case).where(Case.code == code))
        assert case is not None and case.call_uniqueid == "1801.7"
        session.add(Transcript(call_uniqueid="1801.7", job_id=job.id, case_id=case.id,
                               text=text, dialogue=dialogue_json([], turns)))  # fmt: skip
        case.transcript = text
    page = await (await agent.get(f"/cases/{code}")).text()
    lines = re.findall(
        r'<li class="turn" data-speaker="(\w+)"><time[^>]*>([\d:]+)</time> '
        r'<b class="turn-speaker">([^<]+)</b>: <span class="turn-text">([^<]+)</span>',
        page,
    )
    assert lines == [("agent", "0:00", "Cán bộ", "xin chào"),
                     ("caller", "1:05", "Người gọi", "hố ga mất nắp")]  # fmt: skip
    assert "\n".join(f"{who}: {said}" for _, _, who, said in lines) == text
    # q matches the transcript or the summary (ASCII letters in any case: non-ASCII
    # case folding is the database's); LIKE wildcards are plain characters.
    for words, found in (("mất nắp", True), ("ngõ 7", True), ("XIN chào", True),
                         ("ngõ 8", False), ("%", False), ("_", False)):  # fmt: skip
        listed = await (await agent.get("/api/v1/cases", params={"q": words})).json()
        assert ([c["code"] for c in listed] == [code]) is found, words
    search = await (await agent.get("/cases", params={"q": "xin chào"})).text()
    assert f'data-code="{code}"' in search and 'value="xin chào"' in search


@pytest.mark.db
async def test_statistics_page_draws_svg_charts(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    _add_call_with_recording(console, Path("/nonexistent.wav"), "1700000001.1")
    page = await supervisor.get("/stats")
    html = await page.text()
    assert page.status == 200 and html.count("<svg") >= 5
    assert "Số cuộc gọi theo ngày" in html
    english = await supervisor.get("/lang/en", params={"next": "/stats"})
    assert "Calls per day" in await english.text()
    figures = await (await supervisor.get("/api/v1/stats")).json()
    assert figures["calls"] == 1 and figures["distinct_callers"] == 1


@pytest.mark.db
async def test_openapi_describes_exactly_the_api_routes(console: Console) -> None:
    client = await console.client()
    document = await (await client.get("/api/openapi.json")).json()
    assert console.server is not None
    registered = {
        (r.method.lower(), r.resource.canonical)
        for r in console.server.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/v1/")
    }
    described = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert registered == described
    assert set(document["paths"]) == set(PATHS)


@pytest.mark.db
async def test_wallboard_socket_follows_the_live_model(console: Console) -> None:
    supervisor, _ = await console.signed_in("giamsat")
    model = console.manager.model
    model.resync([{"Event": "QueueParams", "Queue": "operator"}])
    async with supervisor.ws_connect("/ws/wallboard") as ws:
        first = json.loads((await ws.receive()).data)
        assert first["type"] == "wallboard"
        model.apply(
            {"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": "9.1",
             "Channel": "PJSIP/x-1", "CallerIDNum": "0912000333", "Position": "1"}
        )  # fmt: skip
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        operator = next(q for q in frame["board"]["queues"] if q["id"] == "operator")
        assert [c["caller_id"] for c in operator["callers"]] == ["0912000333"]
        model.apply({"Event": "QueueCallerLeave", "Queue": "operator", "Uniqueid": "9.1",
                     "Position": "1"})  # fmt: skip
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        operator = next(q for q in frame["board"]["queues"] if q["id"] == "operator")
        assert operator["callers"] == []


async def test_hub_coalesces_a_burst_into_one_frame(config: HotlineConfig) -> None:
    manager = FakeManager(config)
    hub = LiveHub(config, manager)
    hub.start()
    sent: list[str] = []

    class Recorder:
        closed = False

        async def send_str(self, data: str) -> None:
            sent.append(data)

        async def close(self, **_: Any) -> None:
            self.closed = True

    from ivr.web.live import Client

    client = Client(Recorder(), "wallboard")  # type: ignore[arg-type]
    hub.clients.add(client)
    for n in range(20):
        manager.model.apply(
            {"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": f"1.{n}",
             "CallerIDNum": "0912000444", "Position": str(n + 1)}
        )  # fmt: skip
    await asyncio.sleep(0)  # let the scheduled flush run
    assert client.outbox.qsize() == 1
    await hub.close()


@pytest.mark.db
async def test_failed_transcription_jobs_show_their_reason_to_supervisors(
    console: Console, sessions: Any
) -> None:
    from ivr.cases.models import TranscriptionJob

    with sessions.begin() as session:
        session.add(
            TranscriptionJob(
                call_uniqueid="1795.1",
                status="failed",
                attempts=1,
                error="cannot decode /r/1795.1-caller.wav",
            )
        )
        session.add(TranscriptionJob(call_uniqueid="1795.2", status="done", attempts=1))
    supervisor, _ = await console.signed_in("giamsat")
    page = await (await supervisor.get("/jobs")).text()
    assert "Tác vụ chuyển lời thoại" in page and "cannot decode /r/1795.1-caller.wav" in page
    assert "1795.2" not in page  # done jobs need no attention
    jobs = await (await supervisor.get("/api/v1/jobs")).json()
    assert [(j["call"], j["status"]) for j in jobs] == [("1795.1", "failed")]
    agent, _ = await console.signed_in("dtv1")
    assert (await agent.get("/jobs")).status == 403
