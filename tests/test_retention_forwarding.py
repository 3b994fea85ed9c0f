"""Retention covers what forwarding and the public page added (issue 13): the
units' answers, notes and extension reasons, the forwards' history notes and
the public texts go with the case's text after ``case_text_days``; the files
units attached go after ``audio_days`` once the case is closed; a case under
legal hold, a case still open and a recent one keep everything.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.cases.models import Case, CaseForward, ForwardAttachment, ForwardEvent
from ivr.config import HotlineConfig
from ivr.privacy.schedule import run_and_audit
from tests.test_retention import NEW, OLD, add_case, config, sessions  # noqa: F401

ANSWER = "Phường đã cử cán bộ kiểm tra, liên hệ anh An 0912000001"
NOTE = "Anh An ở ngõ 5, gọi 0912000001 trước khi đến"
REASON = "Cần khảo sát nhà anh An"


def add_forward(session: Any, settings: HotlineConfig, case: Case, unit: str,
                at: datetime) -> tuple[CaseForward, Path]:  # fmt: skip
    """A forward answered by ``unit`` with a note, an extension reason, a
    history note and an attached file under paths.recordings."""
    forward = CaseForward(
        case_id=case.id, unit_code=unit, hotline_id=case.hotline_id, sent_at=at, sent_by="dtv1",
        due_date=date(2025, 2, 10), status="answered", answer=ANSWER, answered_at=at,
        answered_by="can-bo-phuong", note=NOTE, extension_days_requested=3,
        extension_reason=REASON,
    )  # fmt: skip
    session.add(forward)
    session.flush()
    session.add(ForwardEvent(forward_id=forward.id, at=at, actor="can-bo-phuong",
                             action="status", status_from="sent", status_to="answered",
                             note="đã gọi anh An 0912000001"))  # fmt: skip
    relative = Path("attachments", case.code, f"{forward.id}-abcdef-bien-ban.pdf")
    path = settings.resolve_path(settings.paths.recordings) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4 bien ban kiem tra")
    session.add(ForwardAttachment(forward_id=forward.id, filename="bien-ban.pdf",
                                  content_type="application/pdf", size=26, sha256="ab" * 32,
                                  path=str(relative), uploaded_at=at,
                                  uploaded_by="can-bo-phuong"))  # fmt: skip
    return forward, path


def publish(case: Case, at: datetime) -> None:
    case.publish_consent = True
    case.publish_consent_by = "dtv1"
    case.publish_consent_at = at
    case.publish_consent_note = "anh An đồng ý qua điện thoại"
    case.public_id = f"pub{case.code}"
    case.public_title = "Đèn đường hỏng"
    case.public_text = "Đèn đường ngõ 5 hỏng."
    case.public_answer = "Đã sửa đèn."
    case.published_at = at
    case.published_by = "giamsat"


@pytest.mark.db
def test_forward_texts_public_texts_and_attachments_follow_the_case_and_its_hold(
    config: HotlineConfig,  # noqa: F811
    sessions: Any,  # noqa: F811
) -> None:
    cases = {
        "closed": ("25010001", OLD, OLD + timedelta(days=5), False),
        "held": ("25010002", OLD, OLD + timedelta(days=5), True),
        "open": ("25010003", OLD, None, False),
        "recent": ("25010004", NEW, NEW, False),
    }
    files: dict[str, Path] = {}
    with sessions.begin() as session:
        for name, (code, received, closed, hold) in cases.items():
            case = add_case(session, code, None, received, closed, hold=hold)
            _forward, files[name] = add_forward(session, config, case, "ubnd-dong-ngac", received)
            publish(case, closed or received)

    report = run_and_audit(sessions, config, "test")

    assert not files["closed"].exists()
    for name in ("held", "open", "recent"):
        assert files[name].exists(), name
    with sessions() as session:
        by_code = {c.code: c for c in session.scalars(select(Case))}
        forwards = {f.case_id: f for f in session.scalars(select(CaseForward))}
        events = {e.forward_id: e for e in session.scalars(select(ForwardEvent))}
        attachments = {a.forward_id: a for a in session.scalars(select(ForwardAttachment))}

        closed = by_code["25010001"]
        forward = forwards[closed.id]
        assert (forward.answer, forward.note, forward.extension_reason) == ("", "", "")
        # What the on-time figures need stays.
        assert forward.status == "answered" and forward.answered_at is not None
        assert forward.due_date == date(2025, 2, 10) and forward.answered_by == "can-bo-phuong"
        assert events[forward.id].note == "" and events[forward.id].status_to == "answered"
        attachment = attachments[forward.id]
        assert attachment.deleted_at is not None and attachment.sha256 == "ab" * 32
        # Its name (a unit may name the citizen in it) goes with the file.
        assert attachment.filename == "" and "bien-ban" not in attachment.path
        assert (closed.public_title, closed.public_text, closed.public_answer) == ("", "", "")
        assert closed.published_at is None and closed.publish_consent_note == ""
        assert closed.publish_consent  # the fact of consent is not personal text

        # A case still open has its attachment deleted only after it closes.
        assert forwards[by_code["25010003"].id].answer == ANSWER
        for code in ("25010002", "25010003", "25010004"):
            kept = by_code[code]
            forward = forwards[kept.id]
            assert (forward.answer, forward.note, forward.extension_reason) == (
                ANSWER, NOTE, REASON), code  # fmt: skip
            assert events[forward.id].note == "đã gọi anh An 0912000001", code
            assert attachments[forward.id].deleted_at is None, code
            assert kept.public_text == "Đèn đường ngõ 5 hỏng." and kept.published_at is not None
    assert report.counts["attachments"] == 1 and report.counts["case_text"] == 1
    assert report.errors == []

    # The next run finds nothing more to do.
    assert run_and_audit(sessions, config, "test").counts["attachments"] == 0


@pytest.mark.db
def test_an_attachment_path_outside_the_recordings_folder_is_not_deleted(
    config: HotlineConfig,  # noqa: F811
    sessions: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere.pdf"
    outside.write_bytes(b"not ours")
    with sessions.begin() as session:
        case = add_case(session, "25010009", None, OLD, OLD + timedelta(days=5))
        forward, _path = add_forward(session, config, case, "ubnd-dong-ngac", OLD)
        session.add(ForwardAttachment(forward_id=forward.id, filename="x.pdf",
                                      path="../elsewhere.pdf", uploaded_at=OLD))  # fmt: skip

    report = run_and_audit(sessions, config, "test")

    assert outside.exists()
    assert report.counts["attachments"] == 1
    assert any("elsewhere.pdf is outside" in error for error in report.errors)
