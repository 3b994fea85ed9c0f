"""Issue 10 without a PBX: the AMI gate, pause reasons as codes, sessions that
end on the server, the client address behind a trusted proxy, the login
limiter keyed on user and address, redirects that stay on the site, and the
exact channel a supervisor spies on."""

from __future__ import annotations

import asyncio
import ipaddress
from types import SimpleNamespace
from typing import Any

import pytest

from ivr.asterisk.ami_gate import GatedManager, UnsafeAmiAction, check_action
from ivr.web.auth import safe_next
from ivr.web.security import client_address
from ivr.web.session_store import SessionStore
from ivr.web.store import UserStore
from queue_manager.listen_in import live_channel_of
from queue_manager.manager import QueueManager
from queue_manager.model import TALKING
from tests import test_web
from tests.test_web import PASSWORD, Console

# The console harness of tests/test_web.py (fixtures shared by name).
config = test_web.config
sessions = test_web.sessions
console = test_web.console

HOSTILE = "x\r\n\r\nAction: Hangup\r\nChannel: /./"


# --- the AMI gate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "QueuePause", "Interface": "PJSIP/a", "Reason": HOSTILE},
        {"Action": "QueuePause", "Reason": "x\nAction: Hangup"},
        {"Action": "QueuePause", "Reason": "x\rAction: Hangup"},
        {"Action": "QueuePause", "Reason": "nul\0"},
        {"Action": "Originate", "Variable": ["A=1", "B=2\r\nAction: Hangup"]},
        {"Action": "Hangup\r\nChannel: /./"},
        {"Action": "Ping", "Bad Header": "x"},
        {"Action": "Ping", "X:Y": "x"},
        {"Reason": "no action"},
    ],
)
def test_the_ami_gate_refuses_line_breaks_nul_and_odd_header_names(
    action: dict[str, Any],
) -> None:
    with pytest.raises(UnsafeAmiAction):
        check_action(action)


def test_the_ami_gate_lets_ordinary_actions_through() -> None:
    check_action({"Action": "QueuePause", "Interface": "PJSIP/dtv-1", "Reason": "break"})
    check_action({"Action": "Originate", "Variable": ["HL_SPY_OPTS=w", "X=Nguyễn Thị Hà"]})


class _RecordingProtocol:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, action: Any, as_list: bool | None = None) -> str:
        self.sent.append(action)
        return "future"


def test_the_gated_manager_writes_nothing_when_an_action_is_refused() -> None:
    manager = GatedManager()
    manager.protocol = _RecordingProtocol()
    with pytest.raises(UnsafeAmiAction):
        manager.send_action({"Action": "QueuePause", "Reason": HOSTILE})
    with pytest.raises(UnsafeAmiAction):  # keyword headers pass the same gate
        manager.send_action({"Action": "QueuePause"}, Reason=HOSTILE)
    assert manager.protocol.sent == []
    assert manager.send_action({"Action": "Ping"}) == "future"
    assert manager.protocol.sent == [{"Action": "Ping"}]


def test_panoramisk_logs_never_carry_an_ami_secret(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import ivr.asterisk.ami_gate  # noqa: F401  (installs the filter)

    with caplog.at_level(logging.INFO, logger="panoramisk"):
        logging.getLogger("panoramisk.ami_protocol").error(
            # panoramisk formats the string itself before logging it.
            "Fail to send " + repr("Action: Login\r\nUsername: hotline\r\nSecret: s3cr3t-value\r\n")
        )
        logging.getLogger("panoramisk.manager").info(
            "Adding action %s", str({"action": "Login", "Secret": "s3cr3t-value"})
        )
    assert len(caplog.records) == 2
    assert "s3cr3t-value" not in caplog.text and "hotline" in caplog.text


# --- pause reasons ---------------------------------------------------------------------


@pytest.mark.db
async def test_a_pause_reason_outside_the_list_is_refused_before_the_queue_manager(
    console: Console,
) -> None:
    agent, token = await console.signed_in("dtv1")
    refused = await agent.post(
        "/api/v1/agent/pause", data={"reason": HOSTILE}, headers={"X-CSRF-Token": token}
    )
    assert refused.status == 400
    body = await refused.json()
    assert "Lý do tạm nghỉ không hợp lệ" in body["message"] and "break" in body["message"]
    supervisor, supervisor_token = await console.signed_in("giamsat")
    agent_id = console.config.agents[0].id
    refused = await supervisor.post(
        f"/api/v1/agents/{agent_id}/pause", json={"reason": "Supervisor\r\nAction: Hangup"},
        headers={"X-CSRF-Token": supervisor_token},
    )  # fmt: skip
    assert refused.status == 400
    assert console.manager.calls == []
    # No reason from a supervisor: the configured "supervisor" code.
    ok = await supervisor.post(
        f"/api/v1/agents/{agent_id}/pause", json={}, headers={"X-CSRF-Token": supervisor_token}
    )
    assert ok.status == 200
    assert console.manager.calls == [("pause", (agent_id, "supervisor"))]


@pytest.mark.db
async def test_the_agent_page_offers_the_configured_reasons_with_labels(
    console: Console,
) -> None:
    agent, _ = await console.signed_in("dtv1")
    page = await (await agent.get("/agent")).text()
    assert '<option value="meal">Ăn ca</option>' in page
    assert '<option value="break">Nghỉ giải lao</option>' in page


async def test_the_queue_manager_refuses_an_unknown_reason_code(tmp_path: Any) -> None:
    from queue_manager.manager import QueueManager, UnknownPauseReason
    from tests.test_web import _config

    manager = QueueManager(_config(tmp_path), None)
    with pytest.raises(UnknownPauseReason):
        await manager.pause("any", HOSTILE)


# --- sessions ----------------------------------------------------------------------------


@pytest.mark.db
async def test_a_cookie_replayed_after_sign_out_gets_the_login_page(console: Console) -> None:
    agent, token = await console.signed_in("dtv1")
    cookie = {c.key: c.value for c in agent.session.cookie_jar}["hotline_session"]
    signed_out = await agent.post("/logout", headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert signed_out.status == 302
    thief = await console.client()
    replay = await thief.get("/agent", cookies={"hotline_session": cookie}, allow_redirects=False)
    assert replay.status == 302 and replay.headers["Location"].startswith("/login")
    api = await thief.get("/api/v1/me", cookies={"hotline_session": cookie})
    assert api.status == 401


@pytest.mark.db
async def test_disabling_a_user_ends_its_sessions_on_the_server(
    console: Console,
    sessions: Any,
) -> None:
    agent, _ = await console.signed_in("dtv2")
    user = next(u for u in UserStore(sessions).all() if u.username == "dtv2")
    assert SessionStore(sessions).count(user.id) == 1
    admin, admin_token = await console.signed_in("quantri")
    answer = await admin.post(
        f"/admin/users/{user.id}/active", data={"active": "0"},
        headers={"X-CSRF-Token": admin_token}, allow_redirects=False,
    )  # fmt: skip
    assert answer.status == 303
    assert SessionStore(sessions).count(user.id) == 0
    assert (await agent.get("/api/v1/me")).status == 401


# --- the client address and the login limiter ----------------------------------------


def test_the_client_address_is_read_from_a_trusted_proxy_only() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/30"), ipaddress.ip_network("::1/128")]
    # No trusted proxy: the header is the client's own words.
    assert client_address("203.0.113.9", ["198.51.100.1"], []) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"
    # Behind the proxy: the right-most untrusted hop; a forged left part is ignored.
    assert client_address("10.0.0.1", ["1.1.1.1, 198.51.100.7"], proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", ["198.51.100.7, 10.0.0.2"], proxies) == "198.51.100.7"
    assert client_address("::1", ["2001:db8::5"], proxies) == "2001:db8::5"
    assert client_address("10.0.0.1", ["garbage"], proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", [], proxies) == "10.0.0.1"


@pytest.mark.db
async def test_behind_a_proxy_one_guessers_failures_do_not_lock_out_the_staff(
    console: Console,
) -> None:
    from ivr.web.app import STATE

    assert console.server is not None
    state = console.server.app[STATE]
    web_cfg = state.config.web.model_copy(
        update={"trusted_proxies": [ipaddress.ip_network("127.0.0.0/8")]}
    )
    await state.config_source.replace(state.config.model_copy(update={"web": web_cfg}))

    async def sign_in(username: str, password: str, client_ip: str) -> int:
        client = await console.client()
        page = await (await client.get("/login")).text()
        from tests.test_web import _csrf

        answer = await client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": _csrf(page)},
            headers={"X-Forwarded-For": client_ip}, allow_redirects=False,
        )  # fmt: skip
        return answer.status

    for _ in range(3):  # login_attempts is 3 in the test config
        assert await sign_in("dtv1", "wrong-password", "198.51.100.66") == 401
    assert await sign_in("dtv1", PASSWORD, "198.51.100.66") == 429  # that guesser waits
    assert await sign_in("dtv1", PASSWORD, "198.51.100.10") == 302  # the agent does not
    assert await sign_in("giamsat", PASSWORD, "198.51.100.11") == 302
    from ivr.audit import AuditEntry

    with console.sessions() as session:
        addresses = {e.address for e in session.query(AuditEntry).filter_by(action="login_failed")}
    assert addresses == {"198.51.100.66"}


# --- redirects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example/",
     "/\r\nSet-Cookie: x=1", "/ /evil.example", "evil.example", ""],
)  # fmt: skip
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


def test_next_keeps_a_local_path_with_its_query() -> None:
    assert safe_next("/calls?caller=0912&day_from=2026-11-01") == (
        "/calls?caller=0912&day_from=2026-11-01"
    )


@pytest.mark.db
async def test_the_language_switch_does_not_redirect_off_site(console: Console) -> None:
    client = await console.client()
    answer = await client.get("/lang/en?next=/%09/evil.example", allow_redirects=False)
    assert answer.status == 302 and answer.headers["Location"] == "/"


# --- listen-in ---------------------------------------------------------------------------


class _ChannelsLink:
    def __init__(self, channels: list[tuple[str, str]]) -> None:
        self.channels = channels

    async def send(self, action: dict[str, Any], as_list: bool = False) -> list[Any]:
        assert action == {"Action": "CoreShowChannels"} and as_list
        return [
            {"Response": "Success"},
            *({"Event": "CoreShowChannel", "Channel": c, "ChannelState": s}
              for c, s in self.channels),
            {"Event": "CoreShowChannelsComplete"},
        ]  # fmt: skip


async def test_listen_in_picks_the_agents_own_channel_not_a_longer_phone_id() -> None:
    link = _ChannelsLink(
        [("PJSIP/dtv-10-0000000a", "6"), ("PJSIP/dtv-1-x-0000000c", "6"),
         ("PJSIP/dtv-1-0000000b", "6"), ("Local/dtv-1@x-00000001;1", "6")]
    )  # fmt: skip
    assert await live_channel_of(link, "dtv-1") == "PJSIP/dtv-1-0000000b"
    assert await live_channel_of(_ChannelsLink([("PJSIP/dtv-10-0000000a", "6")]), "dtv-1") is None


class _NodeLink(_ChannelsLink):
    """A node where the agent's phone is a queue member; it keeps what it was sent."""

    def __init__(self, channels: list[tuple[str, str]], interface: str) -> None:
        super().__init__(channels)
        talking = SimpleNamespace(state=lambda now: TALKING)
        self.model = SimpleNamespace(queues={"q": SimpleNamespace(members={interface: talking})})
        self.sent: list[dict[str, Any]] = []
        self.connected = asyncio.Event()  # an AMI link that is up
        self.connected.set()

    async def send(self, action: dict[str, Any], as_list: bool = False) -> list[Any]:
        self.sent.append(dict(action))
        if action["Action"] == "CoreShowChannels":
            return await super().send(action, as_list)
        return [{"Response": "Success"}]


def _spying_manager(config: Any, channels: list[tuple[str, str]]) -> tuple[Any, _NodeLink]:
    manager = QueueManager(config)
    link = _NodeLink(channels, f"PJSIP/{config.agents[0].phone}")
    manager.links = {"node": link}
    return manager, link


async def test_listen_in_rings_the_supervisor_and_spies_on_the_exact_channel(config: Any) -> None:
    agent, phone = config.agents[0], config.phones[-1].id
    own = f"PJSIP/{agent.phone}-0000000b"
    manager, link = _spying_manager(config, [(f"PJSIP/{agent.phone}0-0000000a", "6"), (own, "6")])
    assert await manager.spy(agent.id, phone, "whisper") == own
    assert link.sent == [
        {"Action": "CoreShowChannels"},
        {"Action": "Originate", "Channel": f"PJSIP/{phone}", "Context": "hotline-spy",
         "Exten": agent.phone, "Priority": "1", "CallerID": f"whisper <{agent.phone}>",
         "Variable": ["HL_SPY_OPTS=w", f"HL_SPY_CHANNEL={own}"], "Async": "true"},
    ]  # fmt: skip


async def test_listen_in_originates_nothing_without_a_call_or_with_a_foreign_value(
    config: Any,
) -> None:
    agent, phone = config.agents[0], config.phones[-1].id
    manager, link = _spying_manager(config, [])
    assert await manager.spy(agent.id, phone, "listen") is None
    assert link.sent == [{"Action": "CoreShowChannels"}]
    with pytest.raises(ValueError):
        await manager.spy(agent.id, phone, "shout")
    with pytest.raises(KeyError):
        await manager.spy(agent.id, HOSTILE, "listen")
    assert link.sent == [{"Action": "CoreShowChannels"}]
