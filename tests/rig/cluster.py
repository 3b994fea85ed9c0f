"""The cluster rig (issue 15): Kamailio on 127.0.0.1 in front of two Asterisk
nodes, ``node-a`` on 127.0.0.2 (owner of both hotlines of
tests/test_tenancy.py) and ``standby`` on 127.0.0.3, one FastAGI server
(our services in-process, as tests/conftest.py's stack) on PostgreSQL or
SQLite (``HOTLINE_TEST_DB``), and SIPp agents' phones that register through
Kamailio with their secrets.

Each node is a private Asterisk (:class:`~ivr.asterisk.instance.AsteriskInstance`)
rendered by ``render_node``; Kamailio runs the file ``kamailio-config``
renders. The carrier is a SIPp caller on 127.0.0.1 (the trunk's address).

Agents: ``t-agent`` answers A's ``operator`` queue (key 0), ``hcc-01`` B's
``hcc-tu-van`` queue (key 1). Both queues list their agent as a static member,
so the standby's rendered queues.conf has them too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.asterisk.instance import AsteriskInstance
from ivr.asterisk.kamailio import write_kamailio
from ivr.asterisk.kamailio_instance import KamailioInstance
from ivr.asterisk.render import RenderOptions, write_node
from ivr.config import HotlineConfig, load_config
from ivr.config.phone_secrets import generated_phone_secrets
from ivr.routing_table import write_routing_table
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import CallResult, CallStep, SippAnswerer, SippCaller
from ivr.sim.sipp.ports import free_port
from tests.rig.sip_register import register
from tests.rig.stack import (
    REPO,
    CallRecords,
    Ports,
    free_tcp_port,
    free_udp_port,
    wait_for,
    write_test_config,
)
from tests.test_tenancy import B_PHONE, B_QUEUE, A, B, add_second_hotline

PROXY_HOST = "127.0.0.1"
# node-b: the bench's second owner (hotline B), in the standby's place.
NODE_HOSTS = {"node-a": "127.0.0.2", "standby": "127.0.0.3", "node-b": "127.0.0.3"}
A_NUMBER = "02437655555"
A_PHONE = "t-agent"
CHAIR_PHONE = "t-chair"  # the bench's answering phone (menu key 9 of both hotlines)
SECRETS = {
    A_PHONE: "agent-a-secret-0001",
    B_PHONE: "agent-b-secret-0002",
    CHAIR_PHONE: "chair-secret-00003",
}
# Any SIP answer within 1 s is a live node; one missed probe marks it down.
PROBE_INTERVAL_S = 1


@dataclass
class Node:
    id: str
    host: str
    sip_port: int
    ami_port: int
    asterisk: AsteriskInstance

    def processed_calls(self) -> int:
        """Asterisk's own count of calls it has run (``core show calls``)."""
        text = self.asterisk.rx("core show calls")
        match = re.search(r"(\d+) calls? processed", text)
        if match is None:
            raise AssertionError(f"no 'calls processed' in {text!r}")
        return int(match.group(1))

    def kill(self) -> None:
        """SIGKILL the whole Asterisk: no goodbye to anyone."""
        process = self.asterisk.process
        assert process is not None and process.poll() is None, f"{self.id} is not running"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self.asterisk.process = None

    def restart(self) -> None:
        """Start the node again with the same rendered files."""
        self.asterisk.start()


@dataclass
class Cluster:
    config: HotlineConfig
    kamailio: KamailioInstance
    nodes: dict[str, Node]
    services: RunningServices | None
    phones: dict[str, SippAnswerer]
    records: CallRecords
    workdir: Path
    proxy_port: int
    registrations: dict[str, list[int]] = field(default_factory=dict)
    serve_process: subprocess.Popen[bytes] | None = None

    @property
    def proxy(self) -> str:
        return f"{PROXY_HOST}:{self.proxy_port}"

    async def call(self, number: str, caller: str, steps: list[CallStep], **kw: Any) -> CallResult:
        """A citizen's call from the carrier (127.0.0.1) through Kamailio."""
        return await SippCaller(self.workdir / "calls").call(
            target=self.proxy, number=number, caller_id=caller, steps=steps, **kw
        )

    def kamailio_log(self) -> str:
        return self.kamailio.log_file.read_text("utf-8", errors="replace")

    def logs(self) -> str:
        parts = [self.kamailio.log_tail(80)]
        parts += [n.asterisk.log_tail(60) for n in self.nodes.values() if n.asterisk]
        return "\n".join(parts)

    async def close(self) -> None:
        if self.services is not None:
            await self.services.close()
        if self.serve_process is not None:
            self.serve_process.terminate()
            try:
                self.serve_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.serve_process.kill()
                self.serve_process.wait()
        self.kamailio.stop()
        for node in self.nodes.values():
            node.asterisk.stop()
        self.records.dispose()
        for phone in self.phones.values():
            await phone.stop()


def prompts_for_both(quick_prompts: Path, base: Path) -> Path:
    """The quick prompts, with B's folder a copy of A's (tones either way)."""
    prompts = base / "prompts"
    shutil.copytree(quick_prompts, prompts)
    if not (prompts / B).exists():
        shutil.copytree(prompts / A, prompts / B)
    return prompts


def cluster_section(nodes: dict[str, tuple[int, int]], proxy_port: int) -> dict[str, Any]:
    """``cluster:`` for the rig: node id → (SIP port, AMI port). ``node-a``
    owns A (and B unless ``node-b`` does); ``standby`` stands by."""
    owned = {"node-a": [A] if "node-b" in nodes else [A, B], "node-b": [B], "standby": []}
    return {
        "nodes": [
            {"id": node_id, "role": "owner" if node_id != "standby" else "standby",
             "hotlines": owned[node_id],
             "sip": {"host": NODE_HOSTS[node_id], "port": sip},
             "ami": {"host": NODE_HOSTS[node_id], "port": ami}}
            for node_id, (sip, ami) in nodes.items()
        ],
        "proxy": {"host": PROXY_HOST, "port": proxy_port,
                  "probe_interval_seconds": PROBE_INTERVAL_S, "probe_threshold": 1},
    }  # fmt: skip


async def start_cluster(
    base: Path,
    quick_prompts: Path,
    *,
    node_ids: tuple[str, ...] = ("node-a", "standby"),
    agent_hold_ms: int = 2000,
    database_url: str | None = None,
    phone_ids: tuple[str, ...] = (A_PHONE, B_PHONE),
    serve_process: bool = False,
    tweak: Callable[[dict[str, Any]], None] | None = None,
) -> Cluster:
    """Start the rig; ``serve_process`` runs ``hotline serve --only agi`` as a
    process of its own (the bench measures its CPU) instead of in-process."""
    proxy_port = free_udp_port()
    node_ports = {node_id: (free_udp_port(), free_tcp_port()) for node_id in node_ids}
    phone_ports = {phone_id: free_port() for phone_id in phone_ids}
    ports = Ports()

    def edit(data: dict[str, Any]) -> None:
        add_second_hotline(data)
        # The agents' phones register (through Kamailio) with their secrets.
        data["phones"].append(
            {"id": A_PHONE, "name": "Điện thoại viên thử", "secret": SECRETS[A_PHONE]}
        )
        next(p for p in data["phones"] if p["id"] == B_PHONE)["secret"] = SECRETS[B_PHONE]
        for queue in data["queues"]:
            if queue["id"] in ("operator", B_QUEUE):
                queue.update(ring_seconds=8, wrapup_seconds=0, callback=False)
        data["cluster"] = cluster_section(node_ports, proxy_port)
        if CHAIR_PHONE in phone_ids:
            chair = next(p for p in data["phones"] if p["id"] == CHAIR_PHONE)
            chair.pop("contact")
            chair["secret"] = SECRETS[CHAIR_PHONE]
        if tweak is not None:
            tweak(data)

    config_path = write_test_config(
        base, ports,
        {p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice")},
        prompts_for_both(quick_prompts, base), trunk_port=free_udp_port(),
        database_url=database_url, tweak=edit,
    )  # fmt: skip
    config = load_config(config_path)
    options = RenderOptions.from_config(config)
    write_routing_table(config)
    nodes: dict[str, Node] = {}
    phones: dict[str, SippAnswerer] = {}
    kamailio: KamailioInstance | None = None
    services: RunningServices | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        for node_id in node_ids:
            instance = AsteriskInstance(
                base / node_id, agi_dir=REPO / "agi_scripts", system_name=node_id
            )
            write_node(config, options, node_id, instance.etc)
            sip, ami = node_ports[node_id]
            nodes[node_id] = Node(node_id, NODE_HOSTS[node_id], sip, ami, instance)
            instance.start()
        proxy_dir = base / "kamailio"
        write_kamailio(config, generated_phone_secrets(config), proxy_dir / "kamailio.cfg")
        kamailio = KamailioInstance(proxy_dir, proxy_dir / "kamailio.cfg")
        kamailio.start(PROXY_HOST, proxy_port)
        if serve_process:
            server = subprocess.Popen(
                [str(REPO / ".venv/bin/hotline"), "-c", str(config_path), "serve", "--only", "agi"],
                stdout=subprocess.DEVNULL, stderr=(base / "serve.log").open("wb"),
                start_new_session=True,  # its own process group: the bench sums its CPU
            )  # fmt: skip
            await wait_for(lambda: _listening(ports.agi), 60, "hotline serve to listen")
        else:
            services = await start_services(config)
        registrations = {}
        for phone_id, port in phone_ports.items():
            done = await register(
                base / "register", f"{PROXY_HOST}:{proxy_port}", phone_id, port,
                password=SECRETS[phone_id],
            )  # fmt: skip
            registrations[phone_id] = done.statuses
            phone = SippAnswerer(
                base / "sipp", phone_id, mode="answer", hold_ms=agent_hold_ms, port=port,
                play_audio=phone_id != CHAIR_PHONE,
            )  # fmt: skip
            phones[phone_id] = phone
            await phone.start()
    except BaseException:
        if services is not None:
            await services.close()
        if server is not None:
            server.kill()
            server.wait()
        if kamailio is not None:
            kamailio.stop()
        for node in nodes.values():
            node.asterisk.stop()
        for phone in phones.values():
            await phone.stop()
        raise
    return Cluster(
        config, kamailio, nodes, services, phones, CallRecords(config), base, proxy_port,
        registrations, server,
    )  # fmt: skip


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def wait_node_up(cluster: Cluster, node_id: str, timeout: float = 30) -> None:
    """Until Kamailio's probes have seen the node answer again (its log says so)."""
    node = cluster.nodes[node_id]
    up = f"node up: sip:{node.host}:{node.sip_port}"
    await wait_for(lambda: up in cluster.kamailio_log(), timeout, f"Kamailio to log {up!r}")


async def wait_node_down(cluster: Cluster, node_id: str, timeout: float = 30) -> None:
    """Until Kamailio's probes have marked the node inactive (its log says so)."""
    node = cluster.nodes[node_id]
    down = f"node down: sip:{node.host}:{node.sip_port}"
    await wait_for(lambda: down in cluster.kamailio_log(), timeout, f"Kamailio to log {down!r}")
