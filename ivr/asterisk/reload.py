"""Put a changed config into the running Asterisk without dropping calls.

The rendered files are written into ``asterisk.config_dir`` (each file
replaced atomically) and the modules that read them are reloaded over AMI with
the reload-only user (``asterisk.ami.reload_username``). A module reload keeps
the channels that are up: bridged calls, callers in queues and dynamic queue
members all survive it; only new calls see the change.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ivr.asterisk.ami_gate import GatedManager
from ivr.asterisk.ami_protocol import AmiProtocol
from ivr.asterisk.render import RenderOptions, render_all, write_rendered
from ivr.config.schema import AmiNode, HotlineConfig

logger = logging.getLogger(__name__)

# The modules that read our rendered files, in an order where each finds what
# it refers to (endpoints before the dialplan that dials them, queues last).
RELOAD_MODULES = (
    "res_rtp_asterisk.so",  # rtp.conf
    "res_pjsip.so",  # pjsip.conf
    "res_musiconhold.so",  # musiconhold.conf
    "pbx_config.so",  # extensions.conf
    "app_queue.so",  # queues.conf
)


class _OneShotManager(GatedManager):
    """panoramisk's Manager that does not reconnect when we close it."""

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None


class ReloadError(RuntimeError):
    """Asterisk refused or could not be reached; the message says which node."""


def write_config_dir(config: HotlineConfig, out_dir: Path) -> list[Path]:
    """Render every file into ``out_dir``; each is swapped in whole, so an
    Asterisk reloading at that moment never reads half a file. Files whose text
    would not change are not touched; the changed ones are returned."""
    files = render_all(config, RenderOptions.from_config(config))
    return write_rendered(files, out_dir, only_changed=True)  # secrets: mode 0600


async def reload_modules(
    config: HotlineConfig, modules: tuple[str, ...] = RELOAD_MODULES, timeout: float = 10.0
) -> list[str]:
    """Reload ``modules`` on every node; returns ``node: module`` for each done.
    Raises :class:`ReloadError` when a node refuses."""
    ami = config.asterisk.ami
    if ami.reload_secret is None:
        raise ReloadError("asterisk.ami.reload_secret is not set: Asterisk cannot be reloaded")
    done = []
    for node in config.ami_nodes():  # cluster.nodes when set
        manager = await _login(node, ami.reload_username, ami.reload_secret, timeout)
        try:
            for module in modules:
                answer = await asyncio.wait_for(
                    manager.send_action({"Action": "Reload", "Module": module}), timeout
                )
                if not answer.success:
                    raise ReloadError(
                        f"node {node.id}: reloading {module} failed: {answer.get('Message', '')}"
                    )
                done.append(f"{node.id}: {module}")
        finally:
            manager.close()
    logger.info("reloaded %s", ", ".join(done))
    return done


async def _login(node: AmiNode, username: str, secret: str, timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    manager = _OneShotManager(
        host=node.host,
        port=node.port,
        username=username,
        secret=secret,
        ping_delay=10**6,
        loop=loop,
        forgetable_actions=(),
    )
    try:
        connection = await asyncio.wait_for(
            loop.create_connection(AmiProtocol, node.host, node.port), timeout
        )
    except OSError as exc:
        raise ReloadError(f"node {node.id}: AMI at {node.host}:{node.port}: {exc}") from exc
    made: asyncio.Future[Any] = loop.create_future()
    made.set_result(connection)
    manager.connection_made(made)
    login = await asyncio.wait_for(manager.authenticated_future, timeout)
    if not login.success:
        manager.close()
        raise ReloadError(f"node {node.id}: AMI login refused: {login.get('Message', '')}")
    return manager
