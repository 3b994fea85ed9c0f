"""Legal hold from the console (issue 10): supervisors and admins set and
release it on the case page and through the API, agents cannot, every change
is audited and lands in the case's history; the retention job then spares it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import CLOSED, Case
from ivr.cases.service import CaseService
from ivr.privacy.retention import run_retention
from tests import test_web
from tests.test_web import Console

# The console harness of tests/test_web.py (fixtures shared by name).
config = test_web.config
sessions = test_web.sessions
console = test_web.console


def _open_case(console: Console, uniqueid: str) -> str:
    service = CaseService(console.sessions, console.config)
    case = service.open_case(channel="phone", hotline_id="bac-tu-liem",
                             caller_number="+84912000444", summary="Lấn chiếm vỉa hè",
                             call_uniqueid=uniqueid, actor="dtv1")  # fmt: skip
    return case.code


@pytest.mark.db
async def test_supervisor_sets_legal_hold_agent_is_refused_and_it_is_audited(
    console: Console,
) -> None:
    code = _open_case(console, "1900.1")
    agent, agent_token = await console.signed_in("dtv1")
    refused = await agent.post(
        f"/api/v1/cases/{code}/hold", json={"hold": True, "reason": "tự đặt"},
        headers={"X-CSRF-Token": agent_token},
    )  # fmt: skip
    assert refused.status == 403
    with console.sessions() as session:
        assert session.scalar(select(Case.legal_hold).where(Case.code == code)) is False
    page = await (await agent.get(f"/cases/{code}")).text()
    assert 'id="legal-hold-form"' not in page  # agents are not offered the form

    supervisor, token = await console.signed_in("giamsat")
    page = await (await supervisor.get(f"/cases/{code}")).text()
    assert 'action="/cases/' + code + '/hold"' in page
    assert "Đặt lưu giữ pháp lý" in page  # Vietnamese by default
    # A hold needs a reason.
    no_reason = await supervisor.post(
        f"/api/v1/cases/{code}/hold", json={"hold": True, "reason": "  "},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert no_reason.status == 400
    # The page's own form: hold=1 and a reason, then back to the case.
    form = re.search(r'id="legal-hold-form".*?</form>', page, re.S)
    assert form and 'name="hold" value="1"' in form.group(0)
    held = await supervisor.post(
        f"/cases/{code}/hold",
        data={"hold": "1", "reason": "Công an quận yêu cầu giữ", "csrf_token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert held.status == 303 and held.headers["Location"] == f"/cases/{code}"
    detail = await (await supervisor.get(f"/api/v1/cases/{code}")).json()
    assert detail["legal_hold"] is True and detail["legal_hold_by"] == "giamsat"
    assert detail["legal_hold_reason"] == "Công an quận yêu cầu giữ"
    assert detail["history"][-1]["action"] == "legal_hold"
    page = await (await supervisor.get(f"/cases/{code}")).text()
    assert "Gỡ lưu giữ pháp lý" in page and "Công an quận yêu cầu giữ" in page

    # Held: retention spares the case even when everything else is due.
    with console.sessions.begin() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        case.status, case.closed_at = CLOSED, case.received_at.replace(year=2000)
    report = run_retention(console.sessions, console.config)
    assert report.held_cases == 1 and report.counts["case_text"] == 0
    with console.sessions() as session:
        kept = session.scalar(select(Case).where(Case.code == code))
        assert kept is not None and kept.summary == "Lấn chiếm vỉa hè"

    admin, admin_token = await console.signed_in("quantri")
    released = await admin.post(
        f"/api/v1/cases/{code}/hold", json={"hold": False, "reason": "vụ việc đã xong"},
        headers={"X-CSRF-Token": admin_token},
    )  # fmt: skip
    assert released.status == 200 and (await released.json())["legal_hold"] is False
    with console.sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("legal_hold%")).order_by(AuditEntry.id)
        ).all()
        case = session.scalar(select(Case).where(Case.code == code))
    assert [(r.actor, r.action, r.target, r.detail) for r in rows] == [
        ("giamsat", "legal_hold", f"case {code}", "Công an quận yêu cầu giữ"),
        ("quantri", "legal_hold_released", f"case {code}", "vụ việc đã xong"),
    ]
    assert case is not None and not case.legal_hold and case.legal_hold_by is None
    # Released: the next run erases the closed case's text.
    assert run_retention(console.sessions, console.config).counts["case_text"] == 1
