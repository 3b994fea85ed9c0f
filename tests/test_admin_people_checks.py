"""What the people forms (ivr/web/admin_people.py) answer before they build any
change: a queue, agent or phone the URL names that the config lacks is a 404 on
every route, with nothing written or audited, and before any scope check; a
supervisor's refusal (403) is audited under the action and target that name
exactly what was refused. Integration tier (db)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.rig.console import Account, LiveConsole, combined_console, config_as_written

pytestmark = pytest.mark.db

COMBINED = Path(__file__).resolve().parents[1] / "examples" / "combined.yaml"
PASSWORD = "mật-khẩu-đủ-dài"

# Every route of the people forms that names an item, as (method, path).
NAMED_ROUTES = [
    ("GET", "/admin/queues/{}"),
    ("POST", "/admin/queues/{}"),
    ("POST", "/admin/queues/{}/remove"),
    ("GET", "/admin/agents/{}"),
    ("POST", "/admin/agents/{}"),
    ("POST", "/admin/agents/{}/remove"),
    ("POST", "/admin/agents/{}/user"),
    ("GET", "/admin/phones/{}"),
    ("POST", "/admin/phones/{}"),
    ("POST", "/admin/phones/{}/remove"),
    ("POST", "/admin/phones/{}/secret"),
]


@pytest_asyncio.fixture
async def console(tmp_path: Path) -> AsyncIterator[LiveConsole]:
    async with combined_console(tmp_path, PASSWORD) as console:
        yield console


async def test_an_item_the_config_lacks_is_not_found_on_every_route(
    console: LiveConsole,
) -> None:
    client, token = await console.signed_in("quantri")
    before, audited = console.text(), console.audit()

    statuses = {}
    for method, path in NAMED_ROUTES:
        url = path.format("khong-co")
        if method == "GET":
            answer = await client.get(url)
        else:
            answer = await client.post(url, data={"csrf_token": token, "name": "x"})
        statuses[f"{method} {url}"] = answer.status

    assert set(statuses.values()) == {404}, statuses
    assert console.text() == before
    assert console.audit() == audited


async def test_a_supervisors_unknown_item_is_not_found_before_the_scope_is_checked(
    console: LiveConsole,
) -> None:
    client, token = await console.signed_in("gs-tx")
    audited = console.audit()

    page = await client.get("/admin/queues/khong-co")
    saved = await client.post("/admin/agents/khong-co", data={"csrf_token": token, "name": "x"})

    assert (page.status, saved.status) == (404, 404)
    assert console.audit() == audited  # a 404 is no refusal: nothing to audit


async def test_each_refusal_is_audited_with_what_was_refused(console: LiveConsole) -> None:
    client, token = await console.signed_in("gs-tx")
    before, audited = console.text(), len(console.audit())

    attempts: list[tuple[str, dict[str, str]]] = [
        ("/admin/queues/hcc-tong-dai", {}),  # GET: another hotline's queue
        # Their own queue given to another hotline.
        ("/admin/queues/tx-mot-cua", {"title": "x", "hotline": "ha-noi-hcc"}),
        # A new agent for another hotline.
        (
            "/admin/agents",
            {"id": "hcc09", "name": "x", "phone": "hcc-dtv-01", "hotline": "ha-noi-hcc"},
        ),
        # Their agent put into another hotline's queue.
        ("/admin/agents/tx01", {"name": "x", "phone": "tx-mot-cua-01", "queues": "hcc-tong-dai"}),
        ("/admin/agents/hcc01/remove", {}),
        # A supervisor account is the administrators' to create.
        (
            "/admin/agents/tx01/user",
            {"username": "gs-moi", "password": "p" * 12, "role": "supervisor"},
        ),
    ]
    answers = [await client.get(attempts[0][0])] + [
        await client.post(path, data={"csrf_token": token, **fields})
        for path, fields in attempts[1:]
    ]

    assert [a.status for a in answers] == [403] * len(answers)
    assert console.audit()[audited:] == [
        ("gs-tx", "queue_refused", "hcc-tong-dai"),
        ("gs-tx", "queue_refused", "tx-mot-cua → ha-noi-hcc"),
        ("gs-tx", "agent_refused", "hcc09 → ha-noi-hcc"),
        ("gs-tx", "queue_refused", "hcc-tong-dai"),
        ("gs-tx", "agent_refused", "hcc01"),
        ("gs-tx", "user_refused", "supervisor for tx01"),
    ]
    assert console.text() == before


async def test_a_supervisor_of_the_only_hotline_adds_a_queue(tmp_path: Path) -> None:
    """With one hotline in the file a new queue names none (it is implied); the
    scope check must still see it as that hotline's, not refuse the supervisor."""
    example = COMBINED.parent / "bac-tu-liem.yaml"
    path = config_as_written(tmp_path, example, "sqlite:///../var/btl.db")
    supervisor = Account("gs-btl", "supervisor", hotline_id="bac-tu-liem")
    async with LiveConsole.running(path, supervisor, password=PASSWORD) as console:
        client, token = await console.signed_in("gs-btl")
        audited = len(console.audit())
        answer = await client.post("/admin/queues", data={
            "csrf_token": token, "id": "tiep-dan", "title": "Tiếp công dân",
            "strategy": "rrmemory", "ring_seconds": "15",
        })  # fmt: skip
        assert answer.status == 200, await answer.text()
        assert "tiep-dan" in await answer.text()  # the preview of the new queue
        assert not [row for row in console.audit()[audited:] if row[1].endswith("_refused")]
