"""What one submission costs the database (issue 14's intake rate: 200 Open311
requests a second from one web process): the statements of the write
transaction, counted, so a change that adds a round trip shows here, not only
in ``bench/intake_rate.py``. And the case code's draws, checked in one query.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

import ivr.cases.service
import ivr.intake.service
from ivr.cases.models import Case, CaseEvent
from ivr.contracts.channels import Channel
from ivr.intake.models import CaseMessage, IntakeKey
from ivr.intake.types import IncomingAttachment, IntakeRefused, Submission
from tests.test_intake import NOW, Rig, build_rig
from tests.test_intake_attachments import jpeg_with_gps
from tests.test_tenancy import A

pytestmark = pytest.mark.db

_TABLE = re.compile(r"^\s*(SELECT\b.*?\bFROM|INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.S | re.I)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    built = build_rig(tmp_path)
    yield built
    built.engine.dispose()


def _statements(rig: Rig) -> list[str]:
    """Every statement the rig's engine runs from now on, as "VERB table"
    (the pool's pre-ping, BEGIN and COMMIT are not statements of ours)."""
    seen: list[str] = []

    @event.listens_for(rig.engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        found = _TABLE.match(statement)
        verb = statement.split()[0].upper()
        seen.append(f"{verb} {found.group(2)}" if found else verb)

    return seen


def open311(index: int, **fields: Any) -> Submission:
    fields.setdefault("idempotency_key", f"open311:1:h:app-{index}")
    return Submission(
        hotline_id=A, channel=Channel.OPEN311, text=f"Đèn đường hỏng, ngõ {index}",
        topic="hien-truong", address="ngõ 5 Cổ Nhuế", latitude=21.0612, longitude=105.7701,
        publish_consent=True, external_id=fields["idempotency_key"], **fields,
    )  # fmt: skip


def test_an_open311_report_is_six_statements_with_no_update(rig: Rig) -> None:
    """The key's look-up, the code's draws, then one INSERT per row: the place
    and the consent go in with the case's INSERT (no UPDATE after it), and no
    session of its own looks the key up before the transaction."""
    rig.intake.submit(open311(0))  # statements prepared, the pool warm
    seen = _statements(rig)
    result = rig.intake.submit(open311(1))
    assert seen == [
        "SELECT intake_keys",
        "SELECT cases",
        "INSERT cases",
        "INSERT case_history",
        "INSERT case_messages",
        "INSERT intake_keys",
    ]
    # The same rows as ever, with every column.
    with rig.sessions() as session:
        case = session.get(Case, result.case_id)
        assert case is not None and case.code == result.case_code
        assert (case.address, case.latitude, case.longitude) == ("ngõ 5 Cổ Nhuế", 21.0612, 105.7701)
        assert (case.publish_consent, case.publish_consent_by, case.publish_consent_at) == (
            True, "citizen:open311", NOW,
        )  # fmt: skip
        assert case.publish_consent_note == "given with the submission (open311)"
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
        assert [(e.action, e.to_status, e.note, e.at) for e in events] == [
            ("opened", "received", "channel open311", NOW)
        ]
        message = session.get(CaseMessage, result.message_id)
        assert message is not None and message.case_id == case.id
        assert (message.direction, message.channel, message.purpose) == ("in", "open311", "message")
        assert (message.text, message.external_id, message.at) == (
            "Đèn đường hỏng, ngõ 1", "open311:1:h:app-1", NOW,
        )  # fmt: skip
        key = session.scalar(select(IntakeKey).where(IntakeKey.key == "open311:1:h:app-1"))
        assert key is not None
        assert (key.case_id, key.message_id, key.created) == (case.id, message.id, True)
    # A retry: the one look-up, nothing written.
    seen.clear()
    again = rig.intake.submit(open311(1))
    assert again.duplicate and again.case_id == result.case_id
    assert seen == ["SELECT intake_keys"]


def test_a_retried_copy_with_a_photo_is_answered_before_the_photo_is_decoded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = IncomingAttachment("anh.jpg", jpeg_with_gps(), "image/jpeg")
    first = rig.intake.submit(open311(2, attachments=(photo,)))
    decoded: list[str] = []
    real = ivr.intake.service.files.process

    def counting(*args: Any) -> Any:
        decoded.append("process")
        return real(*args)

    monkeypatch.setattr(ivr.intake.service.files, "process", counting)
    again = rig.intake.submit(open311(2, attachments=(photo,)))
    assert again.duplicate and again.case_id == first.case_id
    assert decoded == []


def test_the_code_draws_are_checked_in_one_query_and_the_first_free_one_is_taken(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty draws, one SELECT: draws already taken are skipped in the order
    drawn; when all twenty are taken the case is refused, as before."""
    prefix = NOW.astimezone(rig.cases._zone).strftime("%y%m")
    width = rig.config.cases.code_digits - len(prefix)
    draws = [f"{n:0{width}d}" for n in range(1, 21)]  # 0001, 0002, … 0020
    monkeypatch.setattr(ivr.cases.service.secrets, "randbelow", lambda _bound: int("".join(draws)))
    # Cases holding the first nineteen draws.
    for _ in range(19):  # the same draws each time: the first free one is taken
        rig.intake.submit(Submission(hotline_id=A, channel=Channel.WEB, text="Rác ở ngõ 5"))
    with rig.sessions() as session:
        codes = set(session.scalars(select(Case.code)))
    assert codes == {prefix + d for d in draws[:19]}
    seen = _statements(rig)
    twentieth = rig.intake.submit(open311(3))
    assert twentieth.case_code == prefix + draws[19]
    assert seen.count("SELECT cases") == 1
    with pytest.raises(IntakeRefused, match="no free case code"):
        rig.intake.submit(open311(4))
