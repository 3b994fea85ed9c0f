"""The re-audit of the console's routes added since issue 13 (notes/audit17.md):
each test is a hole found there, shown closed against a real database and a
real config file (examples/combined.yaml: several hotlines, a supervisor of
Thanh Xuân, an administrator).

- a supervisor may not give their own agent a phone another hotline's agent
  answers on: an agent user reads the calls answered at their phone, so that
  agent (and the supervisor who set its password) would read the other
  hotline's calls;
- a case opened by hand (the case API) may not claim the Open311 channel:
  the Open311 API lists that channel's cases to anyone, and a citizen who
  phoned was never told their case would be public;
- a change's preview hides the secrets inside an item added or removed whole
  (a phone whose SIP secret is written in the file, a trunk, a channel's
  section): only the changed leaf was masked, so removing such a phone showed
  its secret on the page and in the JSON;
- a console user's name and display name hold no line break or control
  character (a supervisor now creates agent users from the agent's page: a
  name with a line break forges lines in the log and the audit export).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.config import load_config
from ivr.web.models import WebUser
from ivr.web.store import UserError, UserStore
from tests.rig.console import (
    APPLY,
    Account,
    LiveConsole,
    config_as_written,
    console_sessions,
)

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
COMBINED = REPO / "examples" / "combined.yaml"
PASSWORD = "mật-khẩu-đủ-dài"
SUPERVISOR = "gs-tx"  # Thanh Xuân's supervisor
ACCOUNTS = (
    Account("quantri", "admin"),
    Account(SUPERVISOR, "supervisor", hotline_id="thanh-xuan"),
)
# Thanh Xuân's agent and its phone; Hà Nội HCC's agent's phone.
OWN_AGENT, OWN_PHONE = "tx01", "tx-mot-cua-01"
FOREIGN_PHONE = "hcc-dtv-01"
FREE_PHONE = "tx-van-phong"  # no agent's, and no ward or menu rings it
# A ward of Bắc Từ Liêm's whose chairman the test rings on that phone instead.
CHAIRMAN_LINE = "chairman: tel:0900000601@pstn"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return config_as_written(tmp_path, COMBINED, "sqlite:///../var/combined.db")


@pytest_asyncio.fixture
async def console(config_path: Path) -> AsyncIterator[LiveConsole]:
    async with LiveConsole.running(config_path, *ACCOUNTS, password=PASSWORD) as console:
        yield console


def usernames(console: LiveConsole) -> set[str]:
    with console.sessions() as session:
        return set(session.scalars(select(WebUser.username)))


# --- agents' phones -------------------------------------------------------------------


async def test_a_supervisor_cannot_give_their_agent_another_hotlines_agents_phone(
    console: LiveConsole,
) -> None:
    client, token = await console.signed_in(SUPERVISOR)
    before = console.text()
    refused = [
        # Their own agent moved onto Hà Nội HCC's agent's desk phone.
        await client.post(
            f"/admin/agents/{OWN_AGENT}",
            data={"csrf_token": token, "name": "Agent", "phone": FOREIGN_PHONE},
        ),
        # A new agent of their hotline on that phone.
        await client.post(
            "/admin/agents",
            data={"csrf_token": token, "id": "tx09", "name": "Agent", "phone": FOREIGN_PHONE},
        ),
    ]
    pages = [await r.text() for r in refused]
    assert [r.status for r in refused] == [403, 403], pages
    assert all(APPLY not in page for page in pages)  # nothing to apply
    refusals = [a for a in console.audit() if a[:2] == (SUPERVISOR, "config_change_refused")]
    assert len(refusals) == 2
    assert console.text() == before


async def test_a_supervisor_cannot_give_their_agent_a_wards_phone_either(
    config_path: Path,
) -> None:
    """With several hotlines the wards are shared: the calls a ward's phone
    answers are any hotline's."""
    text = config_path.read_text(encoding="utf-8")
    assert text.count(CHAIRMAN_LINE) == 1
    config_path.write_text(
        text.replace(CHAIRMAN_LINE, f"chairman: phone:{FREE_PHONE}"), encoding="utf-8"
    )
    async with LiveConsole.running(config_path, *ACCOUNTS, password=PASSWORD) as console:
        client, token = await console.signed_in(SUPERVISOR)
        answer = await client.post(
            f"/admin/agents/{OWN_AGENT}",
            data={"csrf_token": token, "name": "Agent", "phone": FREE_PHONE},
        )
        assert answer.status == 403, await answer.text()
        assert APPLY not in await answer.text()


async def test_an_administrator_still_gives_any_phone_and_a_supervisor_their_hotlines(
    console: LiveConsole,
) -> None:
    admin, admin_token = await console.signed_in("quantri")
    answer = await admin.post(
        f"/admin/agents/{OWN_AGENT}",
        data={"csrf_token": admin_token, "name": "Agent", "phone": FOREIGN_PHONE},
    )
    assert answer.status == 200, await answer.text()  # the preview, with its Apply
    assert APPLY in await answer.text()
    client, token = await console.signed_in(SUPERVISOR)
    # Another desk phone of their hotline's (tx03's), a phone nothing rings, and a
    # new name on the agent's own.
    for phone in ("tx-mot-cua-03", FREE_PHONE, OWN_PHONE):
        answer = await client.post(
            f"/admin/agents/{OWN_AGENT}",
            data={"csrf_token": token, "name": "Nguyễn Văn Khánh", "phone": phone},
        )
        assert answer.status == 200, await answer.text()
        assert APPLY in await answer.text()


# --- cases opened by hand ---------------------------------------------------------------


async def test_a_case_opened_by_hand_cannot_be_published_through_open311(
    config_path: Path,
) -> None:
    with config_path.open("a", encoding="utf-8") as out:
        out.write("channels: {open311: {enabled: true}}\n")
    async with LiveConsole.running(config_path, *ACCOUNTS, password=PASSWORD) as console:
        client, token = await console.signed_in(SUPERVISOR)
        opened = await client.post(
            "/api/v1/cases",
            json={"channel": "open311", "caller_number": "0912345678",
                  "caller_name": "Nguyễn Văn Dân", "summary": "Nhà số 5 ngõ 12, CCCD 001099012345"},
            headers={"X-CSRF-Token": token},
        )  # fmt: skip
        answer = await opened.json()
        assert opened.status == 400 and "open311" not in answer["error"], answer
        listed = await client.get(
            "/open311/v2/requests.json", params={"jurisdiction_id": "thanh-xuan"}
        )
        assert listed.status == 200 and await listed.json() == []
        # Any other channel still: a letter retyped from an email.
        opened = await client.post(
            "/api/v1/cases",
            json={"channel": "email", "caller_number": "0912345678", "summary": "Thư"},
            headers={"X-CSRF-Token": token},
        )
        assert opened.status == 200, await opened.text()


# --- secrets in a change's preview -----------------------------------------------------

HAND_WRITTEN_SECRET = "Hand-Written-Secret-0123"
FREE_PHONE_LINE = '{id: tx-van-phong, name: "Văn phòng HĐND và UBND quận Thanh Xuân"}'


async def test_removing_a_phone_never_shows_its_hand_written_secret(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    assert text.count(FREE_PHONE_LINE) == 1
    with_secret = FREE_PHONE_LINE[:-1] + f", secret: {HAND_WRITTEN_SECRET}}}"
    config_path.write_text(text.replace(FREE_PHONE_LINE, with_secret), encoding="utf-8")
    async with LiveConsole.running(config_path, *ACCOUNTS, password=PASSWORD) as console:
        client, token = await console.signed_in("quantri")
        for headers in ({}, {"X-Requested-With": "fetch"}):  # the page, and its JSON
            answer = await client.post(
                f"/admin/phones/{FREE_PHONE}/remove", data={"csrf_token": token}, headers=headers
            )
            body = await answer.text()
            assert answer.status == 200, body
            assert FREE_PHONE in body and HAND_WRITTEN_SECRET not in body


# --- console user names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "display_name"),
    [
        ("dtv-x\r\n2026-11-30 12:00:00 INFO quantri logged in", ""),
        ("dtv-x\nforged", ""),
        ("dtv\x00x", ""),
        ("dtv-x", "Nguyễn\r\nVăn A"),
        ("dtv-x", "tab\there"),
    ],
)
async def test_a_user_name_with_a_line_break_or_control_character_is_refused(
    console: LiveConsole, username: str, display_name: str
) -> None:
    client, token = await console.signed_in(SUPERVISOR)
    made = await client.post(
        f"/admin/agents/{OWN_AGENT}/user",
        data={"csrf_token": token, "username": username, "display_name": display_name,
              "password": "mật-khẩu-của-dtv-1", "role": "agent"},
        allow_redirects=False,
    )  # fmt: skip
    assert made.status == 303
    assert "error=" in made.headers["Location"]
    assert usernames(console) == {"quantri", SUPERVISOR}
    assert not [a for a in console.audit() if a[1] == "user_add"]


def test_the_user_store_refuses_control_characters_and_keeps_ordinary_names(
    config_path: Path,
) -> None:
    with console_sessions(load_config(config_path).database_url) as sessions:
        _store_refuses_control_characters(UserStore(sessions))


def _store_refuses_control_characters(users: UserStore) -> None:
    for username, display_name in [("a\u2028b", ""), ("ok", "x\x1by")]:
        with pytest.raises(UserError):
            users.add(username, PASSWORD, "agent", agent_id=OWN_AGENT, display_name=display_name)
    user = users.add(
        "Nguyễn.Hà-01", PASSWORD, "agent", agent_id=OWN_AGENT, display_name="Nguyễn Thị Hà"
    )
    assert (user.username, user.display_name) == ("nguyễn.hà-01", "Nguyễn Thị Hà")
