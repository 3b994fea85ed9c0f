"""``hotline serve``: the long-running parts in one asyncio process.

The composition root: :func:`start_services` makes the process's one
:class:`~ivr.config.source.ConfigSource` (every part reads the config from it,
and the :class:`~ivr.config_applier.ConfigApplier` replaces it) and its one
:class:`~ivr.cases.service.CaseService` (the console and the FastAGI case desk
share it), and hands them to every part it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from ivr.agi.case_desk import CaseDesk
from ivr.agi.listener import AllowedClients, allowed_client_entries
from ivr.agi.server import HotlineAgi, start_agi_server
from ivr.call_log import CallLog
from ivr.cases.service import CaseService
from ivr.config.loader import ConfigError
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import utc_now
from ivr.fallback_calls import FallbackCallSpool
from ivr.privacy.schedule import RetentionSchedule
from ivr.prompt_setup import prompt_warnings, update_hotline_prompts
from ivr.reports.call_rollup import RollUpSchedule
from ivr.routing_table import call_spool_path
from ivr.transcription.processes import start_worker_processes, stop_worker_processes
from queue_manager.manager import QueueManager

if TYPE_CHECKING:  # the web and channel parts are imported only when started
    from aiohttp import web

    from ivr.cases.forwarding import ForwardingSchedule
    from ivr.intake.replies import ReplyDispatcher
    from ivr.notify.smtp_receiver import EmailReceiver

logger = logging.getLogger(__name__)

# The longest a stop takes: the drain (``--drain-seconds``), then this for the
# listener, then the call log's flush (CallLog.close: 30 s of retries while the
# database is away, plus 5 for its thread). deploy/systemd's TimeoutStopSec
# must stay above their sum (tests/test_systemd_units.py checks it).
AGI_CLOSE_SECONDS = 2.0
CALL_LOG_FLUSH_SECONDS = 35.0


class RunningServices:
    """What :func:`start_services` started; ``close`` stops it all."""

    retention: RetentionSchedule | None = None  # the retention job's schedule (web part)
    roll_up: RollUpSchedule | None = None  # the statistics roll-up's schedule (web part)
    # Reminders and escalations of forwarded cases (web part; ivr.cases.forwarding).
    forward_checks: ForwardingSchedule | None = None
    # Outbound messages of case threads (ivr.intake.replies.ReplyDispatcher, web part).
    replies: ReplyDispatcher | None = None
    # The SMTP receiver of channels.email (ivr.notify.smtp_receiver, web part).
    email_receiver: EmailReceiver | None = None
    config_source: ConfigSource | None = None  # the one config every part reads
    cases: CaseService | None = None  # the one case service (console and case desk)
    # Calls served by the fallback script while the server was down, read into the call log.
    call_spool: FallbackCallSpool | None = None
    # /metrics and /healthz alone (ivr/web/monitor.py): --monitor-port without the console.
    monitor: web.AppRunner | None = None

    def __init__(
        self,
        agi_server: asyncio.Server | None,
        call_log: CallLog | None,
        queue_manager: QueueManager | None = None,
        web_runner: web.AppRunner | None = None,
        applier: ConfigApplier | None = None,
        agi: HotlineAgi | None = None,
    ) -> None:
        self.agi = agi
        self.agi_server = agi_server
        self.call_log = call_log
        self.queue_manager = queue_manager
        self.web_runner = web_runner  # aiohttp AppRunner of the web console
        self.applier = applier  # applies config changes to all of the above

    @property
    def agi_port(self) -> int:
        assert self.agi_server is not None
        return int(self.agi_server.sockets[0].getsockname()[1])

    async def close(self, drain_seconds: float = 0.0, hurry: asyncio.Event | None = None) -> None:
        """Stop everything; the FastAGI part first stops taking calls and, for
        up to ``drain_seconds`` (or until ``hurry`` is set: a second SIGTERM),
        keeps serving the hangup handlers of calls up, then the call log writes
        all it holds before the process may exit."""
        if self.retention is not None:
            await self.retention.close()
        if self.roll_up is not None:
            await self.roll_up.close()
        if self.forward_checks is not None:
            await self.forward_checks.close()
        if self.email_receiver is not None:  # no new mail before the intake goes
            await self.email_receiver.close()
        if self.replies is not None:
            await self.replies.close()
        if self.agi is not None:
            await _drain_unless_hurried(self.agi, drain_seconds, hurry)
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        if self.monitor is not None:
            await self.monitor.cleanup()
        if self.queue_manager is not None:
            await self.queue_manager.close()
        if self.agi_server is not None:
            self.agi_server.close()
            # From Python 3.12 wait_closed() also waits for every open session:
            # a flow still running past the drain bound would hold the exit.
            # Its session is cut when the process ends and Asterisk's dialplan
            # falls back to the classic script (AGISTATUS FAILURE).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.agi_server.wait_closed(), AGI_CLOSE_SECONDS)
        if self.agi is not None:
            await self.agi.close()
        if self.call_spool is not None:
            await self.call_spool.close()
        if self.call_log is not None:
            pending = self.call_log.pending
            if pending:
                logger.info("writing %d queued call-log writes before exit", pending)
            await asyncio.to_thread(self.call_log.close)


async def _drain_unless_hurried(
    agi: HotlineAgi, drain_seconds: float, hurry: asyncio.Event | None
) -> None:
    """``agi.drain(drain_seconds)``, cut short when ``hurry`` is set: the calls
    still up are then closed by the fallback spool or the next start's sweep,
    as when the bound passes."""
    drain = asyncio.ensure_future(agi.drain(drain_seconds))
    if hurry is None:
        await drain
        return
    hurried = asyncio.ensure_future(hurry.wait())
    await asyncio.wait({drain, hurried}, return_when=asyncio.FIRST_COMPLETED)
    hurried.cancel()
    if not drain.done():
        logger.warning("second stop signal: not waiting for %d calls up", len(agi.live))
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


async def start_services(
    config: HotlineConfig,
    agi_port: int | None = None,
    migrate: bool = True,
    parts: frozenset[str] = frozenset({"agi"}),
    clock: Callable[[], datetime] = utc_now,
    monitor_port: int | None = None,
) -> RunningServices:
    """Start ``parts`` ("agi", "ami": the queue manager, "web": the console) against
    one database. Without the console, ``monitor_port`` serves /metrics and
    /healthz alone on ``web.bind`` (0: any free port)."""
    if migrate:
        await asyncio.to_thread(upgrade, config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    # The one config every part reads; a config applied from the console or on
    # SIGHUP replaces it here and every part started below sees it.
    source = ConfigSource(config)
    applier = ConfigApplier(source) if config.source is not None else None
    # One case service per process: the console and the FastAGI case desk share it.
    cases = CaseService(sessions, source) if parts & {"agi", "web"} else None
    queue_manager = None
    if "ami" in parts:
        queue_manager = QueueManager(source, sessions)
        await queue_manager.start()
    web_runner = None
    if "web" in parts and config.web.enabled:
        # Loaded only here: a FastAGI-only process (--only agi) starts without
        # the console's aiohttp app, templates and catalogue.
        from ivr.web.app import start_web

        web_runner = await start_web(
            source, sessions, queue_manager=queue_manager, applier=applier, case_service=cases
        )
    # Retention (audio, transcripts, numbers, case text) runs once per
    # deployment: in the process with the web part, model or no model.
    retention = RetentionSchedule(sessions, source) if "web" in parts else None
    if retention is not None:
        retention.start()
    # The statistics page's daily roll-up, likewise once per deployment.
    roll_up = RollUpSchedule(sessions) if "web" in parts else None
    if roll_up is not None:
        roll_up.start()
    # Reminders before a forwarded case's deadline and escalation after it, once
    # per deployment like retention: beside the console, whose wallboard shows them.
    forward_checks = None
    if web_runner is not None:
        from ivr.web.forwarding import start_due_checks

        forward_checks = start_due_checks(web_runner.app)
    # Acknowledgements and answers to citizens leave on their channel through one
    # dispatcher per deployment, beside the console; each channel registers its sender.
    replies = _start_replies(sessions, web_runner) if web_runner is not None else None
    # The email channel (issue 14): mail to the hotlines' addresses filed by the
    # web app's intake, answers by SMTP.
    email_receiver = None
    if web_runner is not None and replies is not None and config.channels.email.enabled:
        email_receiver = await _start_email_channel(source, web_runner, replies)
    # The Zalo channel (issue 14): replies through the OA message API. Always
    # registered: it reads channels.zalo at each send (an OA added while running
    # is used at once; a reply on a channel switched off is recorded as failed).
    if replies is not None:
        from ivr.contracts.channels import Channel
        from ivr.notify.zalo import ZaloReplySender

        replies.senders[Channel.ZALO] = ZaloReplySender(source)
        # An agent's reply to a case that came by SMS (or a web form with only a
        # number): through the configured SMS gateway.
        from ivr.notify.sms_replies import SmsReplySender

        replies.senders[Channel.SMS] = SmsReplySender(source)
    if "agi" not in parts:
        services = RunningServices(None, None, queue_manager, web_runner, applier)
        services.retention = retention
        services.roll_up = roll_up
        services.forward_checks = forward_checks
        services.replies = replies
        services.email_receiver = email_receiver
        services.config_source = source
        services.cases = cases
        await _feed_metrics(services, sessions, monitor_port)
        return services
    call_log = CallLog(sessions)
    case_desk = CaseDesk(sessions, source, writer=call_log.submit, cases=cases)
    agi = HotlineAgi(source, call_log, case_desk, clock=clock)
    agi.start_housekeeping(config.asterisk.agi.max_call_seconds)
    # Calls the fallback script served while this server was down (or whose
    # hangup it missed): recorded now and as they keep arriving.
    call_spool = FallbackCallSpool(
        call_spool_path(config), call_log, recordings=agi.spooled_recordings
    )
    call_spool.start()
    # Bound to loopback unless configured otherwise; whatever the bind, only the
    # Asterisk nodes may open a session (host names resolved once, here).
    bind = config.asterisk.agi.bind
    port = config.asterisk.agi.port if agi_port is None else agi_port
    entries = allowed_client_entries(config.asterisk, config.agi_node_hosts())
    allowed = await asyncio.to_thread(AllowedClients.from_entries, entries)
    server = await start_agi_server(agi, bind, port, allowed)
    logger.info("FastAGI server listening on %s:%s", bind, port)
    services = RunningServices(server, call_log, queue_manager, web_runner, applier, agi)
    services.call_spool = call_spool
    services.retention = retention
    services.replies = replies
    services.email_receiver = email_receiver
    services.roll_up = roll_up
    services.forward_checks = forward_checks
    services.config_source = source
    services.cases = cases
    await _feed_metrics(services, sessions, monitor_port)
    return services


async def _feed_metrics(
    services: RunningServices, sessions: sessionmaker[Session], monitor_port: int | None
) -> None:
    """/metrics and /healthz (ivr/web/metrics.py, health.py) read the parts
    this process started: on the console, or on a listener of their own
    (``monitor_port``) in a process without it (``--only agi``, ``--only ami``)."""
    if services.web_runner is None and (monitor_port is None or services.config_source is None):
        return
    from ivr.web.metrics import METRICS_SOURCES, MetricsSources

    if services.web_runner is not None:
        sources = services.web_runner.app[METRICS_SOURCES]
    else:
        assert services.config_source is not None
        sources = MetricsSources(services.config_source, sessions)
        sources.follow_queues(services.queue_manager)
    sources.agi, sources.agi_server = services.agi, services.agi_server
    sources.call_log = services.call_log
    workers = {
        "retention": services.retention, "roll_up": services.roll_up,
        "forward_checks": services.forward_checks, "replies": services.replies,
    }  # fmt: skip
    # Only the loops scheduled here (one set to run every 0 minutes is left to cron).
    sources.workers = {
        name: loop for name, loop in workers.items() if getattr(loop, "_task", None) is not None
    }
    if services.web_runner is None and monitor_port is not None:
        from ivr.web.monitor import start_monitor

        bind = sources.config.web.bind
        services.monitor = await start_monitor(sources, bind, monitor_port)


def _start_replies(sessions: sessionmaker[Session], web_runner: web.AppRunner) -> ReplyDispatcher:
    """The reply dispatcher, woken by the web app's intake when it queues a row."""
    from ivr.intake.replies import ReplyDispatcher
    from ivr.web.intake_state import INTAKE

    replies = ReplyDispatcher(sessions, {})
    intake = web_runner.app.get(INTAKE)
    if intake is not None and hasattr(intake, "on_outbound"):
        intake.on_outbound = replies.wake
    replies.start()
    return replies


async def _start_email_channel(
    source: ConfigSource, web_runner: web.AppRunner, replies: ReplyDispatcher
) -> EmailReceiver:
    """The SMTP receiver on the web app's intake; answers through the email
    sender of ``email:`` (none while it is off: they wait on their rows)."""
    from ivr.contracts.channels import Channel
    from ivr.notify.email import sender_from_config
    from ivr.notify.email_replies import EmailReplySender
    from ivr.notify.smtp_receiver import EmailReceiver
    from ivr.web.intake_state import INTAKE

    replies.senders[Channel.EMAIL] = EmailReplySender(source, sender_from_config(source.current))
    receiver = EmailReceiver(source, web_runner.app[INTAKE])
    await receiver.start()
    return receiver


async def reload_config(services: RunningServices) -> None:
    """SIGHUP: re-read the config file (edited by hand) and apply it; a file
    with errors is reported and changes nothing."""
    if services.applier is None:
        return
    try:
        applied = await services.applier.reload_file()
    except ConfigError as exc:
        logger.error("config not applied, it has errors:\n%s", exc)
        return
    for warning in applied.warnings:
        logger.warning("config applied: %s", warning)
    if applied.restart_needed:
        logger.warning("takes effect after a restart: %s", ", ".join(applied.restart_needed))
    logger.info(
        "config applied (%d Asterisk modules reloaded, %d prompts built)",
        len(applied.reloaded), len(applied.prompts),
    )  # fmt: skip


async def build_prompts_at_start(config: HotlineConfig) -> None:
    """What ``hotline prompts build`` does, before the first call: a config edited
    while the service was stopped is heard as it is now. Only changed prompts are
    synthesized (nothing when they were built); a failure is logged, the calls
    are still taken."""
    report = await asyncio.to_thread(update_hotline_prompts, config)
    for warning in prompt_warnings(config, report):
        logger.warning("%s", warning)


async def serve(
    config: HotlineConfig,
    stop: asyncio.Event,
    only: str | None = None,
    drain_seconds: float = 30.0,
    hurry: asyncio.Event | None = None,
    monitor_port: int | None = None,
) -> None:
    """Run until ``stop`` is set (SIGTERM, SIGINT), then stop taking calls, let
    the calls up end for up to ``drain_seconds`` (less if ``hurry`` is set: a
    second signal) and flush the call log (up to CALL_LOG_FLUSH_SECONDS)."""
    if only in (None, "agi"):  # the process that plays them
        await build_prompts_at_start(config)
    services = await start_services(
        config,
        parts=frozenset({only}) if only else frozenset({"agi", "ami", "web"}),
        monitor_port=monitor_port,
    )
    # Transcription runs in separate processes (vosk holds a core per worker).
    workers = await start_worker_processes(
        config, config.transcription.serve_workers if only is None else 0
    )
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    def on_hangup_signal() -> None:
        task = loop.create_task(reload_config(services))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup_signal)
    try:
        await stop.wait()
    finally:
        logger.info("stopping: no new calls; flushing the call log")
        await stop_worker_processes(workers)
        await services.close(drain_seconds, hurry)
