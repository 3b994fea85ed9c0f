"""The public page of selected cases (issue 13) through the console with a
real database: consent recorded by agents and supervisors, publication
refused without it (400 with the reason), publish and unpublish audited, the
public list and detail reachable without a session and showing no number,
name or case code, another hotline's supervisor refused (403, audited).

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from ivr.audit import AuditEntry
from ivr.cases.models import ANSWERED, IN_PROGRESS, Case, CaseEvent
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine
from ivr.web import public
from tests.rig.console import Account, console_sessions
from tests.test_web import PASSWORD, Console, FakeManager, _config

CITIZEN = "+84912000678"
NAME = "Nguyễn Văn An"
SUMMARY = (
    "Ông Nguyễn Văn An (0912 000 678, an.nguyen@gmail.com) phản ánh đèn đường "
    "ngõ 5 phố Đông Ngạc hỏng từ 01/07/2025."
)
ANSWER = "UBND phường đã thay bóng đèn ngày 05/07/2025; liên hệ ông An qua 0912000678."
OTHER_HOTLINE = "tong-dai-1022"


@pytest.fixture
def config(tmp_path: Any) -> HotlineConfig:
    return _config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("giamsat", "supervisor", hotline_id=config.hotlines[0].id),
        Account("giamsat-1022", "supervisor", hotline_id=OTHER_HOTLINE),
        Account("dtv1", "agent", agent_id=config.agents[0].id),
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


def _answered_case(console: Console, *, by: str = "dtv1") -> str:
    """A case opened by agent dtv1, then answered (as the forwarding would)."""
    service = CaseService(console.sessions, console.config)
    case = service.open_case(
        channel="phone", hotline_id=console.config.hotlines[0].id, caller_number=CITIZEN,
        caller_name=NAME, summary=SUMMARY, topic="hien-truong", area_code="dong-ngac",
        actor=by,
    )  # fmt: skip
    with console.sessions.begin() as session:
        session.execute(update(Case).where(Case.code == case.code).values(answer=ANSWER))
    service.change_status(case.code, IN_PROGRESS, by)
    service.change_status(case.code, ANSWERED, by)
    return case.code


def _audit(console: Console, action: str) -> list[AuditEntry]:
    with console.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _case(console: Console, code: str) -> Case:
    with console.sessions() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        return case


@pytest.mark.db
async def test_publishing_needs_consent_and_the_public_page_shows_no_personal_data(
    console: Console,
) -> None:
    code = _answered_case(console)
    supervisor, token = await console.signed_in("giamsat")
    texts = {"title": "Đèn đường ngõ 5 Đông Ngạc hỏng", "text": "Đèn đường ngõ 5 hỏng.",
             "answer": "UBND phường đã thay bóng đèn."}  # fmt: skip
    headers = {"X-CSRF-Token": token}

    # No consent recorded: refused with the reason, nothing published, nothing audited.
    refused = await supervisor.post(f"/api/v1/cases/{code}/publish", json=texts, headers=headers)
    assert refused.status == 400
    assert "consent" in (await refused.json())["error"]
    assert _case(console, code).published_at is None and _audit(console, "publish_case") == []

    # The agent who took the call ticks the consent box after asking.
    agent, agent_token = await console.signed_in("dtv1")
    page = await agent.get(f"/cases/{code}")
    assert 'id="publish-consent"' in await page.text()
    assert 'id="publish-form"' not in await page.text()  # publishing is a supervisor's
    ticked = await agent.post(
        f"/cases/{code}/consent", data={"consent": "1", "note": "hỏi trong cuộc gọi",
                                        "csrf_token": agent_token}, allow_redirects=False,
    )  # fmt: skip
    assert ticked.status == 303
    recorded = _case(console, code)
    assert recorded.publish_consent and recorded.publish_consent_by == "dtv1"
    assert recorded.publish_consent_at is not None
    assert [a.actor for a in _audit(console, "publish_consent")] == ["dtv1"]
    # An agent may not publish.
    assert (await agent.post(f"/api/v1/cases/{code}/publish", json=texts,
                             headers={"X-CSRF-Token": agent_token})).status == 403  # fmt: skip

    # The supervisor's form is pre-filled without the number, e-mail or name.
    form = await (await supervisor.get(f"/cases/{code}")).text()
    publish_form = form[form.index('id="publish-form"') :]
    publish_form = publish_form[: publish_form.index("</form>")]
    assert "phản ánh đèn đường" in publish_form
    for personal in ("0912 000 678", "0912000678", "an.nguyen@gmail.com", NAME):
        assert personal not in publish_form, personal

    # Texts still carrying the caller's number or name are refused.
    leaky = {**texts, "answer": "Đã gọi lại số 0912.000.678 của ông Nguyễn Văn An."}
    refused = await supervisor.post(f"/api/v1/cases/{code}/publish", json=leaky, headers=headers)
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert "phone number" in error and "name" in error

    published = await supervisor.post(f"/api/v1/cases/{code}/publish", json=texts, headers=headers)
    assert published.status == 200, await published.text()
    public_id = (await published.json())["public_id"]
    assert len(public_id) >= 12 and code not in public_id
    [entry] = _audit(console, "publish_case")
    assert (entry.actor, entry.target) == ("giamsat", f"case {code}")
    with console.sessions() as session:
        actions = session.scalars(
            select(CaseEvent.action).join(Case).where(Case.code == code)
        ).all()
    assert "publish_consent" in actions and "published" in actions

    # The public page: no session, no cookie, the console's headers.
    anonymous = await console.client()
    listing = await anonymous.get("/public/cases")
    assert listing.status == 200
    body = await listing.text()
    assert "Đèn đường ngõ 5 Đông Ngạc hỏng" in body and "UBND phường đã thay bóng đèn." in body
    assert "Sự việc tại hiện trường" in body  # the topic's name
    assert "Set-Cookie" not in listing.headers
    assert "frame-ancestors 'none'" in listing.headers["Content-Security-Policy"]
    assert listing.headers["X-Content-Type-Options"] == "nosniff"
    hotline_list = await anonymous.get(f"/public/{console.config.hotlines[0].id}/cases")
    assert public_id in await hotline_list.text()
    other_list = await anonymous.get(f"/public/cases?hotline={OTHER_HOTLINE}")
    assert other_list.status == 404  # not a hotline of this deployment
    detail = await anonymous.get(f"/public/cases/{public_id}?lang=en")
    assert detail.status == 200
    page_text = await detail.text()
    assert "Answer" in page_text and 'lang="en"' in page_text
    # Received and answered dates, as the citizen reads them.
    zone = ZoneInfo(console.config.timezone)
    with console.sessions() as session:
        answered_at = session.scalar(
            select(CaseEvent.at)
            .join(Case)
            .where(Case.code == code, CaseEvent.to_status == ANSWERED)
        )
    received = _case(console, code).received_at.astimezone(zone).strftime("%d/%m/%Y")
    assert answered_at is not None
    assert f"<dt>Received</dt><dd>{received}</dd>" in page_text
    assert f"<dt>Answered</dt><dd>{answered_at.astimezone(zone):%d/%m/%Y}</dd>" in page_text
    for leaked in (code, CITIZEN, "0912000678", "0912 000 678", NAME, "an.nguyen", "dtv1"):
        assert leaked not in body and leaked not in page_text, leaked
    # The internal code does not open it.
    assert (await anonymous.get(f"/public/cases/{code}")).status == 404

    # Unpublish: gone from the page at once, audited; the texts stay for next time.
    gone = await supervisor.post(f"/api/v1/cases/{code}/unpublish", json={}, headers=headers)
    assert gone.status == 200
    assert [a.actor for a in _audit(console, "unpublish_case")] == ["giamsat"]
    assert (await anonymous.get(f"/public/cases/{public_id}")).status == 404
    assert public_id not in await (await anonymous.get("/public/cases")).text()
    assert _case(console, code).public_title == texts["title"]


@pytest.mark.db
async def test_withdrawn_consent_unpublishes_and_an_open_case_cannot_be_published(
    console: Console,
) -> None:
    code = _answered_case(console)
    supervisor, token = await console.signed_in("giamsat")
    headers = {"X-CSRF-Token": token}
    texts = {"title": "Đèn hỏng", "text": "Đèn hỏng.", "answer": "Đã sửa."}
    await supervisor.post(f"/api/v1/cases/{code}/consent", json={"consent": True}, headers=headers)
    published = await supervisor.post(f"/api/v1/cases/{code}/publish", json=texts, headers=headers)
    public_id = (await published.json())["public_id"]
    withdrawn = await supervisor.post(
        f"/api/v1/cases/{code}/consent", json={"consent": False, "note": "công dân rút lại"},
        headers=headers,
    )  # fmt: skip
    assert withdrawn.status == 200
    assert _case(console, code).published_at is None
    assert [a.detail for a in _audit(console, "publish_consent_withdrawn")] == ["công dân rút lại"]
    anonymous = await console.client()
    assert (await anonymous.get(f"/public/cases/{public_id}")).status == 404

    # A case still being handled has no answer to publish.
    service = CaseService(console.sessions, console.config)
    open_case = service.open_case(
        channel="phone",
        hotline_id=console.config.hotlines[0].id,
        caller_number=CITIZEN,
        summary="Rác chưa thu",
        actor="dtv1",
    )
    await supervisor.post(f"/api/v1/cases/{open_case.code}/consent", json={"consent": True},
                          headers=headers)  # fmt: skip
    refused = await supervisor.post(
        f"/api/v1/cases/{open_case.code}/publish", json=texts, headers=headers
    )
    assert refused.status == 400 and "answered" in (await refused.json())["error"]


@pytest.mark.db
async def test_another_hotlines_supervisor_may_not_record_consent_or_publish(
    console: Console,
) -> None:
    code = _answered_case(console)
    other, token = await console.signed_in("giamsat-1022")
    headers = {"X-CSRF-Token": token}
    for action, body in (("consent", {"consent": True}),
                         ("publish", {"title": "x", "text": "x", "answer": "x"}),
                         ("unpublish", {})):  # fmt: skip
        answer = await other.post(f"/api/v1/cases/{code}/{action}", json=body, headers=headers)
        assert answer.status == 403, action
    assert _case(console, code).publish_consent is False
    refusals = {a.action for a in _audit(console, "publish_consent_refused")}
    refusals |= {a.action for a in _audit(console, "publish_case_refused")}
    refusals |= {a.action for a in _audit(console, "unpublish_case_refused")}
    assert refusals == {"publish_consent_refused", "publish_case_refused",
                        "unpublish_case_refused"}  # fmt: skip


@pytest.mark.db
async def test_the_public_page_is_rate_limited_per_address(console: Console) -> None:
    anonymous = await console.client()
    for _ in range(public.PUBLIC_REQUESTS):
        assert (await anonymous.get("/public/cases")).status == 200
    limited = await anonymous.get("/public/cases")
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    # Signed-in pages are not counted against it.
    supervisor, _ = await console.signed_in("giamsat")
    assert (await supervisor.get("/cases")).status == 200


def test_the_public_templates_never_name_the_case_code_or_the_caller() -> None:
    """What the public templates may print is what PublicCase carries."""
    from dataclasses import fields
    from pathlib import Path

    from ivr.cases.publication import PublicCase

    carried = {f.name for f in fields(PublicCase)}
    assert not carried & {"code", "caller_number", "caller_name", "transcript", "summary"}
    templates = Path(public.__file__).parent / "templates"
    for name in ("public_cases.html", "public_case.html", "public_base.html"):
        text = (templates / name).read_text(encoding="utf-8")
        used = set(re.findall(r"\bc(?:ase)?\.(\w+)", text))
        assert used <= carried, (name, used - carried)


@pytest.mark.db
def test_the_migration_adds_the_publication_columns_as_the_model_declares(
    config: HotlineConfig, sessions: Any
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ivr.db.registry import Base

    ours = {"publish_consent", "publish_consent_by", "publish_consent_at",
            "publish_consent_note", "public_id", "public_title", "public_text",
            "public_answer", "published_at", "published_by"}  # fmt: skip

    def about_us(diff: Any) -> bool:
        text = repr(diff)  # Alembic's diff tuples name tables, columns and indexes
        return "'cases'" in text and any(f"'{c}'" in text or f"ix_cases_{c}" in text for c in ours)

    engine = make_engine(config.database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert [d for d in compare_metadata(context, Base.metadata) if about_us(d)] == []
    finally:
        engine.dispose()
    # The filter sees our columns when they are missing (migrated only to 0012).
    older = make_engine("sqlite://")
    try:
        Base.metadata.create_all(older)
        with older.begin() as connection:
            for column in ("published_at", "public_id"):
                connection.exec_driver_sql(f"DROP INDEX ix_cases_{column}")
            for column in sorted(ours):
                connection.exec_driver_sql(f"ALTER TABLE cases DROP COLUMN {column}")
        with older.connect() as connection:
            context = MigrationContext.configure(connection)
            missing = [d for d in compare_metadata(context, Base.metadata) if about_us(d)]
    finally:
        older.dispose()
    assert len(missing) >= len(ours)
