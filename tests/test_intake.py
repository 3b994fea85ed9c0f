"""The one intake of the written channels (issue 14): citizens linked across
channels, one case per idempotency key even when two copies race, a message
joining a case only for its own citizen, refusals that write nothing.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import ivr.intake.service
from ivr.cases.models import Case, CaseEvent, SmsMessage
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.intake.models import CaseAttachment, CaseMessage, Citizen, CitizenContact, IntakeKey
from ivr.intake.service import IntakeService
from ivr.intake.types import IntakeRefused, Submission
from tests.test_tenancy import A, B, write_config

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 10:00 in Hà Nội
PHONE = "+84912000111"
EMAIL = "lan.nguyen@example.vn"
ZALO = "8412345678901234567"


@dataclass
class Rig:
    config: HotlineConfig
    sessions: sessionmaker[Session]
    cases: CaseService
    intake: IntakeService
    root: Path
    engine: Any

    @property
    def files(self) -> Path:
        """The attachments root: rows' paths are relative to it."""
        return self.intake.attachments_root

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def counts(self) -> dict[str, int]:
        tables = (Case, CaseEvent, CaseMessage, CaseAttachment, Citizen, CitizenContact)
        return {
            **{m.__tablename__: self.count(m) for m in tables},
            "intake_keys": self.count(IntakeKey),
            "sms_outbox": self.count(SmsMessage),
            "files": sum(1 for p in self.root.rglob("*") if p.is_file()),
        }


def build_rig(folder: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Rig:
    """Two hotlines (A, B), a migrated database, the case and intake services."""
    config = load_config(write_config(folder / "cfg", edit))
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    cases = CaseService(sessions, config, clock=lambda: NOW)
    # As the web app builds it (ivr.web.intake_state): paths.recordings/attachments.
    root = config.resolve_path(config.paths.recordings)
    root.mkdir(parents=True, exist_ok=True)
    intake = IntakeService(sessions, config, cases, root / "attachments", lambda: NOW)
    return Rig(config, sessions, cases, intake, root, engine)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    built = build_rig(tmp_path)
    yield built
    built.engine.dispose()


def web(text: str = "Đèn đường hỏng trước số 12 phố Cổ Nhuế", **fields: Any) -> Submission:
    fields.setdefault("hotline_id", A)
    return Submission(channel=Channel.WEB, text=text, **fields)


def test_a_web_report_opens_a_case_with_its_citizen_message_and_sms(rig: Rig) -> None:
    result = rig.intake.submit(
        web(contacts=((ContactKind.PHONE, PHONE),), name="Nguyễn Thị Lan", topic="hien-truong",
            area_code="co-nhue-1", address="12 phố Cổ Nhuế", latitude=21.06, longitude=105.77)
    )  # fmt: skip
    assert result.created and not result.duplicate
    with rig.sessions() as session:
        case = session.get(Case, result.case_id)
        assert case is not None and case.code == result.case_code
        assert (case.channel, case.topic, case.area_code) == ("web", "hien-truong", "co-nhue-1")
        assert (case.caller_number, case.caller_name) == (PHONE, "Nguyễn Thị Lan")
        assert (case.address, case.latitude, case.longitude) == ("12 phố Cổ Nhuế", 21.06, 105.77)
        # The same deadline rule as a phone case received now.
        assert case.due_date == rig.cases.due_date_for(A, "hien-truong", "normal", NOW)
        assert case.citizen_id is not None
        message = session.get(CaseMessage, result.message_id)
        assert message is not None and message.direction == MessageDirection.INBOUND
        sms = session.scalars(select(SmsMessage)).all()
        assert [(s.to_number, s.purpose) for s in sms] == [(PHONE, "case_opened")]
        assert result.case_code in sms[0].text


def test_the_same_key_twice_gives_the_first_case_and_writes_nothing(rig: Rig) -> None:
    first = rig.intake.submit(web(idempotency_key="form-1", contacts=((ContactKind.PHONE, PHONE),)))
    before = rig.counts()
    again = rig.intake.submit(web(idempotency_key="form-1", contacts=((ContactKind.PHONE, PHONE),)))
    assert again.duplicate and (again.case_code, again.case_id) == (first.case_code, first.case_id)
    assert again.created is True  # the first copy opened it
    assert rig.counts() == before
    # A key is scoped by hotline: the other hotline's form may use the same one.
    other = rig.intake.submit(web(hotline_id=B, idempotency_key="form-1"))
    assert not other.duplicate and other.case_id != first.case_id


def test_two_copies_at_once_make_one_case(rig: Rig) -> None:
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def send() -> None:
        barrier.wait()
        try:
            results.append(
                rig.intake.submit(
                    web(idempotency_key="retry-7", contacts=((ContactKind.EMAIL, EMAIL),))
                )
            )
        except Exception as exc:  # recorded: the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.case_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True]
    assert rig.count(Case) == 1 and rig.count(Citizen) == 1 and rig.count(CitizenContact) == 1


def test_a_copy_that_missed_the_key_loses_on_the_unique_constraint(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made certain: the second copy's lookup runs before the first
    commits (simulated by hiding the key from it once), so only the unique
    constraint stops a second case; the winner's result comes back."""
    first = rig.intake.submit(web(idempotency_key="race", contacts=((ContactKind.PHONE, PHONE),)))
    before = rig.counts()
    real = ivr.intake.service._key_result
    calls: list[str] = []

    def blind_once(*args: Any) -> Any:
        # Blind for the copy's lookup in its transaction (a copy without files
        # has no other before it); the second is the one after the failed write.
        calls.append("lookup")
        return None if len(calls) <= 1 else real(*args)

    monkeypatch.setattr(ivr.intake.service, "_key_result", blind_once)
    again = rig.intake.submit(web(idempotency_key="race", contacts=((ContactKind.PHONE, PHONE),)))
    assert len(calls) == 2  # the blind write failed, then the winner was read
    assert again.duplicate and again.case_id == first.case_id
    assert rig.counts() == before


def test_contacts_seen_on_two_channels_are_one_citizen(rig: Rig) -> None:
    by_sms = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.SMS, text="Rác ở ngõ 5",
                   contacts=((ContactKind.PHONE, PHONE),))
    )  # fmt: skip
    by_web = rig.intake.submit(
        web(contacts=((ContactKind.PHONE, PHONE), (ContactKind.EMAIL, "Lan.Nguyen@Example.VN")))
    )
    by_mail = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text="Bổ sung ảnh",
                   contacts=((ContactKind.EMAIL, EMAIL),))
    )  # fmt: skip
    with rig.sessions() as session:
        owners = {session.get(Case, r.case_id).citizen_id for r in (by_sms, by_web, by_mail)}  # type: ignore[union-attr]
    assert len(owners) == 1 and rig.count(Citizen) == 1
    # The agent's screen-pop when this number calls: both contacts.
    assert rig.intake.contacts_of_number(A, PHONE) == [
        (ContactKind.PHONE, PHONE),
        (ContactKind.EMAIL, EMAIL),
    ]
    # Another hotline knows nothing of this citizen.
    assert rig.intake.contacts_of_number(B, PHONE) == []


def test_two_known_citizens_named_together_are_merged(rig: Rig) -> None:
    a = rig.intake.submit(web(contacts=((ContactKind.PHONE, PHONE),)))
    b = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.ZALO, text="Xin chào",
                   contacts=((ContactKind.ZALO, ZALO),))
    )  # fmt: skip
    assert rig.count(Citizen) == 2
    rig.intake.submit(web(contacts=((ContactKind.ZALO, ZALO), (ContactKind.PHONE, PHONE))))
    assert rig.count(Citizen) == 1
    with rig.sessions() as session:
        assert session.get(Case, a.case_id).citizen_id == session.get(Case, b.case_id).citizen_id  # type: ignore[union-attr]


def test_a_case_code_joins_only_the_same_citizens_case_of_the_same_hotline(rig: Rig) -> None:
    first = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text="Cống tắc", subject="Cống tắc",
                   contacts=((ContactKind.EMAIL, EMAIL),), external_id="<m1@example.vn>")
    )  # fmt: skip
    reply = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text="Vẫn chưa xử lý",
                   contacts=((ContactKind.EMAIL, EMAIL),), case_code=f"#{first.case_code}",
                   external_id="<m2@example.vn>")
    )  # fmt: skip
    assert reply.case_id == first.case_id and not reply.created
    # Someone else quoting the code opens their own case, never joins this one.
    stranger = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text="Tôi cũng thấy",
                   contacts=((ContactKind.EMAIL, "khac@example.vn"),), case_code=first.case_code)
    )  # fmt: skip
    assert stranger.created and stranger.case_id != first.case_id
    # The same citizen on the other hotline: a new case there.
    elsewhere = rig.intake.submit(
        Submission(hotline_id=B, channel=Channel.EMAIL, text="Hỏi thủ tục",
                   contacts=((ContactKind.EMAIL, EMAIL),), case_code=first.case_code)
    )  # fmt: skip
    assert elsewhere.created and elsewhere.case_id != first.case_id
    thread = rig.intake.thread(first.case_id)
    inbound = [e.message.text for e in thread if e.message.direction == MessageDirection.INBOUND]
    assert inbound == ["Cống tắc", "Vẫn chưa xử lý"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hotline_id": "khong-co"}, "hotline"),
        ({"topic": "no-such-topic"}, "topic"),
        ({"area_code": "no-such-ward"}, "area_code"),
        ({"text": "   "}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "chuông\x1b[31m"}, "text"),
        ({"name": "Lan\nBcc: x@y.z"}, "name"),
        ({"subject": "x\r\nBcc: x@y.z"}, "subject"),
        ({"external_id": "<a@b>\r\nX-Injected: 1"}, "external_id"),
        ({"text": "x" * 10_001}, "text"),
        ({"latitude": 21.0}, "latitude"),
        ({"latitude": 91.0, "longitude": 105.0}, "latitude"),
        ({"contacts": ((ContactKind.PHONE, "0912000111"),)}, "contacts"),
        ({"contacts": ((ContactKind.EMAIL, "not-an-address"),)}, "contacts"),
    ],
)
def test_a_refused_submission_writes_nothing(rig: Rig, fields: dict[str, Any], field: str) -> None:
    before = rig.counts()
    with pytest.raises(IntakeRefused) as refused:
        rig.intake.submit(web(**{"idempotency_key": "k", **fields}))
    assert refused.value.field == field
    assert rig.counts() == before


def test_html_is_text_stored_as_given(rig: Rig) -> None:
    text = '<script>alert("x")</script> <b>đậm</b> & 5 < 6'
    result = rig.intake.submit(web(text=text))
    with rig.sessions() as session:
        message = session.get(CaseMessage, result.message_id)
        assert message is not None and message.text == text


def test_status_is_shown_only_to_a_contact_of_the_cases_citizen(rig: Rig) -> None:
    result = rig.intake.submit(
        web(contacts=((ContactKind.PHONE, PHONE), (ContactKind.EMAIL, EMAIL)))
    )
    view = rig.intake.status(result.case_code, (ContactKind.EMAIL, EMAIL.upper()))
    assert view is not None and view.status == "received" and view.answered_at is None
    assert rig.intake.status(result.case_code, (ContactKind.PHONE, PHONE)) is not None
    assert rig.intake.status(result.case_code, (ContactKind.PHONE, "+84987000222")) is None
    assert rig.intake.status(result.case_code, None) is None
    assert rig.intake.status("00000000", (ContactKind.PHONE, PHONE)) is None
    rig.cases.change_status(result.case_code, "in_progress", "agent")
    rig.cases.change_status(result.case_code, "answered", "agent", note="Đã sửa đèn.")
    answered = rig.intake.status(result.case_code, (ContactKind.PHONE, PHONE))
    assert answered is not None and answered.answer == "Đã sửa đèn."
    assert answered.answered_at == NOW
    # Sent back for review: no answer to show until it is answered again.
    rig.cases.change_status(result.case_code, "in_progress", "supervisor01")
    reopened = rig.intake.status(result.case_code, (ContactKind.PHONE, PHONE))
    assert reopened is not None and (reopened.answered_at, reopened.answer) == (None, "")


def test_a_process_without_the_intake_still_writes_cases(rig: Rig) -> None:
    """``cases.citizen_id``'s foreign key is declared by ivr.intake.models: a
    FastAGI-only server or a CLI command that never imports it opens cases."""
    script = (
        "import sys\n"
        "from ivr.cases.service import CaseService\n"
        "from ivr.config import load_config\n"
        "from ivr.db.engine import make_engine, make_session_factory\n"
        "config = load_config(sys.argv[1])\n"
        "sessions = make_session_factory(make_engine(config.database_url))\n"
        "case = CaseService(sessions, config).open_case(\n"
        "    channel='phone', hotline_id=sys.argv[2], caller_number=None)\n"
        "assert 'ivr.intake.models' not in sys.modules, 'the intake was loaded'\n"
        "print(case.code)\n"
    )
    assert rig.config.source is not None
    done = subprocess.run(
        [sys.executable, "-c", script, str(rig.config.source), A],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with rig.sessions() as session:
        assert session.scalar(select(Case).where(Case.code == done.stdout.strip())) is not None
