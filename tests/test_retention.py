"""Retention of personal data (issue 10): audio, transcripts, numbers and case
text older than their limits are deleted or anonymised by a job that needs no
vosk model and no transcription worker; a case under legal hold keeps
everything linked to it; rows stay for statistics."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import wave
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import (
    CLOSED,
    IN_PROGRESS,
    Case,
    CaseEvent,
    Recording,
    SmsMessage,
    Transcript,
    TranscriptionJob,
)
from ivr.config import ConfigError, HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call, utc_now
from ivr.privacy.pseudonym import load_key, pseudonym
from ivr.privacy.schedule import run_and_audit
from ivr.queue_records.models import CallbackRequest, QueueCall, QueueLogEntry
from ivr.service import start_services
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE, REPO

NOW = utc_now()
OLD = NOW - timedelta(days=400)  # past every limit below
MIDDLE = NOW - timedelta(days=45)  # past the audio limit only
NEW = NOW - timedelta(days=1)
LIMITS = {"audio_days": 30, "transcript_days": 60, "caller_number_days": 90,
          "case_text_days": 120}  # fmt: skip
CITIZEN = "+84912000001"
OTHER = "+84987000002"


def write_config(tmp_path: Path, **retention: Any) -> HotlineConfig:
    """The example, with no vosk model at all and its own database and folders."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["transcription"] = {"model_path": None, "model_package": None}
    data["web"] = {"enabled": False}
    data["recording"].pop("retention_days", None)
    data["retention"] = {**LIMITS, "pseudonym_key_file": str(tmp_path / "keys" / "pseudonym"),
                         **retention}  # fmt: skip
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    upgrade(config.database_url)
    return config


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return write_config(tmp_path)


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    engine = make_engine(config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def audio_file(config: HotlineConfig, name: str) -> Path:
    folder = config.resolve_path(config.paths.recordings) / "2025/01/01"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    return path


def add_call(session: Any, config: HotlineConfig, uniqueid: str, at: datetime, number: str,
             linkedid: str | None = None, transcript: str = "") -> Path:  # fmt: skip
    """A call with its caller-leg recording (a real file), transcript and queue rows."""
    session.add(
        Call(uniqueid=uniqueid, linkedid=linkedid or uniqueid, hotline_id="bac-tu-liem",
             caller_number=number, caller_raw="0" + number[3:], dialed_number="02437655555",
             started_at=at, ended_at=at + timedelta(minutes=3), outcome="answered",
             area_code="dong-ngac")
    )  # fmt: skip
    path = audio_file(config, f"{uniqueid}-caller.wav")
    session.add(Recording(call_uniqueid=uniqueid, kind="caller", path=str(path), created_at=at))
    # No model: this job would wait forever; retention must not wait for it.
    job = TranscriptionJob(call_uniqueid=uniqueid, status="queued", available_at=at)
    session.add(job)
    session.flush()
    if transcript:
        session.add(
            Transcript(call_uniqueid=uniqueid, job_id=job.id, text=transcript,
                       dialogue=json.dumps({"turns": [{"text": transcript}]}),
                       audio_seconds=180.0, created_at=at)
        )  # fmt: skip
    session.add(
        QueueCall(node="local", uniqueid=uniqueid, linkedid=linkedid or uniqueid,
                  caller_id="0" + number[3:], first_queue="operator", queue="operator",
                  joined_at=at, outcome="answered", wait_seconds=12.0, agent_id="dtv-01")
    )  # fmt: skip
    session.add(
        QueueLogEntry(node="local", time=at, callid=uniqueid, queuename="operator",
                      event="ENTERQUEUE", data2="0" + number[3:], data3="1")
    )  # fmt: skip
    return path


def add_case(session: Any, code: str, uniqueid: str | None, received: datetime,
             closed: datetime | None, hold: bool = False) -> Case:  # fmt: skip
    case = Case(
        code=code, channel="phone", hotline_id="bac-tu-liem", caller_number=CITIZEN,
        caller_name="Nguyễn Văn An", summary=f"Đèn đường hỏng ({code})",
        transcript="Người gọi: đèn đường hỏng", answer="Đã sửa đèn",
        status=CLOSED if closed else IN_PROGRESS, received_at=received,
        due_date=date(2025, 1, 30), closed_at=closed, call_uniqueid=uniqueid, legal_hold=hold,
        legal_hold_reason="Tòa án yêu cầu" if hold else "",
    )  # fmt: skip
    session.add(case)
    session.flush()
    session.add(CaseEvent(case_id=case.id, at=received, actor="dtv1", action="opened",
                          note="gọi lại cho anh An số 0912000001"))  # fmt: skip
    session.add(SmsMessage(case_id=case.id, to_number=CITIZEN, purpose="case_answered",
                           text="Trả lời: đã sửa đèn", status="sent",
                           created_at=closed or received))  # fmt: skip
    return case


@pytest.mark.db
def test_old_personal_data_is_removed_without_a_model_and_a_held_case_keeps_everything(
    config: HotlineConfig, sessions: Any, tmp_path: Path
) -> None:
    assert config.transcription.resolved_model_path() is None  # no vosk model anywhere
    with sessions.begin() as session:
        files = {
            "old": add_call(session, config, "100.1", OLD, CITIZEN, transcript="tôi tên An"),
            "repeat": add_call(session, config, "100.4", OLD + timedelta(days=2), CITIZEN),
            "other": add_call(session, config, "100.5", OLD, OTHER),
            "held": add_call(session, config, "100.2", OLD, OTHER, transcript="bằng chứng"),
            # A transfer leg of the held call: same linkedid, so held with it.
            "held_leg": add_call(session, config, "100.3", OLD, OTHER, linkedid="100.2"),
            "middle": add_call(session, config, "150.1", MIDDLE, CITIZEN, transcript="giữa kỳ"),
            "new": add_call(session, config, "200.1", NEW, CITIZEN, transcript="mới"),
        }
        add_case(session, "25010001", "100.1", OLD, OLD + timedelta(days=5))
        add_case(session, "25010002", "100.2", OLD, OLD + timedelta(days=5), hold=True)
        add_case(session, "25010003", None, OLD, None)  # still open: keeps its text
        add_case(session, "25010004", "200.1", NEW, NEW)  # closed yesterday
        session.add(
            CallbackRequest(queue="operator", hotline_id="bac-tu-liem", caller_number=CITIZEN,
                            call_uniqueid="100.1", joined_at=0.0, requested_at=OLD,
                            status="done")
        )  # fmt: skip

    report = run_and_audit(sessions, config, "test")

    # Audio: old and middle files gone, rows kept and marked; new and held kept.
    for name in ("old", "repeat", "other", "middle"):
        assert not files[name].exists(), name
    for name in ("held", "held_leg", "new"):
        assert files[name].exists(), name
    with sessions() as session:
        recordings = {r.call_uniqueid: r for r in session.scalars(select(Recording))}
        assert len(recordings) == 7
        assert recordings["100.1"].deleted_at is not None
        assert recordings["100.2"].deleted_at is None and recordings["200.1"].deleted_at is None

        # Transcripts: old one blanked (row and duration kept); 45 days is within 60.
        transcripts = {t.call_uniqueid: t for t in session.scalars(select(Transcript))}
        old = transcripts["100.1"]
        assert (old.text, old.dialogue, old.audio_seconds) == ("", "{}", 180.0)
        assert old.erased_at is not None
        assert transcripts["150.1"].text == "giữa kỳ"
        assert transcripts["200.1"].text == "mới"
        assert transcripts["100.2"].text == "bằng chứng"

        # Numbers: a keyed pseudonym, the same for the same citizen, rows kept.
        key = load_key("HOTLINE_TEST_NO_SUCH_VARIABLE", tmp_path / "keys" / "pseudonym")
        token = pseudonym(key, CITIZEN)
        assert token.startswith("anon:") and CITIZEN not in token
        calls = {c.uniqueid: c for c in session.scalars(select(Call))}
        assert len(calls) == 7
        assert calls["100.1"].caller_number == token and calls["100.1"].caller_raw == ""
        assert calls["100.4"].caller_number == token  # repeat callers still count as one
        assert calls["100.5"].caller_number == pseudonym(key, OTHER) != token
        assert calls["100.1"].outcome == "answered" and calls["100.1"].area_code == "dong-ngac"
        assert calls["150.1"].caller_number == CITIZEN  # 45 days is within 90
        assert calls["200.1"].caller_number == CITIZEN
        for held in ("100.2", "100.3"):
            assert calls[held].caller_number == OTHER and calls[held].caller_raw == "0987000002"
        queue_calls = {q.uniqueid: q for q in session.scalars(select(QueueCall))}
        assert queue_calls["100.1"].caller_id == token
        assert queue_calls["100.1"].wait_seconds == 12.0
        assert queue_calls["100.2"].caller_id == "0987000002"
        assert queue_calls["200.1"].caller_id == "0912000001"
        log = {e.callid: e for e in session.scalars(select(QueueLogEntry))}
        assert log["100.1"].data2 == token and log["100.3"].data2 == "0987000002"
        callback = session.scalars(select(CallbackRequest)).one()
        assert callback.caller_number == token

        # Cases: the closed old one loses number and text (history kept, notes
        # blank); the held one, the open one and yesterday's keep everything.
        cases = {c.code: c for c in session.scalars(select(Case))}
        closed = cases["25010001"]
        assert closed.caller_number == token
        erased = (closed.summary, closed.transcript, closed.caller_name, closed.answer)
        assert erased == ("", "", "", "")
        assert closed.erased_at is not None and closed.status == CLOSED
        events = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == closed.id).order_by(CaseEvent.id)
        ).all()
        assert (events[0].action, events[0].note) == ("opened", "")
        assert events[-1].action == "erased" and events[-1].actor == "retention"
        sms = {m.case_id: m for m in session.scalars(select(SmsMessage))}
        assert (sms[closed.id].to_number, sms[closed.id].text) == (token, "")
        for code in ("25010002", "25010003", "25010004"):
            kept = cases[code]
            assert kept.caller_number == CITIZEN, code
            assert kept.summary == f"Đèn đường hỏng ({code})" and kept.answer == "Đã sửa đèn"
            assert kept.caller_name == "Nguyễn Văn An" and kept.erased_at is None
            assert sms[kept.id].to_number == CITIZEN and sms[kept.id].text
        held_notes = session.scalars(
            select(CaseEvent.note).where(CaseEvent.case_id == cases["25010002"].id)
        ).all()
        assert held_notes == ["gọi lại cho anh An số 0912000001"]

        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention")).one()
    assert report.counts == {
        "audio": 4, "attachments": 0, "transcripts": 1, "numbers.calls": 3,
        "numbers.queue_calls": 3,
        "numbers.queue_log": 3, "numbers.callbacks": 1, "numbers.sms": 1,
        "numbers.cases": 1, "case_text": 1,
    }  # fmt: skip
    assert report.held_cases == 1 and report.errors == []
    assert (audit.actor, audit.target) == ("retention", "test")
    assert json.loads(audit.detail)["counts"] == report.counts
    # The key is the service's alone.
    key_mode = (tmp_path / "keys" / "pseudonym").stat().st_mode
    assert stat.S_IMODE(key_mode) == 0o600

    # A second run finds nothing left to do (and writes no audit row).
    again = run_and_audit(sessions, config, "test")
    assert again.changed == 0
    with sessions() as session:
        assert len(session.scalars(select(AuditEntry)).all()) == 1


@pytest.mark.db
def test_erase_mode_removes_numbers_instead_of_pseudonyms(tmp_path: Path) -> None:
    config = write_config(tmp_path, caller_numbers="erase")
    sessions = make_session_factory(make_engine(config.database_url))
    with sessions.begin() as session:
        add_call(session, config, "100.1", OLD, CITIZEN)
    report = run_and_audit(sessions, config, "test")
    assert report.counts["numbers.calls"] == 1
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.caller_number, call.caller_raw) == (None, "")
        assert session.scalars(select(QueueCall.caller_id)).one() == ""
    assert not (tmp_path / "keys" / "pseudonym").exists()  # no key needed


def test_older_recording_retention_days_still_works_and_both_spellings_are_an_error(
    tmp_path: Path,
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["recording"]["retention_days"] = 90
    data.pop("retention", None)
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    from ivr.config.retention import effective_audio_days

    assert effective_audio_days(load_config(path)) == 90
    data["retention"] = {"audio_days": 30}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    [problem] = error.value.problems
    line = path.read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert "recording.retention_days" in str(problem) and "retention_days: 90" in line
    assert "retention.audio_days" in str(problem)


@pytest.mark.db
def test_hotline_retention_run_needs_no_vosk_and_dry_run_changes_nothing(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    sessions = make_session_factory(make_engine(config.database_url))
    with sessions.begin() as session:
        audio = add_call(session, config, "100.1", OLD, CITIZEN)
    # A vosk that cannot be imported: the command must not need it.
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "vosk.py").write_text("raise ImportError('retention must not need vosk')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(poison), str(REPO)])}

    def hotline(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "--config", str(config.source), *args],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    dry = hotline("retention", "run", "--dry-run")
    assert "dry run: nothing changed" in dry and _count(dry, "audio") == 1
    assert _count(dry, "numbers.calls") == 1
    assert audio.exists()
    with sessions() as session:
        assert session.scalars(select(Call.caller_number)).one() == CITIZEN
        assert session.scalars(select(AuditEntry)).all() == []
    done = hotline("retention", "run")
    assert _count(done, "audio") == 1 and _count(done, "numbers.calls") == 1
    assert not audio.exists()
    with sessions() as session:
        assert session.scalars(select(Call.caller_number)).one().startswith("anon:")
        entry = session.scalars(select(AuditEntry)).one()
        assert (entry.action, entry.target) == ("retention", "cli")


def _count(output: str, kind: str) -> int:
    for line in output.splitlines():
        words = line.split()
        if words and words[0] == kind:
            return int(words[-1])
    raise AssertionError(f"no count for {kind} in:\n{output}")


@pytest.mark.db
async def test_hotline_serve_runs_retention_on_its_own_without_a_model(
    config: HotlineConfig, sessions: Any
) -> None:
    with sessions.begin() as session:
        audio = add_call(session, config, "100.1", OLD, CITIZEN, transcript="cũ")
    # The web part (console disabled here) is where retention runs; no worker
    # process, no model.
    services = await start_services(config, parts=frozenset({"web"}))
    try:
        assert services.retention is not None
        report = await asyncio.wait_for(services.retention.wait_for_run(), 60)
    finally:
        await services.close()
    assert report.counts["audio"] == 1 and report.counts["transcripts"] == 1
    assert not audio.exists()
    with sessions() as session:
        assert session.scalars(select(Transcript.text)).one() == ""
        entry = session.scalars(select(AuditEntry)).one()
        assert (entry.actor, entry.action, entry.target) == ("retention", "retention", "scheduled")
