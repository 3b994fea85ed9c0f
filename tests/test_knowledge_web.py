"""The knowledge base in the console (two hotlines): the agent's accent-free
search during a call, the supervisors' CSV upload (a bad row: its line and
column, nothing imported), who may edit which article, and a case answered
and closed from an article with the answer texted to the citizen."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import Case
from ivr.config import HotlineConfig, load_config
from ivr.db.models import Call, utc_now
from ivr.knowledge.service import KNOWLEDGE_ANSWER
from ivr.queue_records.models import QueueCall
from tests.rig.console import Account, console_sessions
from tests.test_tenancy import B_AGENT, A, B, write_config
from tests.test_web import PASSWORD, Console, FakeManager

SEED = Path(__file__).resolve().parents[1] / "examples" / "knowledge-base.csv"


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("quantri", "admin"),
        Account("gs-a", "supervisor", hotline_id=A),
        Account("gs-b", "supervisor", hotline_id=B),
        Account("dtv-a", "agent", agent_id="dtv01"),
        Account("dtv-b", "agent", agent_id=B_AGENT),
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


async def _upload(client: TestClient, token: str, name: str, data: bytes, **headers: str) -> Any:
    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", data, filename=name, content_type="text/csv")
    return await client.post("/knowledge/import", data=form, allow_redirects=False, headers=headers)


async def _create(client: TestClient, token: str, **fields: Any) -> Any:
    return await client.post("/api/v1/knowledge", json=fields, headers={"X-CSRF-Token": token})


def test_every_csv_problem_has_its_text_in_the_console_catalogue() -> None:
    from ivr.knowledge.csv_import import CSV_PROBLEM_TEXTS
    from ivr.web.i18n import VI
    from ivr.web.knowledge import PROBLEM_TEXTS

    assert dict(CSV_PROBLEM_TEXTS) == PROBLEM_TEXTS
    assert all(text in VI for text in PROBLEM_TEXTS.values())


def _served(sessions: Any, uniqueid: str, number: str, agent_id: str) -> None:
    now = utc_now()
    with sessions.begin() as session:
        session.add(
            Call(uniqueid=uniqueid, linkedid=uniqueid, hotline_id=A, caller_number=number,
                 caller_raw=number, started_at=now, ended_at=now, outcome="answered")
        )  # fmt: skip
        session.add(
            QueueCall(node="local", uniqueid=uniqueid, linkedid=uniqueid, caller_id=number,
                      first_queue="operator", queue="operator", joined_at=now, answered_at=now,
                      ended_at=now, outcome="answered", wait_seconds=5.0, agent_id=agent_id)
        )  # fmt: skip


def _audited(sessions: Any, action: str) -> list[tuple[str, str]]:
    with sessions() as session:
        return [
            (e.actor, e.target)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ]


@pytest.mark.db
async def test_an_agent_finds_can_cuoc_typed_without_accents(console: Console) -> None:
    admin, token = await console.signed_in("quantri")
    uploaded = await _upload(admin, token, "knowledge-base.csv", SEED.read_bytes())
    assert uploaded.status == 303, await uploaded.text()
    agent, _ = await console.signed_in("dtv-a")
    found = await (await agent.get("/api/v1/knowledge", params={"q": "can cuoc"})).json()
    assert found and "căn cước" in found[0]["title"]
    assert all(
        "can cuoc" in json.dumps(a, ensure_ascii=False).lower()
        or "căn cước" in json.dumps(a, ensure_ascii=False).lower()
        for a in found
    )
    # "đ" typed as "d", and every word must match.
    titles = [
        a["title"]
        for a in await (
            await agent.get("/api/v1/knowledge", params={"q": "dang ky khai sinh"})
        ).json()
    ]
    assert titles == ["Đăng ký khai sinh"]
    article = await (await agent.get(f"/api/v1/knowledge/{found[0]['id']}")).json()
    assert article["editable"] is False and article["processing_time"]
    # The search box is in the agent's screen-pop (of a caller they served).
    _served(console.sessions, "4100.1", "+84912000111", "dtv01")
    pop = await agent.get("/agent/pop", params={"number": "0912000111", "uniqueid": ""})
    assert pop.status == 200 and 'id="kb-search"' in await pop.text()
    page = await agent.get("/knowledge", params={"q": "CAN CUOC"})
    assert page.status == 200 and "căn cước" in await page.text()


@pytest.mark.db
async def test_a_csv_with_a_bad_row_names_line_and_column_and_imports_nothing(
    console: Console,
) -> None:
    supervisor, token = await console.signed_in("gs-a")
    text = (
        "title,summary,hotline\n"
        "Đăng ký khai sinh,Trong 60 ngày,\n"
        "Đăng ký thường trú,,\n"  # line 3: no summary
        f"Hẹn giờ nộp hồ sơ,Đặt lịch,{B}\n"  # line 4: another hotline's
    )
    refused = await _upload(supervisor, token, "kb.csv", text.encode(), Accept="application/json")
    assert refused.status == 400
    problems = (await refused.json())["problems"]
    assert (
        problems[0] == "line 3, column 2 (summary): is empty (it is the answer read to the citizen)"
    )
    assert problems[1].startswith("line 4, column 3 (hotline): unknown hotline")
    page = await _upload(supervisor, token, "kb.csv", text.encode())
    # The page says it in the supervisor's language (Vietnamese by default).
    html = await page.text()
    assert page.status == 400
    assert "dòng 3, cột 2 (summary): đang để trống (đây là câu trả lời đọc cho công dân)" in html
    assert f"dòng 4, cột 3 (hotline): không có đường dây nóng {B}" in html
    assert await (await supervisor.get("/api/v1/knowledge")).json() == []
    # Corrected, the same file imports whole, owned by the supervisor's hotline.
    fixed = text.replace("Đăng ký thường trú,,", "Đăng ký thường trú,Chỗ ở hợp pháp,")
    fixed = fixed.replace(f",{B}\n", ",\n")
    assert (await _upload(supervisor, token, "kb.csv", fixed.encode())).status == 303
    articles = await (await supervisor.get("/api/v1/knowledge")).json()
    assert sorted((a["title"], a["hotline_id"]) for a in articles) == [
        ("Hẹn giờ nộp hồ sơ", A),
        ("Đăng ký khai sinh", A),
        ("Đăng ký thường trú", A),
    ]
    assert _audited(console.sessions, "kb_import") == [("gs-a", "kb.csv")]


@pytest.mark.db
async def test_a_hotlines_supervisor_edits_only_its_articles_and_agents_edit_none(
    console: Console,
) -> None:
    admin, admin_token = await console.signed_in("quantri")
    of_b = await (
        await _create(
            admin, admin_token, title="Hẹn giờ", summary="Đặt lịch", hotline_id=B, published=True
        )
    ).json()
    shared = await (
        await _create(
            admin, admin_token, title="Chứng thực bản sao", summary="Đối chiếu", published=True
        )
    ).json()
    gs_a, token = await console.signed_in("gs-a")
    change = {"title": "Sửa", "summary": "Sửa", "hotline_id": B, "published": True}
    answer = await gs_a.post(
        f"/api/v1/knowledge/{of_b['id']}", json=change, headers={"X-CSRF-Token": token}
    )
    assert answer.status == 403
    assert (await gs_a.get(f"/knowledge/{of_b['id']}/edit")).status == 403
    assert (await gs_a.get(f"/api/v1/knowledge/{of_b['id']}")).status == 403
    # Shared articles: read, not written, by one hotline's supervisor.
    assert (await gs_a.get(f"/api/v1/knowledge/{shared['id']}")).status == 200
    answer = await gs_a.post(
        f"/api/v1/knowledge/{shared['id']}",
        json={**change, "hotline_id": ""},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status == 403
    assert (await _create(gs_a, token, title="Của B", summary="x", hotline_id=B)).status == 403
    assert ("gs-a", f"article {of_b['id']}") in _audited(console.sessions, "kb_edit_refused")
    # Their own: written, and an article without an owner is theirs.
    own = await (
        await _create(gs_a, token, title="Đèn đường", summary="Báo tổ dân phố", published=True)
    ).json()
    assert own["article"]["hotline_id"] == A
    agent, agent_token = await console.signed_in("dtv-a")
    assert (await agent.get("/api/v1/knowledge", params={"q": "den duong"})).status == 200
    assert len(await (await agent.get("/api/v1/knowledge", params={"q": "den duong"})).json()) == 1
    for path in (f"/api/v1/knowledge/{own['id']}", "/api/v1/knowledge"):
        refused = await agent.post(
            path, json={"title": "x", "summary": "y"}, headers={"X-CSRF-Token": agent_token}
        )
        assert refused.status == 403, path
    assert (await agent.get("/knowledge/new")).status == 403
    # Unpublished by its supervisor: agents no longer find it; audited.
    hide = {"title": "Đèn đường", "summary": "Báo tổ dân phố", "published": False}
    answer = await gs_a.post(
        f"/api/v1/knowledge/{own['id']}", json=hide, headers={"X-CSRF-Token": token}
    )
    assert answer.status == 200
    assert await (await agent.get("/api/v1/knowledge", params={"q": "den duong"})).json() == []
    assert _audited(console.sessions, "kb_unpublish") == [("gs-a", f"article {own['id']}")]
    gs_b, b_token = await console.signed_in("gs-b")
    answer = await gs_b.post(
        f"/api/v1/knowledge/{of_b['id']}",
        json={**change, "title": "Hẹn"},
        headers={"X-CSRF-Token": b_token},
    )
    assert answer.status == 200


@pytest.mark.db
async def test_an_agent_answers_from_the_knowledge_base_and_the_case_closes_with_an_sms(
    console: Console, tmp_path: Path
) -> None:
    admin, admin_token = await console.signed_in("quantri")
    created = await _create(
        admin,
        admin_token,
        title="Đăng ký khai sinh",
        summary="Đăng ký tại UBND phường trong 60 ngày.",
        published=True,
    )
    article_id = (await created.json())["id"]
    agent, token = await console.signed_in("dtv-a")
    opened = await agent.post(
        "/api/v1/cases",
        headers={"X-CSRF-Token": token},
        json={"caller_number": "0912000111", "summary": "Hỏi khai sinh"},
    )
    code = (await opened.json())["code"]
    other, other_token = await console.signed_in("dtv-b")
    refused = await other.post(
        f"/api/v1/cases/{code}/knowledge-answer",
        json={"article_id": article_id},
        headers={"X-CSRF-Token": other_token},
    )
    assert refused.status == 403
    answer = await agent.post(
        f"/api/v1/cases/{code}/knowledge-answer",
        json={"article_id": article_id},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["status"] == "closed"
    with console.sessions() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        assert case.status == "closed" and case.answer == "Đăng ký tại UBND phường trong 60 ngày."
        cited = [e.note for e in case.history if e.action == KNOWLEDGE_ANSWER]
    assert cited == [f"article {article_id}: Đăng ký khai sinh"]
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    answered = [m for m in sent if m["purpose"] == "case_answered"]
    assert [(m["to"], m["case_code"]) for m in answered] == [("+84912000111", code)]
    assert "trong 60 ngày" in answered[0]["text"]
    assert _audited(console.sessions, "knowledge_answer") == [("dtv-a", f"case {code}")]


@pytest.mark.db
async def test_the_pages_write_read_and_unpublish_an_article_through_forms(
    console: Console,
) -> None:
    supervisor, token = await console.signed_in("gs-a")
    form = await supervisor.get("/knowledge/new")
    assert form.status == 200 and 'name="summary"' in await form.text()
    fields = {"csrf_token": token, "title": "Đăng ký tạm trú", "summary": "Trong 30 ngày",
              "fees": "Theo quy định hiện hành", "published": "1"}  # fmt: skip
    saved = await supervisor.post("/knowledge", data=fields, allow_redirects=False)
    assert saved.status == 303
    location = saved.headers["Location"]
    page = await supervisor.get(location)
    html = await page.text()
    assert page.status == 200 and "Đăng ký tạm trú" in html and "Lệ phí" in html
    edit = await supervisor.get(location + "/edit")
    assert edit.status == 200 and "Trong 30 ngày" in await edit.text()
    # An unchecked box sends nothing: the article is unpublished.
    hidden = {k: v for k, v in fields.items() if k != "published"}
    assert (await supervisor.post(location, data=hidden, allow_redirects=False)).status == 303
    listing = await (await supervisor.get("/knowledge", params={"q": "tam tru"})).text()
    assert "chưa công bố" in listing
    agent, _ = await console.signed_in("dtv-a")
    assert (await agent.get(location)).status == 403  # unpublished: not an agent's to read
