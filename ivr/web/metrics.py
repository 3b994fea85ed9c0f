"""``/metrics``: the process's state in Prometheus's text format (issue 15).

Nothing here keeps global counters. At each scrape a fresh registry holds one
:class:`ScrapeCollector`, which reads what the running parts already know:
the queue manager's live models (callers waiting, members by state), the AMI
links (up, logins), the FastAGI server's own counters (requests and latency by
script, :class:`ivr.agi.server.HotlineAgi`), the call-log writer's backlog, and
the job tables (transcription, SMS, outbound case messages) and the email
outbox file, counted off the event loop just before. The only thing counted
here is what the live model forgets: each queue call's outcome and its wait
and talk time (:class:`QueueOutcomes`, subscribed to the queue manager).

Labels are node, hotline and queue, plus script, outcome or state where the
metric is about them; never a caller's number or an agent's name (privacy,
and a bounded number of series). docs/metrics.md says what each one means.

Who may read it: with ``web.metrics_token_env`` set in the environment, any
client sending ``Authorization: Bearer <token>``; without it, direct loopback
requests only (a request carrying X-Forwarded-For came through a proxy and is
refused, since the proxy's loopback address says nothing about the client).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.db.executor import DbExecutor
from ivr.web.metrics_store import count_backlogs
from ivr.web.state import PUBLIC, Route

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Wait and talk time buckets (seconds); the configured queues' service levels
# are added, so "answered within the target" is one bucket read.
WAIT_BUCKETS = (10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TALK_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
BACKLOG_SECONDS = 2.0  # the job-table counts of one scrape; past it they are left out
ENDED_REMEMBERED = 10_000  # uniqueids whose outcome was counted (abandon, then leave)
LEFT_GRACE_SECONDS = 2.0  # an answer follows its caller's leave by milliseconds
_UNKNOWN = "unknown"  # a queue no configured hotline owns (added in Asterisk by hand)


def wait_buckets(config: HotlineConfig) -> tuple[float, ...]:
    """:data:`WAIT_BUCKETS` with every queue's service level among them."""
    levels = {float(q.service_level_seconds) for q in config.queues}
    return tuple(sorted(set(WAIT_BUCKETS) | levels))


class QueueOutcomes:
    """Each queue call's outcome (answered, abandoned, left: timed out or
    pressed out, lost: gone at a resync) and its wait and talk time, counted
    from the live model's changes.

    Asterisk's order decides how: QueueCallerAbandon comes before the same
    caller's QueueCallerLeave (the abandon counts; the leave is ignored), and an
    answered caller's QueueCallerLeave comes a few milliseconds *before* its
    AgentConnect. So a leave is only a candidate: it counts as "left" when no
    answer for that caller came within :data:`LEFT_GRACE_SECONDS` (settled at
    the next change or scrape).
    """

    def __init__(
        self, config_source: ConfigSource, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config_source = config_source
        self.clock = clock
        self.calls = Counter(
            "hotline_queue_calls", "Queue calls ended, by outcome",
            ["node", "hotline", "queue", "outcome"], registry=None,
        )  # fmt: skip
        self.wait = Histogram(
            "hotline_queue_wait_seconds", "Time callers waited in the queue, by outcome",
            ["node", "hotline", "queue", "outcome"], registry=None,
            buckets=wait_buckets(config_source.current),
        )  # fmt: skip
        self.talk = Histogram(
            "hotline_queue_talk_seconds", "Talk time of answered queue calls",
            ["node", "hotline", "queue"], registry=None, buckets=TALK_BUCKETS,
        )  # fmt: skip
        self._ended: OrderedDict[tuple[str, str], None] = OrderedDict()
        # (node, uniqueid) → (labels, waited, received at) of leaves not settled yet.
        self._leaving: dict[tuple[str, str], tuple[tuple[str, str, str], float, float]] = {}

    def follow(self, queue_manager: Any) -> None:
        """Subscribe to every node of ``queue_manager`` (for the process's life)."""
        queue_manager.subscribe(self.record)

    def _labels(self, node: str, queue: str) -> tuple[str, str, str]:
        hotline = self.config_source.current.queue_owner(queue) or _UNKNOWN
        return node, hotline, queue

    def _first_end(self, node: str, uniqueid: str) -> bool:
        key = (node, uniqueid)
        if key in self._ended:
            return False
        self._ended[key] = None
        if len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        return True

    def _count(self, labels: tuple[str, str, str], outcome: str, waited: float | None) -> None:
        self.calls.labels(*labels, outcome).inc()
        if waited is not None:
            self.wait.labels(*labels, outcome).observe(waited)

    def settle(self) -> None:
        """Leaves older than the grace with no answer after them: "left"."""
        due = self.clock() - LEFT_GRACE_SECONDS
        for key, (labels, waited, received) in list(self._leaving.items()):
            if received <= due:
                del self._leaving[key]
                self._count(labels, "left", waited)

    def record(self, change: Any) -> None:
        """One :class:`queue_manager.model.Change` (read by its kind's value,
        so this module needs nothing from the queue manager's package)."""
        self.settle()
        kind = str(change.kind)
        data: Mapping[str, Any] = change.data
        if kind == "call_completed":
            self.talk.labels(*self._labels(change.node, change.queue)).observe(
                float(data.get("talked", 0))
            )
            return
        outcome = {
            "call_answered": "answered",
            "caller_abandoned": "abandoned",
            "caller_left": "left",
            "caller_lost": "lost",
        }.get(kind)
        if outcome is None:
            return
        key = (change.node, str(data.get("uniqueid", "")))
        waited = float(data["waited"]) if "waited" in data else None
        if outcome == "left":
            if key not in self._ended and key not in self._leaving:
                labels = self._labels(change.node, change.queue)
                self._leaving[key] = (labels, waited or 0.0, self.clock())
            return
        self._leaving.pop(key, None)  # an answer just after its leave: answered
        if self._first_end(*key):
            self._count(self._labels(change.node, change.queue), outcome, waited)


@dataclass
class MetricsSources:
    """What ``/metrics`` and ``/healthz`` read in this process. The console
    makes it; :func:`ivr.service.start_services` adds the parts it started
    (FastAGI, the call log, the background workers) once they run."""

    config_source: ConfigSource
    sessions: sessionmaker[Session]
    queue_manager: Any | None = None
    agi: Any | None = None  # ivr.agi.server.HotlineAgi
    agi_server: asyncio.Server | None = None
    call_log: Any | None = None  # ivr.call_log.CallLog
    # Background loops by name (retention, roll-up, forward checks, replies):
    # each holds its asyncio task in ``_task`` while it runs.
    workers: dict[str, Any] = field(default_factory=dict)
    outcomes: QueueOutcomes | None = None
    # One thread for the job-table counts, so a stalled database holds one
    # thread however often Prometheus scrapes.
    db: DbExecutor = field(default_factory=lambda: DbExecutor("metrics-db", 1))
    _counting: asyncio.Future[Any] | None = None

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    def follow_queues(self, queue_manager: Any | None) -> None:
        self.queue_manager = queue_manager
        if queue_manager is not None and self.outcomes is None:
            self.outcomes = QueueOutcomes(self.config_source)
            self.outcomes.follow(queue_manager)

    async def backlogs(self) -> dict[str, int] | None:
        """The job tables' backlogs, or None when the database did not answer
        within :data:`BACKLOG_SECONDS` (or is still busy with the last count)."""
        if self._counting is not None and not self._counting.done():
            return None
        self._counting = asyncio.ensure_future(self.db.run(count_backlogs, self.sessions))
        try:
            return await asyncio.wait_for(asyncio.shield(self._counting), BACKLOG_SECONDS)
        except TimeoutError:
            logger.warning("metrics: the database did not count the backlogs in time")
            return None
        except Exception as exc:
            logger.warning("metrics: backlogs not counted: %s", exc)
            return None


def email_outbox_size(path: Path) -> int:
    """Mail waiting in the email outbox (one JSON line each; no lock needed to
    count lines, and a line being appended is counted at the next scrape)."""
    try:
        with path.open("rb") as lines:
            return sum(1 for line in lines if line.strip())
    except FileNotFoundError:
        return 0


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class ScrapeCollector(Collector):
    """One scrape's metrics, read from ``sources`` (and the ``backlogs``
    counted just before, None when the database did not answer)."""

    MEMBER_STATES = ("available", "in_call", "paused", "unavailable")

    def __init__(
        self, sources: MetricsSources, backlogs: dict[str, int] | None, email_outbox: int | None
    ) -> None:
        self.sources = sources
        self.backlogs = backlogs
        self.email_outbox = email_outbox

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._agi()
        yield from self._backlogs()

    @staticmethod
    def member_state(state: str) -> str:
        """The wallboard's agent states folded to four: ringing and wrap-up
        count as in a call (the agent cannot take another)."""
        if state == "idle":
            return "available"
        if state in ("talking", "ringing", "wrapup"):
            return "in_call"
        if state == "paused":
            return "paused"
        return "unavailable"

    def _queues(self) -> Iterator[Metric]:
        manager = self.sources.queue_manager
        if manager is None:
            return
        config = self.sources.config
        waiting = _gauge("hotline_queue_callers_waiting", "Callers waiting in the queue now",
                         ["node", "hotline", "queue"])  # fmt: skip
        oldest = _gauge("hotline_queue_oldest_wait_seconds",
                        "How long the longest-waiting caller has waited (0: nobody waits)",
                        ["node", "hotline", "queue"])  # fmt: skip
        members = _gauge("hotline_queue_members", "Queue members by state",
                         ["node", "hotline", "queue", "state"])  # fmt: skip
        link_up = _gauge("hotline_ami_link_up", "1 when the AMI link to the node is logged in",
                         ["node"])  # fmt: skip
        reconnects = CounterMetricFamily(
            "hotline_ami_reconnects", "AMI logins after the first, per node", labels=["node"]
        )
        for model in list(getattr(manager, "models", {}).values()):
            now = model.clock()  # the model's own time, the one its events are on
            for name, queue in list(model.queues.items()):
                labels = [model.node, config.queue_owner(name) or _UNKNOWN, name]
                callers = list(queue.callers.values())
                waiting.add_metric(labels, len(callers))
                oldest.add_metric(
                    labels, max((now - c.joined_at for c in callers), default=0.0)
                )  # fmt: skip
                counts = dict.fromkeys(self.MEMBER_STATES, 0)
                for member in list(queue.members.values()):
                    counts[self.member_state(str(member.state(now)))] += 1
                for state, count in counts.items():
                    members.add_metric([*labels, state], count)
        for node, link in list(getattr(manager, "links", {}).items()):
            link_up.add_metric([node], 1 if link.connected.is_set() else 0)
            reconnects.add_metric([node], max(int(getattr(link, "logins", 0)) - 1, 0))
        yield from (waiting, oldest, members, link_up, reconnects)
        outcomes = self.sources.outcomes
        if outcomes is not None:
            outcomes.settle()
            for metric in (outcomes.calls, outcomes.wait, outcomes.talk):
                yield from metric.collect()

    def _agi(self) -> Iterator[Metric]:
        agi = self.sources.agi
        if agi is not None:
            yield from agi.requests.collect()
            yield from agi.latency.collect()
            live = _gauge("hotline_agi_calls_in_flow", "Calls whose FastAGI entry was served "
                          "and whose hangup has not come yet")  # fmt: skip
            live.add_metric([], len(agi.live))
            yield live
        call_log = self.sources.call_log
        if call_log is not None:
            backlog = _gauge("hotline_call_log_backlog",
                             "Call-log writes waiting for the database")  # fmt: skip
            backlog.add_metric([], call_log.pending)
            yield backlog

    def _backlogs(self) -> Iterator[Metric]:
        up = _gauge("hotline_metrics_database_up",
                    "1 when the database counted this scrape's backlogs in time")  # fmt: skip
        up.add_metric([], 0 if self.backlogs is None else 1)
        yield up
        if self.backlogs is not None:
            jobs = _gauge("hotline_transcription_jobs", "Transcription jobs not finished",
                          ["status"])  # fmt: skip
            jobs.add_metric(["queued"], self.backlogs["transcription_queued"])
            jobs.add_metric(["running"], self.backlogs["transcription_running"])
            yield jobs
            pending = _gauge("hotline_notifications_pending",
                             "Messages to citizens waiting to be sent, by outbox",
                             ["outbox"])  # fmt: skip
            pending.add_metric(["sms_outbox"], self.backlogs["sms_pending"])
            pending.add_metric(["case_messages"], self.backlogs["case_messages_pending"])
            if self.email_outbox is not None:
                pending.add_metric(["email_outbox"], self.email_outbox)
            yield pending


# --- who may read ------------------------------------------------------------------


def metrics_token(config: HotlineConfig) -> str | None:
    """The scrapers' bearer token from the environment (None: loopback only)."""
    return os.environ.get(config.web.metrics_token_env) or None


def may_read(request: web.Request, config: HotlineConfig) -> int | None:
    """None when ``request`` may read /metrics, else the status to answer
    (401: a token is wanted and missing or wrong; 403: not from loopback)."""
    token = metrics_token(config)
    if token is not None:
        sent = request.headers.get("Authorization", "")
        scheme, _, given = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), token.encode("utf-8")
        ):
            return None
        return 401
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return 403
    try:
        return None if ipaddress.ip_address(request.remote or "").is_loopback else 403
    except ValueError:
        return 403


METRICS_SOURCES = web.AppKey("metrics_sources", MetricsSources)


async def render(sources: MetricsSources) -> bytes:
    """One scrape: count the backlogs off the loop, then read everything else
    on it (the live models change on the loop; reading them here is safe)."""
    config = sources.config
    backlogs = await sources.backlogs()
    outbox: int | None = None
    if config.email.enabled:
        path = config.resolve_path(config.email.outbox_path)
        outbox = await asyncio.to_thread(email_outbox_size, path)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(sources, backlogs, outbox))
    return generate_latest(registry)


async def metrics(request: web.Request) -> web.Response:
    sources = request.app[METRICS_SOURCES]
    refused = may_read(request, sources.config)
    if refused == 401:
        return web.json_response(
            {"error": "a bearer token is required"}, status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )  # fmt: skip
    if refused is not None:
        return web.json_response({"error": "metrics are served to loopback only"}, status=403)
    body = await render(sources)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# PUBLIC for the console's session check: the scraper has no session; who may
# read is decided by :func:`may_read` above.
ROUTES = [Route("GET", "/metrics", metrics, PUBLIC, "metrics")]


def install_metrics(
    app: web.Application,
    config_source: ConfigSource,
    sessions: sessionmaker[Session],
    queue_manager: Any | None,
) -> MetricsSources:
    """The sources /metrics and /healthz read, on ``app``; the outcomes of
    the queue manager's calls counted from now on."""
    sources = MetricsSources(config_source, sessions)
    sources.follow_queues(queue_manager)
    app[METRICS_SOURCES] = sources

    async def close(_app: web.Application) -> None:
        sources.db.close(wait=False, cancel_pending=True)

    app.on_cleanup.append(close)
    return sources
