"""The units' portal pages (issue 13), in tests/test_forwarding_api.py's
two-hotline deployment: a unit user's home is the list of its forwarded cases
(deadline, days left, overdue marked, filters); the case view shows the
summary, and the transcript and recording only when the forward shares them;
the forms move the forward (received, in progress, answer with a file,
extension, return); the supervisor decides an extension from the case page;
the wallboard lists the escalated forwards of the user's hotline; a unit user
is refused (403, audited) every page of another unit, of the calls and of the
live queues.
"""

# The fixtures are tests/test_forwarding_api.py's, imported: pytest passes them
# in by the parameters that shadow the imported names.
# ruff: noqa: F811

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp import FormData
from sqlalchemy import select

from ivr.cases.models import Case, CaseForward, ForwardAttachment, Recording
from ivr.config import HotlineConfig
from ivr.web.forwarding import start_due_checks
from tests.test_forwarding_api import (  # noqa: F401 (fixtures)
    UNIT_1,
    UNIT_2,
    Setup,
    _audited,
    _forward_both,
    config,
    sessions,
    setup,
)
from tests.test_tenancy import A

pytestmark = pytest.mark.db


def _today(config: HotlineConfig) -> date:
    # The pages count days from the deployment's local date; so does the test.
    return datetime.now(ZoneInfo(config.timezone)).date()


def _set_due(setup: Setup, forward_id: int, due: date) -> None:
    with setup.sessions.begin() as session:
        session.get(CaseForward, forward_id).due_date = due


def _form(headers: dict[str, str], **fields: str) -> dict[str, str]:
    return {"csrf_token": headers["X-CSRF-Token"], **fields}


async def test_a_unit_users_home_lists_its_cases_with_days_left_and_overdue_marked(
    setup: Setup, config: HotlineConfig
) -> None:
    ids = await _forward_both(setup)
    today = _today(config)
    _set_due(setup, ids[UNIT_1], today + timedelta(days=3))
    _set_due(setup, ids[UNIT_2], today - timedelta(days=2))

    unit, _ = await setup.user("donvi-1")
    home = await unit.get("/", allow_redirects=False)
    assert home.headers["Location"] == "/forwards"
    page = await (await unit.get("/forwards")).text()
    assert f'data-code="{setup.code}" data-forward="{ids[UNIT_1]}" class=""' in page
    assert f'data-forward="{ids[UNIT_2]}"' not in page  # the other unit's forward
    assert "Rác thải tồn đọng ngõ 12" in page and "còn 3 ngày" in page
    assert "Ủy ban nhân dân phường Đông Ngạc" in page  # whose list this is
    assert '<a href="/calls">' not in page  # a unit's menu has no calls, no cases

    other, _ = await setup.user("donvi-2")
    page = await (await other.get("/forwards")).text()
    assert f'data-forward="{ids[UNIT_2]}" class="overdue"' in page
    assert "quá hạn 2 ngày" in page
    assert f'data-forward="{ids[UNIT_1]}"' not in page
    overdue = await (await other.get("/forwards?status=overdue")).text()
    assert f'data-forward="{ids[UNIT_2]}"' in overdue
    answered = await (await other.get("/forwards?status=answered")).text()
    assert f'data-forward="{ids[UNIT_2]}"' not in answered and 'id="no-forwards"' in answered


async def test_the_case_view_shows_the_transcript_and_recording_only_when_shared(
    setup: Setup, config: HotlineConfig
) -> None:
    unit_staff, headers = await setup.user("dtv-a")
    sent = await unit_staff.post(
        f"/api/v1/cases/{setup.code}/forwards",
        json={"units": [{"unit_code": UNIT_1, "share_transcript": True, "share_recording": True},
                        UNIT_2]},
        headers=headers,
    )  # fmt: skip
    ids = {f["unit_code"]: f["id"] for f in (await sent.json())["forwards"]}
    audio = config.resolve_path(config.paths.recordings) / "2026-11-23" / "caller.wav"
    audio.parent.mkdir(parents=True, exist_ok=True)
    audio.write_bytes(b"RIFF-audio")
    with setup.sessions.begin() as session:
        case = session.scalar(select(Case).where(Case.code == setup.code))
        case.transcript = "Người gọi: rác để ba ngày chưa thu gom"
        case.caller_name = "Phạm Văn Minh"
        recording = Recording(call_uniqueid="1700000000.1", case_id=case.id, kind="caller",
                              path=str(audio))  # fmt: skip
        session.add(recording)
        session.flush()
        recording_id = recording.id

    shared, _ = await setup.user("donvi-1")
    page = await (await shared.get(f"/forwards/{ids[UNIT_1]}")).text()
    assert "Rác thải tồn đọng ngõ 12" in page
    assert "rác để ba ngày chưa thu gom" in page
    src = f"/forwards/{ids[UNIT_1]}/recordings/{recording_id}"
    assert f'src="{src}"' in page
    # Never the citizen: the unit answers through the hotline.
    assert "Phạm Văn Minh" not in page and "0912000111" not in page
    listened = await shared.get(src)
    assert listened.status == 200 and await listened.read() == b"RIFF-audio"
    assert ("donvi-1", f"recording {recording_id}") in _audited(setup.sessions, "listen")
    # The console's own recording URL stays the staff's.
    assert (await shared.get(f"/recordings/{recording_id}")).status == 403

    not_shared, _ = await setup.user("donvi-2")
    page = await (await not_shared.get(f"/forwards/{ids[UNIT_2]}")).text()
    assert "Rác thải tồn đọng ngõ 12" in page
    assert "rác để ba ngày" not in page and "/recordings/" not in page
    own_url = f"/forwards/{ids[UNIT_2]}/recordings/{recording_id}"
    assert (await not_shared.get(own_url)).status == 403
    assert (await not_shared.get(src)).status == 403
    assert ("donvi-2", f"recording {recording_id}") in _audited(setup.sessions, "listen_refused")


async def test_the_forms_move_the_forward_and_the_answer_carries_its_file(setup: Setup) -> None:
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    page_of = f"/forwards/{ids[UNIT_1]}"
    page = await (await unit.get(page_of)).text()
    assert 'id="mark-received"' in page and 'id="answer-form"' in page

    moved = await unit.post(f"{page_of}/received", data=_form(headers), allow_redirects=False)
    assert moved.status == 303 and moved.headers["Location"] == page_of
    page = await (await unit.get(page_of)).text()
    assert "đơn vị đã tiếp nhận" in page and 'id="mark-received"' not in page
    await unit.post(f"{page_of}/in_progress", data=_form(headers))

    form = FormData()
    form.add_field("csrf_token", headers["X-CSRF-Token"])
    form.add_field("answer", "Đã thu gom rác ngõ 12, biên bản kèm theo.")
    form.add_field("file", b"%PDF-1.4 bien ban", filename="biên bản.pdf",
                   content_type="application/pdf")  # fmt: skip
    answered = await unit.post(f"{page_of}/answer", data=form, allow_redirects=False)
    assert answered.status == 303, await answered.text()
    page = await (await unit.get(page_of)).text()
    assert "Đã thu gom rác ngõ 12" in page and 'id="answer-form"' not in page
    with setup.sessions() as session:
        attachment = session.scalar(
            select(ForwardAttachment).where(ForwardAttachment.forward_id == ids[UNIT_1])
        )
    assert attachment is not None and attachment.filename == "biên bản.pdf"
    assert f'href="/api/v1/attachments/{attachment.id}"' in page
    download = await unit.get(f"/api/v1/attachments/{attachment.id}")
    assert await download.read() == b"%PDF-1.4 bien ban"

    # The other unit returns the case as not its own, with a reason.
    other, other_headers = await setup.user("donvi-2")
    returned = await other.post(
        f"/forwards/{ids[UNIT_2]}/return",
        data=_form(other_headers, reason="Thuộc thẩm quyền phường"), allow_redirects=False,
    )  # fmt: skip
    assert returned.status == 303
    page = await (await other.get(f"/forwards/{ids[UNIT_2]}")).text()
    assert "trả lại: không thuộc thẩm quyền" in page and "Thuộc thẩm quyền phường" in page
    # A move the rules refuse is the error page with the reason.
    again = await other.post(f"/forwards/{ids[UNIT_2]}/in_progress", data=_form(other_headers))
    assert again.status == 400 and "cannot become in_progress" in await again.text()


async def test_the_answer_form_takes_a_file_larger_than_aiohttps_default_body(
    setup: Setup,
) -> None:
    # A scanned report of a few MB is an ordinary answer; aiohttp refuses any
    # body over 1 MB unless the route is given more.
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    scan = b"%PDF-1.4 " + bytes(range(256)) * (3 * 4096)  # 3 MB
    form = FormData()
    form.add_field("csrf_token", headers["X-CSRF-Token"])
    form.add_field("answer", "Biên bản quét kèm theo.")
    form.add_field("file", scan, filename="scan.pdf", content_type="application/pdf")
    answered = await unit.post(f"/forwards/{ids[UNIT_1]}/answer", data=form,
                               allow_redirects=False)  # fmt: skip
    assert answered.status == 303, answered.status
    with setup.sessions() as session:
        attachment = session.scalar(
            select(ForwardAttachment).where(ForwardAttachment.forward_id == ids[UNIT_1])
        )
    assert attachment is not None and attachment.size == len(scan)
    # Other routes keep the default: a big body on the login form is refused.
    big = await unit.post("/login", data={"username": "x" * (2 * 2**20), "password": "y"})
    assert big.status == 413


async def test_a_supervisor_grants_an_extension_from_the_case_page(setup: Setup) -> None:
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    due_before = (await (await unit.get(f"/api/v1/forwards/{ids[UNIT_1]}")).json())["due_date"]
    asked = await unit.post(
        f"/forwards/{ids[UNIT_1]}/extension",
        data=_form(headers, days="5", reason="Cần khảo sát hiện trường"), allow_redirects=False,
    )  # fmt: skip
    assert asked.status == 303
    other, _ = await setup.user("donvi-2")
    assert (await other.get(f"/forwards/{ids[UNIT_1]}")).status == 403

    supervisor, sup_headers = await setup.user("gs-a")
    page = await (await supervisor.get(f"/cases/{setup.code}")).text()
    assert "Cần khảo sát hiện trường" in page
    assert f'action="/forwards/{ids[UNIT_1]}/extension/grant"' in page
    assert f'action="/forwards/{ids[UNIT_2]}/extension/grant"' not in page  # nothing asked
    granted = await supervisor.post(
        f"/forwards/{ids[UNIT_1]}/extension/grant", data=_form(sup_headers),
        allow_redirects=False,
    )  # fmt: skip
    assert granted.status == 303
    assert granted.headers["Location"] == f"/cases/{setup.code}#forwards"
    forward = await (await unit.get(f"/api/v1/forwards/{ids[UNIT_1]}")).json()
    assert forward["status"] == "extension_granted" and forward["due_date"] > due_before
    # A unit never decides its own extension.
    decided = await unit.post(f"/forwards/{ids[UNIT_1]}/extension/grant", data=_form(headers))
    assert decided.status == 403
    # Refused, with a reason: the forward goes back to in progress, its deadline kept.
    other, other_headers = await setup.user("donvi-2")
    other_due = (await (await other.get(f"/api/v1/forwards/{ids[UNIT_2]}")).json())["due_date"]
    await other.post(f"/forwards/{ids[UNIT_2]}/extension",
                     data=_form(other_headers, days="3", reason="Chờ ý kiến sở"))  # fmt: skip
    refused = await supervisor.post(
        f"/forwards/{ids[UNIT_2]}/extension/refuse",
        data=_form(sup_headers, note="Đề nghị trả lời đúng hạn"), allow_redirects=False,
    )  # fmt: skip
    assert refused.status == 303
    listed = await (await supervisor.get(f"/api/v1/cases/{setup.code}/forwards")).json()
    kept = {f["unit_code"]: f for f in listed}[UNIT_2]
    assert kept["status"] == "in_progress" and kept["due_date"] == other_due


async def test_a_unit_user_is_refused_another_units_pages_and_the_hotlines(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    other = ids[UNIT_2]
    assert (await unit.get(f"/forwards/{other}")).status == 403
    posted = await unit.post(f"/forwards/{other}/received", data=_form(headers))
    assert posted.status == 403
    form = FormData()
    form.add_field("csrf_token", headers["X-CSRF-Token"])
    form.add_field("answer", "x")
    assert (await unit.post(f"/forwards/{other}/answer", data=form)).status == 403
    assert ("donvi-1", f"forward {other}") in _audited(setup.sessions, "read_forward_refused")
    # The hotline's pages: the case, the calls, the live queues, the cases list.
    for path in (f"/cases/{setup.code}", "/calls", "/cases", "/wallboard", "/agent",
                 "/api/v1/wallboard", "/api/v1/wallboard/overdue-forwards", "/stats",
                 "/ws/wallboard", "/api/v1/calls", "/knowledge"):  # fmt: skip
        assert (await unit.get(path)).status == 403, path
    staff, _ = await setup.user("gs-a")
    listed = await (await staff.get(f"/api/v1/cases/{setup.code}/forwards")).json()
    assert {f["unit_code"]: f["status"] for f in listed}[UNIT_2] == "sent"


async def test_the_wallboard_lists_the_escalated_forwards_of_the_users_hotline(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    _set_due(setup, ids[UNIT_2], date(2020, 1, 6))  # long past
    assert setup.console.server is not None
    schedule = start_due_checks(setup.console.server.app)
    try:
        await schedule.run_once()
    finally:
        await schedule.close()
    supervisor_a, _ = await setup.user("gs-a")
    listed = await (await supervisor_a.get("/api/v1/wallboard/overdue-forwards")).json()
    assert [(f["case_code"], f["unit_code"], f["unit_name"], f["hotline_id"]) for f in listed] == [
        (setup.code, UNIT_2, "Phòng Quản lý đô thị", A)
    ]
    supervisor_b, _ = await setup.user("gs-b")
    assert await (await supervisor_b.get("/api/v1/wallboard/overdue-forwards")).json() == []
    # Answered late, it leaves the list (the count follows at the job's next run).
    unit, headers = await setup.user("donvi-2")
    await unit.post(f"/api/v1/forwards/{ids[UNIT_2]}/answer", json={"answer": "Muộn."},
                    headers=headers)  # fmt: skip
    assert await (await supervisor_a.get("/api/v1/wallboard/overdue-forwards")).json() == []
