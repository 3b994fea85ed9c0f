"""``/metrics`` and ``/healthz`` alone, for a process without the console.

``hotline serve --only agi`` (several of them serve a cluster's nodes) and
``--only ami`` start no console, yet their FastAGI counters, AMI links and
health are what an operator most needs to watch. Given ``--monitor-port``,
such a process serves these two routes, and nothing else, on ``web.bind``:
the same handlers as the console's (ivr/web/metrics.py, ivr/web/health.py),
so the same access rule (loopback or bearer token) holds for /metrics.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.web.health import HEALTH_PROBE, DatabaseProbe, health
from ivr.web.metrics import METRICS_SOURCES, MetricsSources, metrics

logger = logging.getLogger(__name__)


async def start_monitor(sources: MetricsSources, host: str, port: int) -> web.AppRunner:
    """Serve /metrics and /healthz of ``sources`` on ``host:port`` (0: any
    free port); ``runner.cleanup()`` stops it."""
    app = web.Application()
    app[METRICS_SOURCES] = sources
    app[HEALTH_PROBE] = DatabaseProbe()
    app.router.add_get("/metrics", metrics, name="metrics")
    app.router.add_get("/healthz", health, name="health")

    async def close(_app: web.Application) -> None:
        sources.db.close(wait=False, cancel_pending=True)

    app.on_cleanup.append(close)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    logger.info("metrics and health on http://%s:%s/", host, port)
    return runner
