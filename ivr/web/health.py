"""``/healthz``: is this process able to do its work now (issue 15)?

Checks, each cheap: the database answers ``SELECT 1`` within
:data:`DATABASE_SECONDS`; every AMI link of the queue manager (when it runs
here) is logged in; the FastAGI server (when it runs here) is listening and
not draining; the background loops started beside the console (retention,
roll-up, forwarding checks, reply dispatcher) have not ended. All pass: 200
``{"status": "ok", "checks": {...}}``; one fails: 503 with the same shape,
``"status": "failing"`` and a ``reason`` on each failing check.

Unauthenticated (load balancers and systemd probes have no session), so the
answer names checks and node ids only: no host, address, URL or exception
text (a driver's message can carry the database URL), just the error's class.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ivr.web.metrics import METRICS_SOURCES, MetricsSources
from ivr.web.metrics_store import select_one
from ivr.web.state import PUBLIC, Route

logger = logging.getLogger(__name__)

DATABASE_SECONDS = 2.0


class DatabaseProbe:
    """``SELECT 1`` on a thread of its own, at most one at a time: a stalled
    database holds that one thread, and later checks fail at once instead of
    piling threads up behind it."""

    def __init__(self, timeout: float = DATABASE_SECONDS) -> None:
        self.timeout = timeout
        self._running: asyncio.Future[None] | None = None

    async def check(self, sources: MetricsSources) -> str | None:
        """None when the database answered, else the reason."""
        if self._running is not None and not self._running.done():
            return "no answer (the previous check is still waiting)"
        self._running = asyncio.ensure_future(sources.db.run(select_one, sources.sessions))
        try:
            await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:
            logger.warning("health: database check failed: %s", exc)
            return f"unreachable ({type(exc).__name__})"
        return None


def worker_problem(worker: Any) -> str | None:
    """Why a background loop is not running (None: it runs). The loops keep
    their task in ``_task`` (ivr.privacy.schedule, ivr.reports.call_rollup,
    ivr.cases.forwarding, ivr.intake.replies)."""
    task = getattr(worker, "_task", None)
    if task is None:
        return "not running"
    if task.done():
        if task.cancelled():
            return "stopped"
        error = task.exception()
        return f"died ({type(error).__name__})" if error is not None else "ended"
    return None


async def checks(sources: MetricsSources, probe: DatabaseProbe) -> dict[str, str | None]:
    """Check name → None (passing) or the reason it fails."""
    found: dict[str, str | None] = {"database": await probe.check(sources)}
    manager = sources.queue_manager
    if manager is not None:
        for node, link in getattr(manager, "links", {}).items():
            found[f"ami:{node}"] = None if link.connected.is_set() else "not connected"
    if sources.agi_server is not None:
        if not sources.agi_server.is_serving():
            found["fastagi"] = "not listening"
        elif sources.agi is not None and sources.agi.stopping:
            found["fastagi"] = "draining (stopping)"
        else:
            found["fastagi"] = None
    for name, worker in sources.workers.items():
        found[f"worker:{name}"] = worker_problem(worker)
    return found


HEALTH_PROBE = web.AppKey("health_probe", DatabaseProbe)


async def health(request: web.Request) -> web.Response:
    probe = request.app.get(HEALTH_PROBE)
    if probe is None:  # an app assembled without it (tests of other pages)
        probe = DatabaseProbe()
    found = await checks(request.app[METRICS_SOURCES], probe)
    failing = any(reason is not None for reason in found.values())
    body = {
        "status": "failing" if failing else "ok",
        "checks": {
            name: {"ok": True} if reason is None else {"ok": False, "reason": reason}
            for name, reason in found.items()
        },
    }
    return web.json_response(body, status=503 if failing else 200)


ROUTES = [Route("GET", "/healthz", health, PUBLIC, "health")]
