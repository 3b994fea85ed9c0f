"""Calls served by the fallback script: the script's spool lines and their
ingestion into the call log (idempotent; a bad line is reported with
file:line and skipped, the others still read)."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from ivr.call_log import CallEnd, CallLog, CallStart
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from ivr.fallback_calls import (
    FALLBACK_STEP,
    FallbackCallSpool,
    SpooledStart,
    parse_line,
    parse_spool,
)
from tests.rig.postgres import fresh_database_url

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = ROOT / "agi_scripts" / "hotline_fallback.py"
AT = 1795420000.0  # 2026-11-23 08:26:40 UTC


def fallback_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hotline_fallback_under_test", FALLBACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAgi:
    """pyst2's AGI as the script uses it: keys fed in, variables recorded."""

    def __init__(self, keys: list[str], uniqueid: str = "1795420000.7") -> None:
        self.keys = list(keys)
        self.env = {
            "agi_uniqueid": uniqueid,
            "agi_callerid": "0912345678",
            "agi_channel": "PJSIP/pstn-00000007",
        }
        self.variables: dict[str, str] = {}
        self.prompts: list[str] = []

    def get_data(self, prompt: str, timeout: int, max_digits: int) -> str:
        self.prompts.append(prompt)
        return self.keys.pop(0) if self.keys else ""

    def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    def verbose(self, text: str, level: int) -> None:
        pass


def ward_menu(prompt: str, ward: str, dial: str) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "timeout_ms": 2000,
        "max_digits": 2,
        "shortcuts": {
            "03": {
                "area": ward,
                "targets": [{"dial": dial, "ring": 20, "label": f"chairman:{ward}"}],
                "final_queue": None,
            }
        },
    }


def two_hotline_table(tmp_path: Path) -> Path:
    table = {
        "version": 1,
        "call_spool": str(tmp_path / "fallback-calls.jsonl"),
        "hotlines": {
            "first": {
                "numbers": ["1111"],
                "failure_queue": "first-operator",
                "area_menus": [ward_menu("first-wards", "ward-a", "PJSIP/a@pstn")],
            },
            "second": {
                "numbers": ["2222"],
                "failure_queue": "second-operator",
                "area_menus": [ward_menu("second-wards", "ward-b", "PJSIP/b@pstn")],
            },
        },
    }
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- the script ---------------------------------------------------------------------


def test_the_script_routes_by_the_channels_hotline_not_the_first_one(tmp_path: Path) -> None:
    script = fallback_script()
    table = two_hotline_table(tmp_path)
    agi = FakeAgi(["03"])
    # A number neither hotline publishes (a transfer, an internal test number):
    # the hotline is the one the dialplan set on the channel (HL_HOTLINE).
    assert script.entry(agi, ["script", "9999", str(table), "second"]) == 0
    assert agi.prompts == ["second-wards"]
    assert agi.variables["HL_TARGETS"] == "PJSIP/b@pstn|20|chairman:ward-b"
    assert agi.variables["HL_ROUTE"] == "dial"
    [start] = lines(tmp_path / "fallback-calls.jsonl")
    assert start["event"] == "start" and start["hotline"] == "second"
    assert (start["route"], start["area"], start["keys"]) == ("dial", "ward-b", "03")
    assert start["uniqueid"] == "1795420000.7" and start["caller"] == "0912345678"
    assert start["dialed"] == "9999"


def test_an_unknown_hotline_goes_to_the_failure_branch_never_the_first(tmp_path: Path) -> None:
    script = fallback_script()
    table = two_hotline_table(tmp_path)
    agi = FakeAgi(["03"])
    assert script.entry(agi, ["script", "1111", str(table), "gone"]) == 0
    # No ward menu of any hotline, no route: the dialplan's failure branch
    # (HL_FAILURE_QUEUE of the channel) answers.
    assert agi.prompts == [] and "HL_ROUTE" not in agi.variables
    [start] = lines(tmp_path / "fallback-calls.jsonl")
    assert (start["hotline"], start["route"]) == ("gone", "failure")


def test_a_caller_who_hangs_up_in_the_menu_is_still_spooled(tmp_path: Path) -> None:
    script = fallback_script()
    table = two_hotline_table(tmp_path)

    class AGIHangup(Exception):
        pass

    class HangsUp(FakeAgi):
        def get_data(self, prompt: str, timeout: int, max_digits: int) -> str:
            raise AGIHangup("caller hung up")

    assert script.entry(HangsUp([]), ["script", "2222", str(table), "second"]) == 0
    [start] = lines(tmp_path / "fallback-calls.jsonl")
    assert start["route"] == ""  # abandoned in the menu, once ingested


def test_a_chain_without_a_final_queue_ends_in_the_failure_queue(tmp_path: Path) -> None:
    # Soak defect: a chain ending in voicemail had no final_queue, so after the
    # last phone rang the dialplan hung up on the caller (a dead end).
    script = fallback_script()
    table = two_hotline_table(tmp_path)
    agi = FakeAgi(["03"])
    assert script.entry(agi, ["script", "2222", str(table), "second"]) == 0
    assert agi.variables["HL_FINAL"] == "queue"
    assert agi.variables["HL_QUEUE"] == "second-operator"


def test_a_ward_chain_ending_in_voicemail_gets_the_failure_queue_in_the_table(
    tmp_path: Path,
) -> None:
    from ivr.config import load_config
    from ivr.routing_table import build_routing_table

    text = (ROOT / "examples" / "bac-tu-liem.yaml").read_text(encoding="utf-8")
    # Liên Mạc's chain ending in voicemail, as the soak's config had it.
    head, tail = text.split("code: lien-mac", 1)
    tail = tail.replace("- queue:operator", "- voicemail", 1)
    changed = tmp_path / "bac-tu-liem.yaml"
    changed.write_text(head + "code: lien-mac" + tail, encoding="utf-8")
    config = load_config(changed)
    ward = build_routing_table(config)["hotlines"]["bac-tu-liem"]["area_menus"][0]
    assert ward["shortcuts"]["05"]["area"] == "lien-mac"
    assert ward["shortcuts"]["05"]["final_queue"] == "operator"


def test_the_hangup_invocation_appends_the_end_line(tmp_path: Path) -> None:
    script = fallback_script()
    table = two_hotline_table(tmp_path)
    argv = ["script", "call-ended", str(table), "1795420000.7", "dial", "chairman:ward-b"]
    argv += ["ANSWER", "1795420003.250", ""]
    assert script.main.__name__ == "main"
    assert script.call_ended(FakeAgi([]), argv) == 0
    [end] = lines(tmp_path / "fallback-calls.jsonl")
    assert end["event"] == "end" and end["uniqueid"] == "1795420000.7"
    assert (end["route"], end["answered"], end["dial_status"]) == (
        "dial",
        "chairman:ward-b",
        "ANSWER",
    )
    assert end["answer_epoch"] == "1795420003.250"
    assert isinstance(end["at"], float)


# --- reading the spool ------------------------------------------------------------


def start_line(uniqueid: str, **changes: Any) -> str:
    record = {
        "v": 1,
        "event": "start",
        "uniqueid": uniqueid,
        "hotline": "bac-tu-liem",
        "dialed": "02437655555",
        "caller": "0912345678",
        "channel": "PJSIP/pstn-1",
        "at": AT,
        "route": "dial",
        "area": "dong-ngac",
        "keys": "03",
    }
    record.update(changes)
    return json.dumps(record)


def end_line(uniqueid: str, **changes: Any) -> str:
    record = {
        "v": 1,
        "event": "end",
        "uniqueid": uniqueid,
        "at": AT + 40,
        "route": "dial",
        "answered": "phone:t-chair",
        "dial_status": "ANSWER",
        "answer_epoch": str(AT + 12.5),
        "queue_member": "",
    }
    record.update(changes)
    return json.dumps(record)


def test_a_start_line_is_read_into_its_fields() -> None:
    start = parse_line(start_line("u1"))
    assert isinstance(start, SpooledStart)
    assert start.started_at == datetime.fromtimestamp(AT, UTC)
    assert (start.hotline_id, start.route, start.area_code) == ("bac-tu-liem", "dial", "dong-ngac")


def test_the_answering_label_counts_only_when_the_dial_answered() -> None:
    end = parse_line(end_line("u1", dial_status="NOANSWER"))
    assert isinstance(end, CallEnd) and end.answered_by == "" and end.dial_status == "NOANSWER"


def test_bad_lines_are_reported_with_file_and_line_and_the_others_kept() -> None:
    text = "\n".join(
        [
            start_line("u1"),
            "{not json",
            start_line("u2", at="yesterday"),
            end_line("u1"),
            json.dumps({"v": 1, "event": "restart", "uniqueid": "u3"}),
            start_line("u4", hotline=""),
            json.dumps({"v": 2, "event": "start", "uniqueid": "u5"}),
            start_line("u6"),
        ]
    )
    read = parse_spool(text, Path("/var/hotline/fallback-calls.jsonl"), first_line=10)
    assert [entry.uniqueid for entry in read.entries] == ["u1", "u1", "u6"]
    assert [problem.split(": ", 1)[0] for problem in read.problems] == [
        "/var/hotline/fallback-calls.jsonl:11",
        "/var/hotline/fallback-calls.jsonl:12",
        "/var/hotline/fallback-calls.jsonl:14",
        "/var/hotline/fallback-calls.jsonl:15",
        "/var/hotline/fallback-calls.jsonl:16",
    ]
    assert "not JSON" in read.problems[0]
    assert "at: expected epoch seconds" in read.problems[1]
    assert "event: expected 'start' or 'end'" in read.problems[2]
    assert "hotline: missing" in read.problems[3]
    assert "v: expected 1, got 2" in read.problems[4]


# --- into the call log (a real database) ------------------------------------------


@pytest.fixture
def call_log(tmp_path: Path) -> Any:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    log = CallLog(sessions)
    yield log, sessions
    log.close()


def calls(sessions: Any) -> dict[str, Call]:
    with sessions() as session:
        return {c.uniqueid: c for c in session.scalars(select(Call))}


@pytest.mark.db
async def test_ingestion_is_idempotent_and_marks_the_calls(call_log: Any, tmp_path: Path) -> None:
    log, sessions = call_log
    spool_path = tmp_path / "fallback-calls.jsonl"
    spool_path.write_text(f"{start_line('u1')}\n{end_line('u1')}\n", encoding="utf-8")
    spool = FallbackCallSpool(spool_path, log)
    first = await spool.ingest_new()
    assert (first.inserted, first.closed, first.problems) == (1, 1, [])
    record = calls(sessions)["u1"]
    assert record.last_step == FALLBACK_STEP and record.outcome == "answered"
    assert record.caller_number == "+84912345678" and record.area_code == "dong-ngac"
    assert record.answered_by == "phone:t-chair"
    assert record.answered_at == datetime.fromtimestamp(AT + 12.5, UTC)
    assert record.ended_at == datetime.fromtimestamp(AT + 40, UTC)
    # The same file read again by a new process (a restart): nothing changes.
    again = await FallbackCallSpool(spool_path, log).ingest_new()
    assert (again.inserted, again.closed) == (0, 0)
    assert list(calls(sessions)) == ["u1"]
    # Only what was appended since is read by the running one.
    with spool_path.open("a", encoding="utf-8") as handle:
        handle.write(start_line("u2", route="", area="", keys="") + "\n")
        handle.write(end_line("u2", route="", answered="", dial_status="", answer_epoch=""))
    partial = await spool.ingest_new()  # the end line has no newline yet: not read
    assert (partial.inserted, partial.closed) == (1, 0)
    with spool_path.open("a", encoding="utf-8") as handle:
        handle.write("\n")
    rest = await spool.ingest_new()
    assert (rest.inserted, rest.closed) == (0, 1)
    assert calls(sessions)["u2"].outcome == "abandoned_in_ivr"


@pytest.mark.db
async def test_a_record_the_server_closed_is_never_duplicated_nor_overwritten(
    call_log: Any, tmp_path: Path
) -> None:
    log, sessions = call_log
    # The server saw the call (say it was stopping, and the script routed it).
    await log.call_started(
        CallStart(
            "u1",
            "u1",
            "bac-tu-liem",
            "PJSIP/pstn-1",
            "0912345678",
            "02437655555",
            datetime.fromtimestamp(AT, UTC),
        )
    )
    await log.call_ended(
        CallEnd("u1", "queue", "", None, "", "PJSIP/t-agent", datetime.fromtimestamp(AT + 9, UTC))
    )
    # Its hangup missed by the server: closed later from the spool.
    await log.call_started(
        CallStart("u2", "u2", "bac-tu-liem", "", "0912345679", "", datetime.fromtimestamp(AT, UTC))
    )
    spool_path = tmp_path / "fallback-calls.jsonl"
    spool_path.write_text(
        "\n".join([start_line("u1"), end_line("u1"), "garbage", end_line("u2")]) + "\n",
        encoding="utf-8",
    )
    result = await FallbackCallSpool(spool_path, log).ingest_new()
    assert (result.inserted, result.closed) == (0, 1)
    assert result.problems == [f"{spool_path}:3: not JSON (Expecting value at column 1)"]
    records = calls(sessions)
    assert sorted(records) == ["u1", "u2"]
    assert records["u1"].answered_by == "PJSIP/t-agent"  # what the server wrote
    assert records["u1"].ended_at == datetime.fromtimestamp(AT + 9, UTC)
    assert records["u1"].last_step != FALLBACK_STEP
    assert records["u2"].outcome == "answered"
    assert records["u2"].ended_at == datetime.fromtimestamp(AT + 40, UTC)


@pytest.mark.db
async def test_a_rotated_spool_is_read_from_its_start(call_log: Any, tmp_path: Path) -> None:
    log, sessions = call_log
    spool_path = tmp_path / "fallback-calls.jsonl"
    spool_path.write_text(start_line("u1") + "\n" + start_line("u2") + "\n", encoding="utf-8")
    spool = FallbackCallSpool(spool_path, log)
    assert (await spool.ingest_new()).inserted == 2
    spool_path.write_text(start_line("u3") + "\n", encoding="utf-8")  # emptied, one new call
    assert (await spool.ingest_new()).inserted == 1
    assert sorted(calls(sessions)) == ["u1", "u2", "u3"]


# --- the dialplan's side ------------------------------------------------------------


def test_the_dialplan_passes_the_hotline_and_spools_hangups_the_server_missed() -> None:
    from ivr.asterisk.render import render_extensions
    from ivr.config import load_config
    from ivr.routing_table import build_routing_table, call_spool_path

    config = load_config(ROOT / "examples" / "bac-tu-liem.yaml")
    text = render_extensions(config)
    entry = text.split("[hotline-entry]", 1)[1].split("\n\n", 1)[0]
    assert "Set(HL_FALLBACK=1)" in entry
    assert re.search(
        r"AGI\([^)]*hotline_fallback\.py,\$\{HL_DIALED\},[^,]+,\$\{HL_HOTLINE\}\)", entry
    )
    hangup = text.split("[hotline-hangup]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # A call the script served goes straight to the spool; any other goes to
    # the server first, and to the spool when the server could not be reached.
    assert hangup[0] == 'exten => s,1,GotoIf($["${HL_FALLBACK}" = "1"]?spool)'
    assert "AGI(${HL_AGI}/call-ended," in hangup[1]
    assert hangup[2] == ' same => n,GotoIf($["${AGISTATUS}" != "FAILURE"]?done)'
    assert (
        hangup[3].startswith(" same => n(spool),AGI(")
        and "hotline_fallback.py,call-ended," in hangup[3]
    )
    assert hangup[3].endswith(
        ",${UNIQUEID},${HL_ROUTE},${CUT(HL_TARGET,|,3)},${DIALSTATUS},${HL_ANSWER_EPOCH},"
        "${MEMBERINTERFACE},${HL_REC_BASE},${HL_HOTLINE})"
    )
    assert build_routing_table(config)["call_spool"] == str(call_spool_path(config))
