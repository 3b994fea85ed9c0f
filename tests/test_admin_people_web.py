"""The people forms in the console (ivr/web/admin_people.py) against a real
database and a real config file: each form posts to a change that only
touches the intended lines and goes live when applied; a phone's SIP secret
is shown on the page that issues it and on no other; a supervisor manages
only their hotline's queues and agents (403, audited, nothing changed); a
bad value comes back with check-config's error, the field in the clerk's
words."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from ivr.config.phone_secrets import phone_secret, phone_secrets_path
from tests.rig.console import (
    APPLY,
    LiveConsole,
    changed_lines,
    combined_console,
    preview_and_apply,
)

pytestmark = pytest.mark.db

PASSWORD = "mật-khẩu-đủ-dài"


async def _change(
    client: TestClient,
    token: str,
    path: str,
    data: Mapping[str, str] | Iterable[tuple[str, str]],
    reason: str = "thay đổi nhân sự",
) -> tuple[str, str]:
    """Post a form, read its preview, apply it: (the preview page, where Apply
    led)."""
    page, applied = await preview_and_apply(
        client, token, path, data, reason, allow_redirects=False
    )
    assert applied.status in (302, 303), await applied.text()
    return page, applied.headers["Location"]


@pytest_asyncio.fixture
async def console(tmp_path: Path) -> AsyncIterator[LiveConsole]:
    async with combined_console(tmp_path, PASSWORD) as console:
        yield console


async def test_queue_form_changes_the_queues_lines_only_and_applies_live(
    console: LiveConsole,
) -> None:
    client, token = await console.signed_in("quantri")
    before = console.path.read_text(encoding="utf-8")
    page = await (await client.get("/admin/queues/tx-can-bo")).text()
    assert "Người trực cố định" in page and "/admin/roster" in page  # Vietnamese first
    _, back = await _change(client, token, "/admin/queues/tx-can-bo", [
        ("title", "Phản ánh thái độ cán bộ, công chức"), ("hotline", "thanh-xuan"),
        ("strategy", "ringall"), ("ring_seconds", "15"), ("wrapup_seconds", "60"),
        ("service_level_seconds", "30"), ("max_wait_seconds", "600"),
        ("members", "tx03"), ("members", "tx02"),
    ])  # fmt: skip
    assert back.startswith("/admin/queues/tx-can-bo")
    removed, added = changed_lines(before, console.path.read_text(encoding="utf-8"))
    assert removed == ["     wrapup_seconds: 60, members: [tx03]}"]
    assert added == ["     wrapup_seconds: 60, members: [tx03, tx02], strategy: ringall}"]
    queue = console.config.queue("tx-can-bo")
    assert queue is not None and queue.members == ["tx03", "tx02"]
    assert queue.strategy == "ringall"


def _problems(page: str) -> dict[str, str]:
    """The preview's problems: check-config's field → the line the clerk reads."""
    found = re.findall(r'<li class="problem" data-field="([^"]+)">(.*?)</li>', page, re.S)
    return {field: html.unescape(re.sub(r"<[^>]+>", "", text)) for field, text in found}


async def test_a_bad_value_shows_check_configs_error_in_the_clerks_words(
    console: LiveConsole,
) -> None:
    client, token = await console.signed_in("quantri")
    before = console.path.read_text(encoding="utf-8")
    index = next(i for i, q in enumerate(console.config.queues) if q.id == "tx-mot-cua")
    form = [("csrf_token", token), ("title", "Bộ phận Một cửa quận Thanh Xuân"),
            ("hotline", "thanh-xuan"), ("strategy", "leastrecent"),
            ("members", "tx01")]  # fmt: skip
    # A ring time below check-config's minimum.
    answer = await client.post("/admin/queues/tx-mot-cua", data=[*form, ("ring_seconds", "1")])
    page = await answer.text()
    assert answer.status == 422 and APPLY not in page, page  # nothing to apply
    ring = _problems(page)[f"queues[{index}].ring_seconds"]
    assert ring.startswith("Thời gian đổ chuông (giây) Bộ phận Một cửa quận Thanh Xuân:"), ring
    # A member who is not an agent of the queue's hotline.
    answer = await client.post("/admin/queues/tx-mot-cua", data=[*form, ("members", "hcc01")])
    page = await answer.text()
    assert answer.status == 422 and APPLY not in page, page
    member = _problems(page)[f"queues[{index}].members[1]"]
    assert member.startswith("Thành viên hàng đợi Bộ phận Một cửa") and "hcc01" in member, member
    # A line break in the name (it would reach Asterisk's queues.conf).
    named = [("title" if k == "title" else k, "Một cửa\r\n[evil]" if k == "title" else v)
             for k, v in form]  # fmt: skip
    answer = await client.post("/admin/queues/tx-mot-cua", data=named)
    page = await answer.text()
    assert answer.status == 422 and APPLY not in page, page
    assert _problems(page)[f"queues[{index}].title"].startswith("Tên hàng đợi")
    assert console.path.read_text(encoding="utf-8") == before


async def test_new_agent_with_queues_then_a_console_user(console: LiveConsole) -> None:
    client, token = await console.signed_in("gs-tx")
    _, back = await _change(client, token, "/admin/agents", [
        ("id", "tx04"), ("name", "Trần Thị Mơ"), ("phone", "tx-mot-cua-03"),
        ("queues", "tx-mot-cua"),
    ])  # fmt: skip
    assert back.startswith("/admin/agents/tx04")
    # A supervisor's new agent is their hotline's.
    assert console.config.agent_owner("tx04") == "thanh-xuan"
    assert "tx04" in console.config.queue("tx-mot-cua").members  # type: ignore[union-attr]
    made = await client.post("/admin/agents/tx04/user", data={
        "csrf_token": token, "username": "dtv-mo", "password": "mật-khẩu-của-mơ-1",
        "role": "agent",
    }, allow_redirects=False)  # fmt: skip
    assert made.status == 303
    page = await (await client.get(made.headers["Location"])).text()
    assert "dtv-mo" in page
    agent_client, _ = await console.signed_in("dtv-mo", "mật-khẩu-của-mơ-1")
    me = await (await agent_client.get("/api/v1/me")).json()
    assert me["role"] == "agent" and me["agent_id"] == "tx04"
    assert ("gs-tx", "user_add", "dtv-mo") in console.audit()


async def test_phone_secret_is_shown_once_and_never_in_the_pages(console: LiveConsole) -> None:
    client, token = await console.signed_in("quantri")
    before = console.path.read_text(encoding="utf-8")
    preview, back = await _change(client, token, "/admin/phones", {
        "id": "tx-mot-cua-04", "name": "Bàn Một cửa 04", "contact": "",
    })  # fmt: skip
    assert back == "/admin/phones/tx-mot-cua-04?added=1&notice=applied"
    removed, added = changed_lines(before, console.path.read_text(encoding="utf-8"))
    assert removed == [] and len(added) == 1 and "secret" not in added[0]
    issued = await client.post("/admin/phones/tx-mot-cua-04/secret", data={"csrf_token": token})
    page = await issued.text()
    assert issued.status == 200 and issued.headers["Cache-Control"] == "no-store"
    match = re.search(r'<code id="phone-secret">([^<]+)</code>', page)
    assert match
    secret = html.unescape(match.group(1))
    # Stored where generated secrets live (0600), and what Asterisk is given.
    assert phone_secret(console.config, "tx-mot-cua-04") == secret
    assert phone_secrets_path(console.config).stat().st_mode & 0o777 == 0o600
    assert secret not in console.path.read_text(encoding="utf-8")
    assert secret not in preview
    for path in ("/admin/phones", "/admin/phones/tx-mot-cua-04", "/admin/config",
                 "/api/v1/config", back):  # fmt: skip
        assert secret not in await (await client.get(path)).text(), path
    # Another issue gives another secret: the first can never be shown again.
    again = await client.post("/admin/phones/tx-mot-cua-04/secret", data={"csrf_token": token})
    assert secret not in await again.text()
    assert phone_secret(console.config, "tx-mot-cua-04") != secret
    assert ("quantri", "phone_secret_issue", "tx-mot-cua-04") in console.audit()


async def test_supervisor_manages_only_their_hotline(console: LiveConsole) -> None:
    client, token = await console.signed_in("gs-tx")
    before = console.path.read_text(encoding="utf-8")
    listing = await (await client.get("/admin/queues")).text()
    assert "tx-mot-cua" in listing and "hcc-tong-dai" not in listing
    refused = [
        await client.get("/admin/queues/hcc-tong-dai"),
        await client.post(
            "/admin/queues/hcc-tong-dai",
            data={"csrf_token": token, "title": "x", "members": "tx01"},
        ),
        await client.post("/admin/queues/hcc-tong-dai/remove", data={"csrf_token": token}),
        await client.get("/admin/agents/hcc01"),
        await client.post(
            "/admin/agents/hcc01", data={"csrf_token": token, "name": "x", "phone": "hcc-dtv-01"}
        ),
        await client.post(
            "/admin/agents/hcc01/user",
            data={"csrf_token": token, "username": "x", "password": "p" * 12},
        ),
        # Their own queue moved to another hotline, a new agent for another one.
        await client.post(
            "/admin/queues/tx-mot-cua",
            data={"csrf_token": token, "title": "x", "hotline": "ha-noi-hcc"},
        ),
        await client.post(
            "/admin/agents",
            data={
                "csrf_token": token,
                "id": "hcc09",
                "name": "x",
                "phone": "hcc-dtv-01",
                "hotline": "ha-noi-hcc",
            },
        ),
        # Their agent put into another hotline's queue.
        await client.post(
            "/admin/agents/tx01",
            data={
                "csrf_token": token,
                "name": "x",
                "phone": "tx-mot-cua-01",
                "queues": "hcc-tong-dai",
            },
        ),
        await client.get("/admin/phones"),
    ]
    assert [r.status for r in refused] == [403] * len(refused)
    audited = [a for a in console.audit() if a[0] == "gs-tx" and a[1].endswith("_refused")]
    assert len(audited) == len(refused)  # the phones page by role ("route_refused")
    assert {a[2] for a in audited} >= {"hcc-tong-dai", "hcc01"}
    assert console.path.read_text(encoding="utf-8") == before


async def test_removing_an_agent_and_a_phone_in_use(console: LiveConsole) -> None:
    client, token = await console.signed_in("quantri")
    # A phone an agent still answers on: refused, the agent's phone named.
    answer = await client.post("/admin/phones/tx-mot-cua-01/remove", data={"csrf_token": token})
    page = await answer.text()
    assert answer.status == 422 and APPLY not in page, page
    index = next(i for i, a in enumerate(console.config.agents) if a.id == "tx01")
    assert _problems(page)[f"agents[{index}].phone"].startswith("Máy của điện thoại viên")
    # The agent goes, and with them their places in the queues.
    _, back = await _change(client, token, "/admin/agents/tx03/remove", {})
    assert back.startswith("/admin/agents?")
    assert "tx03" not in {a.id for a in console.config.agents}
    assert console.config.queue("tx-mot-cua").members == ["tx01", "tx02"]  # type: ignore[union-attr]
    assert console.config.queue("tx-can-bo").members == []  # type: ignore[union-attr]
    assert ("quantri", "config_change", str(console.path)) in console.audit()
