"""The same citizen on two channels, recognised by the agent (issue 14).

A citizen writes to the hotline by SMS (through the intake, as the SMS
webhook hands it: ``ContactKind.PHONE``), then through the web form giving
the same number and an email address (linked to the same citizen), and then
calls. The agent whose phone rings gets a screen-pop with the number, the
citizen's other contact (the email address) and their open written cases, the
SMS one among them, each linking to its case page. An agent of another
hotline serving another caller sees none of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.service import CaseService
from ivr.contracts.channels import Channel, ContactKind
from ivr.db.models import Call, utc_now
from ivr.intake.service import IntakeService
from ivr.intake.types import Submission
from ivr.web.intake_state import attachments_root
from tests.test_web import Console, config, console, sessions  # noqa: F401
from tests.test_web_access import _ring

NUMBER = "+84912000111"
HOTLINE = "bac-tu-liem"


def _intake(running: Console) -> IntakeService:
    """The intake as the SMS webhook's app holds it (ivr/web/intake_state.py)."""
    cfg = running.config
    root = attachments_root(Path(cfg.resolve_path(cfg.paths.recordings)))
    return IntakeService(running.sessions, cfg, CaseService(running.sessions, cfg), root)


@pytest.mark.db
async def test_a_citizen_who_wrote_by_sms_and_then_calls_is_recognised_on_the_screen_pop(
    console: Console,  # noqa: F811 (the fixture imported above)
) -> None:
    intake = _intake(console)
    by_sms = intake.submit(
        Submission(
            hotline_id=HOTLINE, channel=Channel.SMS, text="Cột điện nghiêng trước nhà số 12",
            contacts=((ContactKind.PHONE, NUMBER),), idempotency_key="gw-77", external_id="gw-77",
        )
    )  # fmt: skip
    by_form = intake.submit(
        Submission(
            hotline_id=HOTLINE, channel=Channel.WEB, text="Ống nước vỡ ở ngõ 3",
            name="Trần Thị Lan",
            contacts=((ContactKind.PHONE, NUMBER), (ContactKind.EMAIL, "Lan.Tran@Example.vn")),
        )
    )  # fmt: skip
    assert by_sms.created and by_form.created and by_sms.case_code != by_form.case_code
    # Then the citizen calls; the call rings the first agent's phone.
    now = utc_now()
    with console.sessions.begin() as session:
        session.add(Call(uniqueid="8800.1", linkedid="8800.1", hotline_id=HOTLINE,
                         caller_number=NUMBER, caller_raw="0912000111", started_at=now,
                         outcome="answered"))  # fmt: skip
    agent = console.config.agents[0]
    console.manager.model.resync([{"Event": "QueueParams", "Queue": "operator"}])
    _ring(console.manager, f"PJSIP/{agent.phone}", "8800.1", "0912000111")

    client, _ = await console.signed_in("dtv1")
    pop = await client.get("/agent/pop", params={"number": "0912000111", "uniqueid": "8800.1"})
    html = await pop.text()
    assert pop.status == 200, html
    assert '<span id="pop-number">0912000111</span>' in html  # the number calling
    assert '<li data-kind="email">' in html and "lan.tran@example.vn" in html  # the other one
    assert f'<li data-code="{by_sms.case_code}" data-channel="sms">' in html
    assert f'<a href="/cases/{by_sms.case_code}" target="_blank">' in html
    assert f'data-code="{by_form.case_code}" data-channel="web"' in html
    assert "Cột điện nghiêng" in html
    # The agent may open the SMS case from the pop, and sees its thread.
    case_page = await (await client.get(f"/cases/{by_sms.case_code}")).text()
    assert "Cột điện nghiêng trước nhà số 12" in case_page and 'data-direction="in"' in case_page
    with console.sessions() as session:
        audited = [
            (e.actor, e.target)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "read_citizen"))
        ]
    assert ("dtv1", f"caller {NUMBER}") in audited

    # The other agent, serving nobody, is refused this caller's history.
    other, _ = await console.signed_in("dtv2")
    refused = await other.get("/agent/pop", params={"number": "0912000111", "uniqueid": ""})
    assert refused.status == 403
