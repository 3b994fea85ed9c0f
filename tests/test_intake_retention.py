"""Retention of the written channels (issue 14): a closed case's thread texts,
addresses and its citizen's photos go with the case's text after
``case_text_days``; a case under legal hold and an open case keep everything.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.cases.models import Case
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.models import CaseAttachment, CaseMessage, Citizen, CitizenContact
from ivr.intake.types import IncomingAttachment, Submission
from ivr.privacy.retention import run_retention
from tests.test_intake import EMAIL, NOW, Rig, build_rig
from tests.test_intake_attachments import jpeg_with_gps
from tests.test_tenancy import A

pytestmark = pytest.mark.db


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    built = build_rig(tmp_path)
    yield built
    built.engine.dispose()


def report(rig: Rig, text: str) -> int:
    result = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text=text, subject="Ảnh hiện trường",
                   contacts=((ContactKind.EMAIL, EMAIL),), external_id=f"<{text}@example.vn>",
                   address="Số 5 ngõ 12 Cổ Nhuế", latitude=21.06, longitude=105.77,
                   attachments=(IncomingAttachment("nha-anh-an.jpg", jpeg_with_gps()),))
    )  # fmt: skip
    return result.case_id


def close(rig: Rig, case_id: int) -> str:
    with rig.sessions() as session:
        code = session.get(Case, case_id).code  # type: ignore[union-attr]
    rig.cases.change_status(code, "in_progress", "agent01")
    rig.cases.change_status(code, "answered", "agent01", note="Đã xử lý cho anh An.")
    rig.cases.change_status(code, "closed", "agent01")
    return code


def test_thread_and_photos_go_with_the_case_text_unless_held_or_open(rig: Rig) -> None:
    done, held, still_open = (report(rig, t) for t in ("done", "held", "open"))
    close(rig, done)
    rig.cases.set_legal_hold(close(rig, held), hold=True, reason="Thanh tra", actor="sup01")
    files_before = {
        case_id: [rig.files / str(a.path) for a in rig.intake.attachments_of(case_id)]
        + [rig.files / str(a.thumbnail_path) for a in rig.intake.attachments_of(case_id)]
        for case_id in (done, held, still_open)
    }
    assert all(p.is_file() for paths in files_before.values() for p in paths)

    later = NOW + timedelta(days=rig.config.retention.case_text_days + 1)
    result = run_retention(rig.sessions, rig.config, clock=lambda: later)
    assert result.errors == []
    assert result.counts["attachments"] == 1

    with rig.sessions() as session:
        for case_id in (done, held, still_open):
            messages = session.scalars(
                select(CaseMessage).where(CaseMessage.case_id == case_id)
            ).all()
            [attachment] = session.scalars(
                select(CaseAttachment).where(CaseAttachment.case_id == case_id)
            ).all()
            case = session.get(Case, case_id)
            assert case is not None
            if case_id == done:
                assert all(m.text == "" and m.subject == "" for m in messages)
                assert all(m.sender is None and m.to is None for m in messages)
                assert all(m.erased_at == later for m in messages)
                assert (attachment.path, attachment.thumbnail_path, attachment.filename) == (
                    None, None, "",
                )  # fmt: skip
                assert attachment.erased_at == later and attachment.sha256
                assert (case.address, case.latitude) == ("", None)
                assert not any(p.exists() for p in files_before[case_id])
            else:
                assert any(m.text for m in messages) and attachment.erased_at is None
                assert attachment.filename == "nha-anh-an.jpg"
                assert case.address == "Số 5 ngõ 12 Cổ Nhuế"
                assert all(p.is_file() for p in files_before[case_id])


def test_a_citizens_contacts_go_when_all_their_cases_are_done(rig: Rig) -> None:
    def write(contact: str, text: str) -> int:
        return rig.intake.submit(
            Submission(hotline_id=A, channel=Channel.WEB, text=text, name="Nguyễn Văn An",
                       contacts=((ContactKind.PHONE, contact),))
        ).case_id  # fmt: skip

    close(rig, write("+84912000001", "Đèn hỏng"))  # all done: forgotten
    close(rig, write("+84912000002", "Rác"))
    write("+84912000002", "Cống tắc")  # one case still open: kept
    held = write("+84912000003", "Ồn")
    rig.cases.set_legal_hold(close(rig, held), hold=True, reason="Thanh tra", actor="sup01")

    later = NOW + timedelta(days=rig.config.retention.caller_number_days + 1)
    result = run_retention(rig.sessions, rig.config, clock=lambda: later)
    assert result.errors == []
    with rig.sessions() as session:
        left = sorted(session.scalars(select(CitizenContact.value)).all())
        names = sorted(session.scalars(select(Citizen.name)).all())
    assert left == ["+84912000002", "+84912000003"]
    assert names == ["", "Nguyễn Văn An", "Nguyễn Văn An"]
    assert rig.intake.contacts_of_number(A, "+84912000001") == []
