"""Websocket fan-out of the wallboard: time from an AMI event entering the live
model to its frame arriving in each of N connected browsers' sockets.

The server side is the real console (``create_app``: session, role check, the
hub) over a real ``LiveModel``; AMI events are applied to the model as the AMI
link would. The N clients run in a separate process (their own event loop), log
in as a supervisor and hold ``/ws/wallboard`` open; each frame carries the time
its change entered the model (``event_at``), so a client's latency is its
receive time minus that (one machine, one clock). Goal: p99 < 200 ms on 2 cores.

    .venv/bin/python bench/ws_fanout.py [--clients 100] [--events 200] [--interval-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from aiohttp import ClientSession, CookieJar, TCPConnector, web

from ivr.config import load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.web.app import create_app
from ivr.web.store import UserStore
from queue_manager.model import LiveModel

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-1"


class ModelSource:
    def __init__(self, model: LiveModel) -> None:
        self.model = model

    def subscribe(self, callback: Any) -> Any:
        return self.model.subscribe(callback)

    def snapshot(self) -> dict[str, Any]:
        return {"local": self.model.snapshot()}


async def _clients(url: str, count: int, events: int, ready: Any, results: Any) -> None:
    jar = CookieJar(unsafe=True)  # cookies for an IP address host
    async with ClientSession(cookie_jar=jar, connector=TCPConnector(limit=0)) as http:
        page = await (await http.get(url + "/login")).text()
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        await http.post(
            url + "/login",
            data={"username": "bench", "password": PASSWORD, "csrf_token": token},
        )
        sockets = [await http.ws_connect(url + "/ws/wallboard") for _ in range(count)]
        for ws in sockets:
            await ws.receive()  # the first, whole board
        latencies: list[float] = []
        seen: list[set[float]] = [set() for _ in sockets]

        async def read(index: int, ws: Any) -> None:
            while len(seen[index]) < events:
                message = await ws.receive()
                received = time.time()
                frame = json.loads(message.data)
                stamp = frame["board"]["event_at"]
                if stamp and stamp not in seen[index]:
                    seen[index].add(stamp)
                    latencies.append(received - stamp)

        ready.set()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(read(i, ws) for i, ws in enumerate(sockets))), 120
            )
        except TimeoutError:
            logger.warning("some frames never arrived")
        results.put(latencies)
        for ws in sockets:
            await ws.close()


def _client_process(url: str, count: int, events: int, ready: Any, results: Any) -> None:
    asyncio.run(_clients(url, count, events, ready, results))


async def run(clients: int, events: int, interval: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = yaml.safe_load((REPO / "examples" / "bac-tu-liem.yaml").read_text("utf-8"))
        data["database"]["url"] = f"sqlite:///{tmp}/bench.db"
        data["web"] = {"cookie_secure": False, "login_attempts": 100}
        path = Path(tmp) / "hotline.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config = load_config(path)
        upgrade(config.database_url)
        engine = make_engine(config.database_url)
        sessions = make_session_factory(engine)
        UserStore(sessions).add("bench", PASSWORD, "supervisor")
        model = LiveModel("local", queue_settings={q.id: (30, 0) for q in config.queues})
        model.resync([{"Event": "QueueParams", "Queue": q.id} for q in config.queues])
        app = create_app(config, sessions, secret=os.urandom(32), queue_manager=ModelSource(model))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        context = multiprocessing.get_context("spawn")
        ready, results = context.Event(), context.Queue()
        process = context.Process(
            target=_client_process,
            args=(f"http://127.0.0.1:{port}", clients, events, ready, results),
        )
        process.start()
        await asyncio.to_thread(ready.wait)  # the clients' sockets are open
        await asyncio.sleep(0.5)
        for n in range(events):
            # A caller joins, the next event they leave: a board of realistic size.
            uniqueid = f"1700000000.{n // 2}"
            if n % 2 == 0:
                model.apply({"Event": "QueueCallerJoin", "Queue": "operator",
                             "Uniqueid": uniqueid, "CallerIDNum": "0912000999",
                             "Position": "1"})  # fmt: skip
            else:
                model.apply({"Event": "QueueCallerLeave", "Queue": "operator",
                             "Uniqueid": uniqueid, "Position": "1"})  # fmt: skip
            await asyncio.sleep(interval)
        latencies = await asyncio.to_thread(results.get, True, 180)
        process.join(10)
        await runner.cleanup()
        engine.dispose()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "clients": clients,
        "events": events,
        "deliveries": len(ms),
        "expected": clients * events,
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 1),
        "max_ms": round(ms[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args.clients, args.events, args.interval_ms / 1000))
    print(json.dumps(result))
    goal = "met" if result["p99_ms"] < 200 else "NOT met"
    print(
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms to {args.clients} sockets "
        f"({result['deliveries']}/{result['expected']} frames); goal p99 < 200 ms {goal}"
    )


if __name__ == "__main__":
    main()
