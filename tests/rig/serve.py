"""A running ``hotline serve`` for end-to-end tests of what the public reaches
over HTTP (the web form, webhooks, Open311): the real command in its own
process, on a free loopback port, with a temporary database.

    path = write_serve_config(tmp_path)                 # or with tweak=...
    async with running_serve(path) as served:
        async with aiohttp.ClientSession() as http:
            await http.get(served.base_url + "/report")
        served.log                                      # its output so far

Facts this relies on:
- ``hotline serve`` migrates the database before it listens, so the port
  answering means the schema is there;
- the config's relative paths resolve against the config file's folder: the
  config is written in ``<base>/etc/`` so the example's ``../var``,
  ``../recordings`` and ``../prompts`` all land inside ``<base>``;
- SIGTERM stops it cleanly (exit status 0); the web part has no calls to drain.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.sim.polling import wait_for
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE, REPO, free_tcp_port

START_SECONDS = 60.0  # migrations on a fresh database included
STOP_SECONDS = 30.0


def write_serve_config(
    base: Path,
    *,
    web_port: int | None = None,
    database_url: str | None = None,
    tweak: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """The Bắc Từ Liêm example made to serve from ``base``: the console on a free
    loopback port, a fresh database (SQLite in ``base``, or the rig's
    PostgreSQL with HOTLINE_TEST_DB=postgresql), texts to a file, every folder
    inside ``base``. ``tweak`` edits the parsed YAML before it is written
    (enable a channel, shorten a budget)."""
    data = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    etc = base / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (base / "var").mkdir(exist_ok=True)
    data.setdefault("database", {})["url"] = database_url or fresh_database_url(
        base / "var", "serve.db"
    )
    data["web"] = {
        **(data.get("web") or {}),
        "bind": "127.0.0.1",
        "port": web_port or free_tcp_port(),
        "cookie_secure": False,  # plain HTTP on loopback
        "secret_file": str(base / "var" / "web-secret"),
    }
    data["sms"] = {"kind": "file", "path": str(base / "var" / "sms-outbox.jsonl")}
    # Loopback ports of our own for the parts a test may also start (--only agi/ami).
    data["asterisk"]["agi"]["port"] = free_tcp_port()
    data["asterisk"]["ami"]["port"] = free_tcp_port()
    if tweak is not None:
        tweak(data)
    path = etc / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Served:
    """One running ``hotline serve``."""

    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT, no trailing slash
    config_path: Path
    log_path: Path

    @property
    def log(self) -> str:
        """Its output (stdout and stderr) so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _web_port(config_path: Path) -> int:
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    port = int((data.get("web") or {}).get("port", 8080))
    if port == 0:
        raise ValueError(f"{config_path}: web.port 0 cannot be awaited; write a fixed free port")
    return port


async def port_answers(port: int) -> bool:
    """Whether something accepts a TCP connection on the loopback ``port``."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _answers(process: subprocess.Popen[bytes], port: int) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"hotline serve exited ({process.returncode})")
    return await port_answers(port)


@asynccontextmanager
async def running_serve(
    config_path: Path,
    only: str | None = "web",
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> AsyncIterator[Served]:
    """``python -m ivr.cli --config FILE serve --only ONLY`` until the block
    ends; waits until the web port answers (so ``only`` must include the web
    part: "web" or None for everything). Stopped with SIGTERM, killed if it
    does not exit; a failed start raises with its log."""
    log_path = config_path.parent / f"serve-{os.getpid()}-{free_tcp_port()}.log"
    command = [sys.executable, "-m", "ivr.cli", "--config", str(config_path), "serve"]
    if only is not None:
        command += ["--only", only]
    command += list(extra_args)
    port = _web_port(config_path)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    served = Served(process, f"http://127.0.0.1:{port}", config_path, log_path)
    try:
        try:
            await wait_for(
                lambda: _answers(process, port), START_SECONDS, "hotline serve", interval=0.1
            )
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"hotline serve did not start ({exc}):\n{served.log}") from None
        yield served
    finally:
        await _stop(process)


async def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait)
