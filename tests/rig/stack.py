"""The real stack for end-to-end tests: a private Asterisk rendered from a test
variant of the example config, SIPp phones that answer, and our services.

The test config is the Bắc Từ Liêm example with loopback ports, a temporary
database, and a few wards pointed at SIPp answerers:

- ward ``03`` (Đông Ngạc): chairman answers;
- ward ``04`` (Đức Thắng): chairman does not answer (rings 3 s), the
  vice-chairman answers;
- ward ``05`` (Liên Mạc): nobody answers, the caller leaves a message (a case);
- queue ``operator``: one SIPp agent answers;
- the ``pstn`` trunk: a SIPp "carrier" answers every external number (113, …).
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.asterisk.render import RenderOptions, write_all
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import Call
from ivr.routing_table import write_routing_table
from ivr.sim.polling import wait_for as wait_for  # the one poll helper; tests import it here
from tests.rig.postgres import fresh_database_url

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "bac-tu-liem.yaml"
HOTLINE_NUMBER = "02437655555"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ports:
    sip: int = field(default_factory=free_udp_port)
    ami: int = field(default_factory=free_tcp_port)
    agi: int = field(default_factory=free_tcp_port)


def _ward(data: dict[str, Any], code: str) -> dict[str, Any]:
    wards = data["areas"][0]["children"][0]["children"]
    return next(ward for ward in wards if ward["code"] == code)


def point_at_rig(
    data: dict[str, Any],
    base: Path,
    ports: Ports,
    prompts_dir: Path,
    trunk_port: int,
    database_url: str | None = None,
) -> None:
    """Point a config's sockets, database, folders and first trunk at this rig
    (loopback ports, files under ``base``), whatever example it came from."""
    data["asterisk"]["sip"]["port"] = ports.sip
    data["asterisk"]["ami"]["port"] = ports.ami
    data["asterisk"]["agi"]["port"] = ports.agi
    data["asterisk"]["rtp"] = {"start": 40000, "end": 49999}
    # SQLite, or a fresh database on the rig's PostgreSQL (HOTLINE_TEST_DB).
    data.setdefault("database", {})["url"] = database_url or fresh_database_url(base)
    data["paths"] = {
        "prompts": str(prompts_dir),
        "recordings": str(base / "recordings"),
        "routing_table": str(base / "routing.json"),
        "phone_secrets": str(base / "phone-secrets.json"),  # generated SIP secrets, 0600
    }
    data["trunks"][0]["port"] = trunk_port


def write_test_config(
    base: Path,
    ports: Ports,
    contacts: dict[str, str],
    prompts_dir: Path,
    trunk_port: int,
    database_url: str | None = None,
    tweak: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Derive the test config from the example; ``contacts`` maps phone id → SIP URI."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    point_at_rig(data, base, ports, prompts_dir, trunk_port, database_url)
    for phone_id, contact in contacts.items():
        data["phones"].append({"id": phone_id, "name": phone_id, "contact": contact})
    data["agents"].append({"id": "t-agent", "name": "Điện thoại viên thử", "phone": "t-agent"})
    operator = next(q for q in data["queues"] if q["id"] == "operator")
    operator["members"] = ["t-agent"]
    operator["ring_seconds"] = 5
    operator["wrapup_seconds"] = 0
    answering = _ward(data, "dong-ngac")
    answering["chairman"] = "phone:t-chair"
    silent = _ward(data, "duc-thang")
    silent["chairman"] = "phone:t-chair-silent"
    silent["fallbacks"] = ["phone:t-vice", "queue:operator"]
    silent["ring_seconds"] = 3
    nobody = _ward(data, "lien-mac")  # ward 05: nobody answers, the message becomes a case
    nobody["chairman"] = "phone:t-chair-silent"
    nobody["fallbacks"] = ["voicemail"]
    nobody["ring_seconds"] = 3
    hotline = data["hotlines"][0]
    for menu in hotline["menus"].values():
        menu["timeout_seconds"] = 2
    if tweak is not None:
        tweak(data)
    path = base / "hotline-test.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class CallRecords:
    """Reads the call log the services wrote."""

    def __init__(self, config: HotlineConfig) -> None:
        self._engine = make_engine(config.database_url)
        self._sessions = make_session_factory(self._engine)

    def by_caller(self, e164: str) -> list[Call]:
        with self._sessions() as session:
            return list(
                session.scalars(select(Call).where(Call.caller_number == e164).order_by(Call.id))
            )

    async def wait_closed(self, e164: str, timeout: float = 20) -> Call:
        """The caller's call once the hangup handler has closed it."""
        return await wait_for(
            lambda: next((c for c in self.by_caller(e164) if c.ended_at is not None), None),
            timeout,
            f"a closed call record for {e164}",
        )

    def dispose(self) -> None:
        self._engine.dispose()


def start_asterisk(base: Path, config_path: Path) -> tuple[AsteriskInstance, HotlineConfig]:
    config = load_config(config_path)
    instance = AsteriskInstance(base / "asterisk", agi_dir=REPO / "agi_scripts")
    write_all(config, RenderOptions.from_config(config), instance.etc)
    write_routing_table(config)
    instance.start()
    return instance, config
