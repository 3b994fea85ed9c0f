"""The change pipeline every administration form goes through
(ivr/web/config_changes.py), against a real database and a real config file
applied live: the preview names the changed field in the clerk's words and
shows the changed lines; an invalid change says what is wrong and cannot be
applied; applying changes the file and the running config, audited with the
reason; a preview made from a config someone else changed meanwhile is
refused; the history lists the change and its undo restores the previous text
byte for byte, audited as a rollback; a supervisor changes only their own
hotline's items."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.config import HotlineConfig, yaml_edit
from ivr.config.schema import iter_areas
from ivr.web import config_changes
from ivr.web.state import STATE, WATCHERS, state_of
from tests.rig.console import (
    APPLY,
    Account,
    LiveConsole,
    apply_form,
    apply_preview,
    config_as_written,
)

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
DISTRICT = REPO / "examples" / "bac-tu-liem.yaml"  # one hotline
COMBINED = REPO / "examples" / "combined.yaml"  # four hotlines
PASSWORD = "mật-khẩu-đủ-dài"
FORM = "/test/form"  # a stand-in for the forms: sets one value and previews it
DONG_NGAC = ["areas", 0, "children", 0, "children", 2]
CHAIRMAN = [*DONG_NGAC, "chairman"]  # the field most of these changes set
OLD_CHAIRMAN = "tel:0900000103@pstn"
NEW_CHAIRMAN = "tel:0913000103@pstn"
REASON = "Bầu Chủ tịch mới sau kỳ họp HĐND"


async def set_one_value(request: web.Request) -> web.StreamResponse:
    """What every form does: edit the current text with yaml_edit, then preview."""
    form = await request.post()
    applier = state_of(request).applier
    assert applier is not None
    text = yaml_edit.set_value(
        applier.current_text(), tuple(json.loads(str(form["path"]))), json.loads(str(form["value"]))
    )
    return await config_changes.preview_change(
        request, new_text=text, summary=str(form.get("summary", "")), back="/admin/wards?x=1"
    )


class Console(LiveConsole):
    """The console with the stand-in form, open to every watcher."""

    def __init__(self, path: Path, sessions: Any, password: str) -> None:
        super().__init__(path, sessions, password)
        self.app.router.add_post(FORM, set_one_value, name="test_form")
        self.app[STATE].roles["test_form"] = WATCHERS


async def _preview(
    client: TestClient, token: str, path: list[Any], value: Any, summary: str = "Đổi Chủ tịch"
) -> tuple[int, str]:
    answer = await client.post(
        FORM,
        data={"csrf_token": token, "path": json.dumps(path), "value": json.dumps(value),
              "summary": summary},
    )  # fmt: skip
    return answer.status, html.unescape(await answer.text())


async def _apply(client: TestClient, page: str, reason: str = REASON) -> Any:
    return await apply_preview(client, page, reason, allow_redirects=False)


async def _new_chairman_previewed(console: Console) -> tuple[TestClient, str, str]:
    """An administrator signed in, and their preview of Đông Ngạc's new
    chairman: (the client, its CSRF token, the preview page)."""
    client, token = await console.signed_in("quantri")
    status, page = await _preview(client, token, CHAIRMAN, NEW_CHAIRMAN)
    assert status == 200, page
    return client, token, page


@pytest_asyncio.fixture(loop_scope="session")
async def district(tmp_path: Path) -> AsyncIterator[Console]:
    path = config_as_written(tmp_path, DISTRICT, "sqlite:///../var/hotline.db")
    async with Console.running(
        path, Account("quantri", "admin"), Account("quantri2", "admin"), password=PASSWORD
    ) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def combined(tmp_path: Path) -> AsyncIterator[Console]:
    path = config_as_written(tmp_path, COMBINED, "sqlite:///../var/combined.db")
    async with Console.running(
        path,
        Account("quantri", "admin"),
        Account("gs-btl", "supervisor", hotline_id="bac-tu-liem-2026"),
        Account("gs-tx", "supervisor", hotline_id="thanh-xuan"),
        Account("gs-all", "supervisor"),
        password=PASSWORD,
    ) as c:
        yield c


def _chairman(config: HotlineConfig) -> str | None:
    area = next(a for a in iter_areas(config.areas) if a.code == "dong-ngac")
    return str(area.chairman) if area.chairman else None


async def test_preview_names_the_chairman_in_vietnamese_and_shows_the_changed_line(
    district: Console,
) -> None:
    before = district.text()
    _, _, page = await _new_chairman_previewed(district)
    first = re.search(r'<tr class="change">(.*?)</tr>', page, re.S)
    assert first, page
    cells = re.findall(r"<td[^>]*>(.*?)</td>", first.group(1))
    assert cells == ["Chủ tịch phường Đông Ngạc", "0900000103 (qua pstn)", "0913000103 (qua pstn)"]
    assert f"<del>-            chairman: {OLD_CHAIRMAN}  " in page
    assert f"<ins>+            chairman: {NEW_CHAIRMAN}  " in page
    assert len(re.findall(r"<(?:ins|del)>", page)) == 2  # one line out, one in
    assert 'name="reason"' in page and apply_form(page)["token"]
    # A preview changes nothing.
    assert district.text() == before
    assert _chairman(district.config) == OLD_CHAIRMAN


async def test_preview_masks_secrets_in_the_fields_and_the_lines(district: Console) -> None:
    client, token = await district.signed_in("quantri")
    secret = "bi-mat-moi-cua-may-0123456789"
    status, page = await _preview(client, token, ["phones", 0, "secret"], secret, "Mật khẩu")
    assert status == 200, page
    assert secret not in page
    assert "Mật khẩu máy Văn phòng HĐND và UBND quận" in page
    assert "change-me-ami-secret" not in page


async def test_an_invalid_change_says_what_is_wrong_in_words_and_cannot_be_applied(
    district: Console,
) -> None:
    before = district.text()
    client, token = await district.signed_in("quantri")
    status, page = await _preview(client, token, CHAIRMAN, "queue:khong-co")
    assert status == 422, page
    problems = re.search(r'id="change-problems">(.*?)</div>', page, re.S)
    assert problems, page
    assert "<strong>Chủ tịch phường Đông Ngạc</strong>: không có hàng đợi “khong-co”" in (
        problems.group(1)
    )
    assert "unknown queue 'khong-co'" in problems.group(1)  # check-config's words kept
    assert f'action="{APPLY}"' not in page  # no Apply button
    # Nor can a made-up preview be applied.
    answer = await client.post(APPLY, data={"csrf_token": token, "token": "bịa", "reason": REASON})
    assert answer.status == 410
    assert district.text() == before
    assert _chairman(district.config) == OLD_CHAIRMAN


async def test_apply_changes_the_file_and_the_running_config_audited_with_the_reason(
    district: Console,
) -> None:
    before = district.text()
    client, _, page = await _new_chairman_previewed(district)
    # A reason is required, 3 to 500 characters, on one line: else nothing happens.
    for bad in ("", "ok", "một\ndòng khác", "x" * 501):
        refused = await _apply(client, page, bad)
        assert refused.status == 422, bad
        assert 'id="change-reason-error"' in await refused.text()
        assert district.text() == before
    answer = await _apply(client, page)
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == "/admin/wards?x=1&notice=applied"
    after = district.text()
    assert after == before.replace(
        f"chairman: {OLD_CHAIRMAN}        # Chủ tịch UBND phường (di động)\n            fallbacks:"
        "\n              - tel:0900000203@pstn",
        f"chairman: {NEW_CHAIRMAN}        # Chủ tịch UBND phường (di động)\n            fallbacks:"
        "\n              - tel:0900000203@pstn",
    )
    assert after != before
    assert _chairman(district.config) == NEW_CHAIRMAN  # the process's one config source
    assert ("quantri", "config_change", f"Đổi Chủ tịch — {REASON}") in district.audit("detail")
    # The same preview cannot be applied twice.
    again = await _apply(client, page)
    assert again.status == 410


async def test_a_preview_of_a_config_changed_meanwhile_is_refused(district: Console) -> None:
    first, token1 = await district.signed_in("quantri")
    second, token2 = await district.signed_in("quantri2")
    _, page1 = await _preview(first, token1, CHAIRMAN, NEW_CHAIRMAN)
    _, page2 = await _preview(second, token2, [*DONG_NGAC, "name"], "Phường Đông Ngạc mới")
    assert (await _apply(second, page2)).status == 303
    theirs = district.text()
    # The other administrator's preview was made from the text before.
    stale = await _apply(first, page1)
    text = await stale.text()
    assert stale.status == 409, text
    assert 'id="change-fresh" href="/admin/wards?x=1"' in text
    assert district.text() == theirs
    assert _chairman(district.config) == OLD_CHAIRMAN
    # Nor does one administrator apply another's preview.
    _, page3 = await _preview(first, token1, CHAIRMAN, NEW_CHAIRMAN)
    form = apply_form(page3)
    form.update(csrf_token=token2, reason=REASON)
    assert (await second.post(APPLY, data=form)).status == 410
    assert district.text() == theirs


async def test_history_lists_the_change_and_undo_restores_the_text_exactly(
    district: Console,
) -> None:
    original = district.text()
    client, _, page = await _new_chairman_previewed(district)
    assert (await _apply(client, page)).status == 303
    history = await client.get("/admin/changes")
    listing = html.unescape(await history.text())
    assert history.status == 200, listing
    [row] = re.findall(r'<tr data-change="([0-9a-f]+)">(.*?)</tr>', listing, re.S)
    change_id, cells = row
    assert "quantri" in cells and "Đổi Chủ tịch" in cells and REASON in cells
    # Undo previews the way back, in words and lines, then applies it.
    answer = await client.get(f"/admin/changes/{change_id}/restore")
    undo = html.unescape(await answer.text())
    assert answer.status == 200, undo
    row = re.search(r'<tr class="change">(.*?)</tr>', undo, re.S)
    assert row, undo
    row_cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert row_cells == [
        "Chủ tịch phường Đông Ngạc",
        "0913000103 (qua pstn)",
        "0900000103 (qua pstn)",
    ]
    assert "Hoàn tác: Đổi Chủ tịch (quantri)" in undo
    restored = await _apply(client, undo, "Nhập nhầm số")
    assert restored.status == 303
    assert restored.headers["Location"] == "/admin/changes?notice=applied"
    assert district.text() == original  # byte for byte
    assert _chairman(district.config) == OLD_CHAIRMAN
    actions = [(a, b) for a, b, _ in district.audit("detail")]
    assert ("quantri", "config_rollback") in actions
    listing = html.unescape(await (await client.get("/admin/changes")).text())
    rows = re.findall(r'<tr data-change="([0-9a-f]+)">(.*?)</tr>', listing, re.S)
    assert len(rows) == 2 and "Nhập nhầm số" in rows[0][1]  # newest first
    # A made-up version is not found, and names no file.
    assert (await client.get("/admin/changes/..%2Fhotline/restore")).status == 404


async def test_a_supervisor_changes_only_their_own_hotlines_items(combined: Console) -> None:
    config = combined.config
    btl = next(i for i, q in enumerate(config.queues) if q.hotline == "bac-tu-liem-2026")
    tx = next(i for i, q in enumerate(config.queues) if q.hotline == "thanh-xuan")
    before = combined.text()
    client, token = await combined.signed_in("gs-tx")
    # Another hotline's queue: refused before any preview, audited.
    status, page = await _preview(client, token, ["queues", btl, "wrapup_seconds"], 45, "Hàng đợi")
    assert status == 403, page
    assert "Thời gian hoàn tất sau cuộc gọi (giây)" in page
    assert ("gs-tx", "config_change_refused") in [(a, b) for a, b, _ in combined.audit("detail")]
    # Shared areas of a multi-hotline file are the administrators'.
    status, _ = await _preview(client, token, ["areas", 0, "name"], "Hà Nội", "Tên")
    assert status == 403
    assert combined.text() == before
    # Their own hotline's queue: previewed and applied.
    status, page = await _preview(client, token, ["queues", tx, "wrapup_seconds"], 45, "Hàng đợi")
    assert status == 200, page
    assert (await _apply(client, page)).status == 303
    assert combined.config.queues[tx].wrapup_seconds == 45
    # A supervisor of no hotline in particular acts for every hotline, but
    # what several hotlines share stays with the administrators.
    every, token2 = await combined.signed_in("gs-all")
    status, _ = await _preview(every, token2, ["queues", btl, "wrapup_seconds"], 50, "Hàng đợi")
    assert status == 200
    status, _ = await _preview(every, token2, ["areas", 0, "name"], "Hà Nội", "Tên")
    assert status == 403
    # The history shows a supervisor only their own hotline's changes.
    other, _ = await combined.signed_in("gs-btl")
    listing = await (await other.get("/admin/changes")).text()
    assert "data-change=" not in listing
    # An administrator changes any hotline's items.
    admin, token4 = await combined.signed_in("quantri")
    status, page = await _preview(admin, token4, ["queues", btl, "wrapup_seconds"], 40, "Hàng đợi")
    assert status == 200, page
    assert (await _apply(admin, page)).status == 303
    assert combined.config.queues[btl].wrapup_seconds == 40
    assert combined.config.queues[tx].wrapup_seconds == 45


async def test_the_yaml_editor_masks_secrets_and_its_change_can_be_undone(
    district: Console,
) -> None:
    original = district.text()
    client, token = await district.signed_in("quantri")
    page = await (await client.get("/admin/config")).text()
    editor = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.S)
    assert editor, page
    masked = html.unescape(editor.group(1))
    assert "change-me-ami-secret" not in page and "change-me-ami-secret" not in masked
    edited = masked.replace(f"chairman: {OLD_CHAIRMAN}", f"chairman: {NEW_CHAIRMAN}", 1)
    answer = await client.post("/admin/config", data={"csrf_token": token, "text": edited})
    assert answer.status == 200, await answer.text()
    assert _chairman(district.config) == NEW_CHAIRMAN
    assert "secret: change-me-ami-secret" in district.text()  # kept, never shown
    listing = html.unescape(await (await client.get("/admin/changes")).text())
    [(change_id, cells)] = re.findall(r'<tr data-change="([0-9a-f]+)">(.*?)</tr>', listing, re.S)
    assert "Trình sửa YAML" in cells and "quantri" in cells
    undo = html.unescape(await (await client.get(f"/admin/changes/{change_id}/restore")).text())
    assert (await _apply(client, undo, "Sửa nhầm trong trình sửa YAML")).status == 303
    assert district.text() == original
    assert _chairman(district.config) == OLD_CHAIRMAN


async def test_the_json_api_previews_applies_and_lists_and_reasons_are_escaped(
    district: Console,
) -> None:
    client, token = await district.signed_in("quantri")
    answer = await client.post(
        FORM,
        data={"csrf_token": token, "path": json.dumps(CHAIRMAN),
              "value": json.dumps(NEW_CHAIRMAN), "summary": "Đổi Chủ tịch"},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    preview = await answer.json()
    assert preview["changes"] == [
        {"field": "Chủ tịch phường Đông Ngạc", "before": "0900000103 (qua pstn)",
         "after": "0913000103 (qua pstn)"}
    ]  # fmt: skip
    wrong = await client.post(
        FORM,
        data={"csrf_token": token, "path": json.dumps(CHAIRMAN),
              "value": json.dumps("queue:khong-co"), "summary": "Đổi Chủ tịch"},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert wrong.status == 422
    [problem] = (await wrong.json())["problems"]
    assert (problem["field"], problem["message"]) == (
        "Chủ tịch phường Đông Ngạc", "không có hàng đợi “khong-co” (đang có: 'conduct', 'field', "
        "'operator', 'procedures')"
    )  # fmt: skip
    hostile = "<script>alert(1)</script> đổi số"
    applied = await client.post(
        "/api/v1/config/changes/apply",
        json={"token": preview["token"], "reason": hostile},
        headers={"X-CSRF-Token": token},
    )
    body = await applied.json()
    assert applied.status == 200 and body["ok"] and body["version"], body
    assert _chairman(district.config) == NEW_CHAIRMAN
    [entry] = (await (await client.get("/api/v1/config/changes")).json())["changes"]
    assert (entry["id"], entry["user"], entry["reason"]) == (body["version"], "quantri", hostile)
    page = await (await client.get("/admin/changes")).text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


async def test_restore_this_version_goes_back_to_what_a_change_led_to(district: Console) -> None:
    client, token, first = await _new_chairman_previewed(district)
    assert (await _apply(client, first)).status == 303
    after_first = district.text()
    _, second = await _preview(client, token, [*DONG_NGAC, "name"], "Phường Đông Ngạc (mới)", "Tên")
    assert (await _apply(client, second)).status == 303
    listing = html.unescape(await (await client.get("/admin/changes")).text())
    rows = re.findall(r'<tr data-change="([0-9a-f]+)">(.*?)</tr>', listing, re.S)
    assert [("Tên" in cells, "Đổi Chủ tịch" in cells) for _, cells in rows] == [
        (True, False), (False, True)
    ]  # fmt: skip
    assert "?version=after" not in rows[0][1]  # the newest is the current file
    older = rows[1][0]
    answer = await client.get(f"/admin/changes/{older}/restore?version=after")
    page = html.unescape(await answer.text())
    assert answer.status == 200, page
    assert "Khôi phục phiên bản sau thay đổi: Đổi Chủ tịch (quantri)" in page
    assert "Phường Đông Ngạc (mới)" in page and "Restore" not in page
    assert (await _apply(client, page, "Quay lại tên cũ")).status == 303
    assert district.text() == after_first
    assert _chairman(district.config) == NEW_CHAIRMAN
    listing = html.unescape(await (await client.get("/admin/changes")).text())
    newest = re.findall(r'<tr data-change="([0-9a-f]+)">', listing)[0]  # the restore itself
    assert (await client.get(f"/admin/changes/{newest}/restore?version=after")).status == 404


async def test_the_yaml_editor_refuses_to_save_over_a_change_made_meanwhile(
    district: Console,
) -> None:
    expert, token = await district.signed_in("quantri")
    page = await (await expert.get("/admin/config")).text()
    editor = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.S)
    base = re.search(r'name="base" value="([0-9a-f]{64})"', page)
    assert editor and base, page
    # Meanwhile a clerk changes the chairman through a form.
    clerk, token2 = await district.signed_in("quantri2")
    _, preview = await _preview(clerk, token2, CHAIRMAN, NEW_CHAIRMAN)
    assert (await _apply(clerk, preview)).status == 303
    theirs = district.text()
    edited = html.unescape(editor.group(1)).replace("Phường Đông Ngạc", "Phường Đông Ngạc 2", 1)
    answer = await expert.post(
        "/admin/config", data={"csrf_token": token, "text": edited, "base": base.group(1)}
    )
    text = html.unescape(await answer.text())
    assert answer.status == 409, text
    assert "Người khác đã thay đổi cấu hình sau khi bạn mở trình sửa" in text
    assert "Phường Đông Ngạc 2" in text  # the expert's text comes back, not lost
    assert district.text() == theirs and _chairman(district.config) == NEW_CHAIRMAN
