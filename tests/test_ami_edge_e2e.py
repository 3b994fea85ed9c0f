"""Vietnamese names through the real Asterisk's AMI, the bytes cut small on the way.

A private Asterisk (the rig's config); the AMI link reaches it through a TCP
proxy that forwards Asterisk's bytes in pieces of 1 to 7 bytes, so letters are
split across reads as a busy network splits them. Members are added with
Vietnamese names (QueueAdd, through the AMI gate), a ``QueueStatus`` burst
reads them back, and every name must arrive whole in the live model. The
stream is recorded (``ami-events-vi.jsonl`` in the test's directory) for the
property tests when ``bench/fixtures/ami_events_vi.jsonl`` is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from queue_manager.ami import AmiLink
from queue_manager.model import LiveModel
from tests.rig.stack import REPO, Ports, free_udp_port, start_asterisk, wait_for
from tests.rig.stack import write_test_config as write_config

pytestmark = pytest.mark.asterisk

_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
_GIVEN = ["Thị Hà", "Văn Đức", "Ngọc Ánh", "Thu Trang", "Đức Anh", "Quốc Huy", "Thị Lụa"]
NAMES = [f"{f} {g}" for f in _FAMILY for g in _GIVEN][:40]  # a QueueStatus burst of 40+
QUEUES = ("operator", "procedures", "field")
FIXTURE = REPO / "bench" / "fixtures" / "ami_events_vi.jsonl"


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, small: bool, rng: random.Random
) -> None:
    """Forward until the end; ``small``: in pieces of 1 to 7 bytes, each its own send."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            if not small:
                writer.write(data)
                await writer.drain()
                continue
            while data:
                cut = rng.randint(1, 7)
                writer.write(data[:cut])
                data = data[cut:]
                await writer.drain()
                await asyncio.sleep(0)
    writer.close()


@contextlib.asynccontextmanager
async def chopping_proxy(port: int) -> AsyncIterator[int]:
    """A local port whose connections reach ``port``; replies come in tiny pieces."""
    rng = random.Random(17)
    tasks: set[asyncio.Task[None]] = set()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", port)
        for pipe in (
            _pipe(client_r, upstream_w, False, rng),
            _pipe(upstream_r, client_w, True, rng),
        ):
            task = asyncio.create_task(pipe)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()


async def test_vietnamese_member_names_arrive_whole_through_asterisk_in_tiny_reads(
    tmp_path: Path, asterisk_binary: Path, quick_prompts: Path
) -> None:
    config_path = write_config(
        tmp_path,
        Ports(),
        {
            **{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice")},
            "t-agent": "sip:t-agent@127.0.0.1:9",
        },
        quick_prompts,
        trunk_port=free_udp_port(),
    )
    asterisk, config = start_asterisk(tmp_path, config_path)
    record_path = tmp_path / "ami-events-vi.jsonl"
    try:
        ami = config.asterisk.ami
        node = ami.node_list()[0]
        async with chopping_proxy(node.port) as port:
            model = LiveModel("local")
            with record_path.open("w", encoding="utf-8") as record:
                link = AmiLink(
                    "local", "127.0.0.1", port, ami.username, ami.secret, model, record=record
                )
                link.start()
                try:
                    await wait_for(lambda: link.synced.is_set(), 30, "the first AMI resync")
                    for n, name in enumerate(NAMES):
                        await link.send(
                            {
                                "Action": "QueueAdd",
                                "Queue": QUEUES[n % len(QUEUES)],
                                "Interface": f"Local/{2000 + n}@nowhere",
                                "MemberName": name,
                                "Paused": "false",
                            }
                        )
                    for _ in range(2):  # QueueStatus bursts, in tiny reads too
                        await link.resync()
                finally:
                    await link.close()
        names = [
            model.queues[QUEUES[n % len(QUEUES)]].members[f"Local/{2000 + n}@nowhere"].name
            for n in range(len(NAMES))
        ]
        assert names == NAMES
        assert link.counters.invalid_utf8 == 0 and link.counters.skipped() == 0
        recorded = record_path.read_text(encoding="utf-8")
        assert all(name in recorded for name in NAMES)
        if FIXTURE.parent.is_dir() and not FIXTURE.exists():
            shutil.copy(record_path, FIXTURE)
    finally:
        asterisk.stop()
