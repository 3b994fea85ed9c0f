"""The FastAGI server: one short AGI session per decision, never held for a call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from panoramisk import fast_agi
from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, select

from ivr.agi.case_desk import CaseDesk
from ivr.agi.case_directory import CaseRecords
from ivr.agi.channel import AgiChannel, CallerHungUp
from ivr.agi.executor import PromptFiles, execute_flow
from ivr.agi.listener import AllowedClients, FastAgiApplication
from ivr.call_log import CallEnd, CallLog, CallStart
from ivr.config.schema import Hotline, HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts import agi_scripts as scripts
from ivr.contracts import channel_variables as v
from ivr.contracts.statuses import RouteKind
from ivr.db.executor import DbExecutor
from ivr.db.models import Call, utc_now
from ivr.flow.call_flow import HotlineFlow, survey_flow
from ivr.flow.spoken_numbers import day_month_prompts, digit_prompts
from ivr.flow.steps import Route
from ivr.phone import normalise_caller
from ivr.queue_records import callbacks as callback_requests

logger = logging.getLogger(__name__)

# Bounds the IVR's own database work (case lookups, call-back requests): a
# stalled database can hold these threads, never the event loop nor the
# console's executor (a DbExecutor instance of its own).
IVR_DB_THREADS = 4
CASE_LOOKUP_SECONDS = 4.0  # then the caller hears "not found" and may reach an operator
MAX_CALL_SECONDS = 2 * 3600  # a record "in progress" longer than this is a crash's leftover
STALE_SWEEP_SECONDS = 600.0
ENDED_CHECK_SECONDS = 1.0  # a draining server asks this often which calls ended elsewhere


def _ended(connection: Connection, uniqueids: list[str]) -> set[str]:
    """Those of ``uniqueids`` whose record is closed (by any process)."""
    ended: set[str] = set()
    for at in range(0, len(uniqueids), 500):  # bounded IN lists on either database
        chunk = uniqueids[at : at + 500]
        ended.update(
            connection.scalars(
                select(Call.uniqueid).where(Call.uniqueid.in_(chunk), Call.ended_at.is_not(None))
            )
        )
    return ended


# FastAGI latency buckets (seconds): an entry session spans the menu, so its
# tail is long; call-ended and survey sessions are tens of milliseconds.
AGI_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class HotlineAgi:
    """Handlers for the scripts the dialplan calls; all logic lives in ivr.flow."""

    def __init__(
        self,
        config: HotlineConfig | ConfigSource,
        call_log: CallLog,
        case_desk: CaseDesk | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        # The process's config source: each call reads the config current when
        # it arrives; calls in their flow finish on the config they started with.
        self.config_source = ConfigSource.of(config)
        self.clock = clock  # decides opening hours; injectable for tests
        self.call_log = call_log
        self.case_desk = case_desk  # recordings, transcription jobs, voicemail cases
        self._db = DbExecutor("ivr-db", IVR_DB_THREADS)
        self._case_records = (
            CaseRecords(case_desk.cases, self._db, CASE_LOOKUP_SECONDS)
            if case_desk is not None
            else None
        )
        # The flow and the prompt folders built from one config, rebuilt when a
        # call first sees a newer one (see _current).
        self._derived_for: HotlineConfig | None = None
        self.flow: HotlineFlow
        self._prompts: dict[str, PromptFiles] = {}
        self._current()
        self._pending: set[asyncio.Future[Any]] = set()
        # Calls whose entry we served and whose hangup handler has not come yet
        # (uniqueid → monotonic time): a stopping server waits for them, and the
        # stale-record sweep leaves them alone.
        self.live: dict[str, float] = {}
        self.stopping = False  # set by drain(): new calls go to the dialplan's fallback
        self._housekeeping: asyncio.Task[None] | None = None
        # Sessions served and their duration by script, read by /metrics at scrape
        # time (ivr/web/metrics.py). Owned by this instance, in no global registry.
        self.requests = Counter(
            "hotline_agi_requests", "FastAGI sessions served, by script and outcome",
            ["script", "outcome"], registry=None,
        )  # fmt: skip
        self.latency = Histogram(
            "hotline_agi_request_seconds", "FastAGI session duration, by script",
            ["script"], registry=None, buckets=AGI_LATENCY_BUCKETS,
        )  # fmt: skip

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    def _current(self) -> HotlineConfig:
        """The current config, with the flow and prompt folders made from it
        (rebuilt here, in one step with no await, so a handler never pairs a new
        config with the old prompts)."""
        config = self.config_source.current
        if config is not self._derived_for:
            prompts_root = config.resolve_path(config.paths.prompts)
            self._prompts = {
                h.id: PromptFiles(prompts_root, h.id, h.language) for h in config.hotlines
            }
            self.flow = HotlineFlow(config)
            self._derived_for = config
        return config

    def _prompts_for(self, hotline: Hotline, channel: AgiChannel) -> PromptFiles:
        """The hotline's prompts in the channel's language (``agi_language``: English
        once the caller chose it in the greeting; the hotline's own otherwise)."""
        prompts = self._prompts[hotline.id]
        language = channel.env.get("agi_language", "")
        # English only where the caller can choose it: Asterisk's default "en" on a
        # channel the dialplan never set stays with the hotline's own language.
        if language == "en" and hotline.english_key is not None:
            return prompts.in_language(language)
        return prompts

    def handlers(self) -> dict[str, Callable[[fast_agi.Request], Awaitable[None]]]:
        """Script name (:data:`ivr.contracts.agi_scripts.SCRIPTS`) → its handler."""
        return {
            scripts.ENTRY.name: self.entry,
            scripts.CALL_ENDED.name: self.ended,
            scripts.SURVEY.name: self.survey,
            scripts.CALLBACK_REQUESTED.name: self.callback_requested,
            scripts.CALLBACK_ANSWERED.name: self.callback_answered,
            scripts.VOICEMAIL_SAVED.name: self.voicemail_saved,
        }

    def application(self, allowed: AllowedClients | None = None) -> FastAgiApplication:
        app = FastAgiApplication(allowed)
        for name, handler in self.handlers().items():
            app.add_route(name, self._measured(name, handler))
        return app

    def _measured(
        self, script: str, handler: Callable[[fast_agi.Request], Awaitable[None]]
    ) -> Callable[[fast_agi.Request], Awaitable[None]]:
        """``handler`` counted and timed under its script name (a fixed set:
        the label never carries what a caller sent)."""

        async def measured(request: fast_agi.Request) -> None:
            started = time.monotonic()
            outcome = "error"
            try:
                await handler(request)
                outcome = "ok"
            finally:
                self.requests.labels(script, outcome).inc()
                self.latency.labels(script).observe(time.monotonic() - started)

        return measured

    async def entry(self, request: fast_agi.Request) -> None:
        """A new call: play, collect, decide, record, and hand the route back.

        Any exception ends in the one failure branch the dialplan knows, so a
        bug never leaves a caller in silence.
        """
        channel = AgiChannel(request)
        try:
            await self._entry(channel)
        except CallerHungUp:
            logger.info("caller hung up during AGI %s", channel.env.get("agi_uniqueid"))
        except Exception:
            logger.exception("entry handler failed for %s", channel.env.get("agi_uniqueid"))
            try:
                await channel.set_variable(v.ROUTE, v.FAILURE_ROUTE)
            except Exception:  # the channel may be gone too
                logger.debug("could not set the failure route", exc_info=True)

    async def _entry(self, channel: AgiChannel) -> None:
        env = channel.env
        args = scripts.ENTRY.parse(channel.arg)
        dialed = args.dialed or env.get("agi_extension", "")
        config = self._current()
        hotline = (
            config.hotline_for_number(dialed)
            or config.sole_hotline()
            or await _hotline_of_channel(channel, config)
        )
        uniqueid = env.get("agi_uniqueid", "")
        started = utc_now()
        # Queued, never awaited: the writer thread writes it (and the update
        # below, in that order) whenever the database can take it, so neither a
        # slow nor a failed write can delay or change the route.
        self.call_log.call_started(
            CallStart(
                uniqueid=uniqueid,
                linkedid=args.linkedid or uniqueid,
                hotline_id=hotline.id,
                channel=env.get("agi_channel", ""),
                caller_raw=env.get("agi_callerid", ""),
                dialed_number=dialed,
                started_at=started,
            )
        )
        if self.stopping:
            # Stopping: no new flow here. Without a route the dialplan asks the
            # classic AGI script (the routing table), as when we are down; the
            # record exists and the hangup handler, or the next start, closes it.
            self.call_log.call_routed(
                uniqueid, keys="", last_step="fallback:server-stopping",
                area_code=None, route_kind=None, route_target=None,
            )  # fmt: skip
            return
        self.live[uniqueid] = time.monotonic()
        last_step = "entry"

        async def mark(step: str) -> None:
            nonlocal last_step
            last_step = step

        caller = normalise_caller(env.get("agi_callerid", ""))
        known_caller = caller.e164 if caller.e164 and caller.e164.startswith("+") else None
        result = await execute_flow(
            self.flow.run(hotline, self.clock(), known_caller),
            channel,
            self._prompts[hotline.id],
            mark,
            self._case_records,
        )
        route = result.route
        callback_case: str | None = None
        if route is not None and route.callback_queue is not None:
            # Written before the call record is updated and before the caller
            # hears anything: a hangup now still leaves the request and its case.
            route, callback_case = await self._callback_chosen(
                route, hotline, uniqueid, known_caller
            )
        self.call_log.call_routed(
            uniqueid,
            keys=result.keys_pressed,
            last_step=result.last_step or last_step,
            area_code=route.area_code if route else None,
            route_kind=route.kind.value if route else None,
            route_target=_describe(route) if route else None,
        )
        if route is None:
            return
        # In the caller's language: English when they pressed the hotline's english_key.
        announce_prompts = self._prompts[hotline.id].in_language(result.language)
        for name in route.announce:
            path = announce_prompts.path(name)
            if path:
                await channel.stream_file(path)
        if callback_case is not None and route.callback_queue is not None:
            queue = config.queue(route.callback_queue)
            # "… when the working day starts" when the queue is closed now (after
            # hours), "… as soon as possible" when an agent may call at once.
            opens_later = queue is not None and not self.flow.hours.is_open(
                queue.schedule, self.clock()
            )
            confirmation = "callback_confirmed_when_open" if opens_later else "callback_confirmed"
            digits = digit_prompts(callback_case)
            # The route first: a caller who hangs up while hearing the code ends
            # on it all the same (the request and its case are written already).
            await _hand_over(channel, route)
            await _play(
                channel,
                announce_prompts,
                [confirmation, "case_code_intro", *digits, "case_code_repeat", *digits, "goodbye"],
            )
            return
        await _hand_over(channel, route)

    async def _callback_chosen(
        self, route: Route, hotline: Hotline, uniqueid: str, caller: str | None
    ) -> tuple[Route, str | None]:
        """A call-back chosen in a menu (``callback:<queue>``): the request and its
        case, as for key 1 in a queue, placed in line now. Returns the route to
        hand over and the case code; without a request (no case desk, a database
        error) the caller leaves a message instead, which becomes a case too."""
        queue = route.callback_queue
        assert queue is not None
        # The flow sends a withheld number to voicemail; this is the last guard.
        case = None
        if caller is not None:
            case = await self._request_callback(
                uniqueid, queue, hotline.id, caller, self.clock().timestamp()
            )
        if case is None:
            logger.warning("call-back from %s for %s not recorded; voicemail instead",
                           queue, uniqueid)  # fmt: skip
            return Route(RouteKind.VOICEMAIL, description="voicemail"), None
        return route, case

    async def callback_requested(self, request: fast_agi.Request) -> None:
        """Key 1 in a queue: open a case, keep the caller's place, confirm.

        A withheld or unusable number cannot be called back: the caller goes
        back into the queue (HL_CALLBACK stays unset)."""
        channel = AgiChannel(request)
        args = scripts.CALLBACK_REQUESTED.parse(channel.arg)
        uniqueid, queue = args.uniqueid, args.queue
        config = self._current()
        # The dialplan's HL_HOTLINE, else the queue's owner; never a guess.
        hotline = config.hotline_or_sole(args.hotline) or config.hotline_or_sole(
            config.queue_owner(queue)
        )
        if hotline is None:
            logger.error(
                "callback request %s: no hotline known (channel's hotline %r, queue %r); "
                "the caller stays in the queue",
                uniqueid,
                args.hotline,
                queue,
            )
            return
        caller = normalise_caller(channel.env.get("agi_callerid", ""))
        joined = _epoch(args.joined)
        if not caller.e164 or not caller.e164.startswith("+") or joined is None:
            return
        case = await self._request_callback(uniqueid, queue, hotline.id, caller.e164, joined)
        if case is None:
            return
        try:
            prompts = self._prompts_for(hotline, channel)
            await channel.set_variable(v.CALLBACK, "1")
            await channel.set_variable(v.ROUTE, v.CALLBACK_ROUTE)
            await _play(channel, prompts, ["callback_confirmed", "case_code_intro",
                                           *digit_prompts(case)])  # fmt: skip
        except CallerHungUp:
            return
        except Exception:
            logger.exception("callback request failed for %s", uniqueid)

    async def _request_callback(
        self, uniqueid: str, queue: str, hotline_id: str, caller: str, joined: float
    ) -> str | None:
        """Open the call-back's case and write its request (the queue manager
        dials it); ``joined`` is the caller's place in line. The case code, or
        None when there is no case desk or the database failed."""
        if self.case_desk is None:
            return None
        try:
            return await self._db.run(
                self._open_callback, uniqueid, queue, hotline_id, caller, joined
            )
        except Exception:
            logger.exception("callback request failed for %s", uniqueid)
            return None

    def _open_callback(
        self, uniqueid: str, queue: str, hotline_id: str, caller: str, joined: float
    ) -> str:
        assert self.case_desk is not None
        case = self.case_desk.cases.open_case(
            channel="callback",
            hotline_id=hotline_id,
            caller_number=caller,
            call_uniqueid=uniqueid,
            summary="",
            actor="ivr",
        )
        with self.case_desk.sessions.begin() as session:
            callback_requests.add_request(
                session, queue=queue, hotline_id=hotline_id, caller_number=caller,
                call_uniqueid=uniqueid, case_code=case.code, joined_at=joined,
                requested_at=self.clock(),
            )  # fmt: skip
        return case.code

    async def callback_answered(self, request: fast_agi.Request) -> None:
        args = scripts.CALLBACK_ANSWERED.parse(AgiChannel(request).arg)
        if self.case_desk is not None and args.callback_id.isdigit():
            await self._db.run(
                callback_requests.mark_answered,
                self.case_desk.sessions,
                int(args.callback_id),
            )

    async def survey(self, request: fast_agi.Request) -> None:
        """After an agent hung up: the caller rates the call 1–3 (SATISFACTION_SCALE)."""
        channel = AgiChannel(request)
        args = scripts.SURVEY.parse(channel.arg)
        uniqueid = args.uniqueid or channel.env.get("agi_uniqueid", "")
        config = self._current()
        hotline = config.hotline_or_sole(args.hotline)
        if hotline is None:  # whose prompts? none rather than another hotline's
            logger.error("survey of %s: unknown hotline %r; no survey", uniqueid, args.hotline)
            return
        try:
            prompts = self._prompts_for(hotline, channel)
            rating = await execute_flow(survey_flow(), channel, prompts)
        except CallerHungUp:
            return
        if rating is not None:
            self.call_log.rated(uniqueid, rating)  # queued; the caller need not wait
            if self.case_desk is not None:
                self.case_desk.rated(uniqueid, rating)

    async def ended(self, request: fast_agi.Request) -> None:
        """Hangup handler: close the call record with what the dialplan saw."""
        channel = AgiChannel(request)
        args = scripts.CALL_ENDED.parse(channel.arg)
        uniqueid = args.uniqueid or channel.env.get("agi_uniqueid", "")
        dial_status = args.dial_status
        answered = args.answered if dial_status == "ANSWER" else ""
        ended_at = utc_now()
        # A call this process never saw start (hung up during Answer(), before
        # the entry AGI; or started before a restart): the hangup carries what
        # its record needs, so the record is inserted if it is missing.
        start: dict[str, str] = {}
        if uniqueid not in self.live:
            env = channel.env
            start = {
                "hotline_id": args.hotline,
                "caller_raw": env.get("agi_callerid", ""),
                "channel": env.get("agi_channel", ""),
                "linkedid": env.get("agi_linkedid", ""),
            }
        # Queued, not awaited: Asterisk's hangup handler (and the channel it
        # holds) is released at once, even while the database is away.
        self.call_log.call_ended(
            CallEnd(
                uniqueid=uniqueid,
                route=args.route,
                dial_status=dial_status,
                answered_epoch=_epoch(args.answer_epoch),
                answered_by=answered,
                queue_member=args.queue_member,
                ended_at=ended_at,
                **start,
            )
        )
        self.live.pop(uniqueid, None)
        if self.case_desk is not None:
            # recordings and the transcription job
            self._background(
                self.case_desk.call_ended(args.uniqueid, args.route, args.rec_base),
                f"could not register recordings of {args.uniqueid}",
            )

    async def spooled_recordings(self, end: CallEnd) -> None:
        """A hangup the server missed, read from the call spool
        (:class:`ivr.fallback_calls.FallbackCallSpool`): its recordings are
        registered and a voicemail opens its case, exactly as :meth:`ended` and
        :meth:`voicemail_saved` do (both idempotent: one case per call)."""
        if self.case_desk is None or not end.rec_base:
            return
        if end.route == RouteKind.VOICEMAIL:
            case = await self.case_desk.voicemail_saved(
                end.uniqueid, end.rec_base, end.hotline_id, end.caller_raw
            )
            if case is not None:  # its recording registered with it
                logger.info("spooled voicemail of %s: case %s", end.uniqueid, case.code)
            return
        await self.case_desk.call_ended(end.uniqueid, end.route, end.rec_base)

    def _background(self, work: Awaitable[Any], failure: str) -> None:
        """Run ``work`` after this AGI session ends; drain() waits for it."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception(failure)

        task = asyncio.ensure_future(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float) -> int:
        """Stop intake and let the calls up finish: new calls get no flow (the
        dialplan falls back to the classic script), hangup handlers of the calls
        we routed are still served for up to ``timeout`` seconds so their records
        close. Returns the calls still up at the end (closed at the next start)."""
        self.stopping = True
        deadline = time.monotonic() + timeout
        if self.live:
            logger.info(
                "stopping: waiting up to %.0f s for %d calls to end", timeout, len(self.live)
            )
        checked = time.monotonic()
        while self.live and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if time.monotonic() - checked >= ENDED_CHECK_SECONDS:
                checked = time.monotonic()
                with contextlib.suppress(Exception):  # the database away: wait on
                    await asyncio.wait_for(self.forget_calls_ended_elsewhere(), 1.0)
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=max(1.0, deadline - time.monotonic()))
        if self.live:
            logger.warning(
                "stopping with %d calls still up; their records are closed when their "
                "hangup reaches the next server, or as interrupted",
                len(self.live),
            )
        return len(self.live)

    def start_housekeeping(
        self,
        max_call_seconds: float = MAX_CALL_SECONDS,
        interval: float = STALE_SWEEP_SECONDS,
    ) -> asyncio.Task[None]:
        """Close crash leftovers now and every ``interval`` seconds."""
        self._housekeeping = asyncio.create_task(
            self._sweep_loop(max_call_seconds, interval), name="stale-call-sweep"
        )
        return self._housekeeping

    async def sweep_stale_calls(self, max_call_seconds: float = MAX_CALL_SECONDS) -> int:
        """Records "in progress" that started more than ``max_call_seconds`` ago
        and are not calls up on this server: their hangup handler never reached
        us (a crash, a kill, the server down when they ended)."""
        now = time.monotonic()
        for uniqueid, seen in list(self.live.items()):
            if now - seen > max_call_seconds:  # its hangup never came: not up any more
                del self.live[uniqueid]
        await self.forget_calls_ended_elsewhere()
        cutoff = utc_now() - timedelta(seconds=max_call_seconds)
        return int(await self.call_log.close_stale_calls(cutoff, frozenset(self.live)))

    async def forget_calls_ended_elsewhere(self) -> int:
        """Several FastAGI processes may serve the nodes (issue 15): a call's
        hangup handler can reach another process than its entry did, and then
        nothing here pops it from ``live``. A call whose record is closed is
        not up any more, whoever closed it: forgotten, so ``live`` does not
        grow with other processes' hangups and a drain does not wait for them."""
        if not self.live:
            return 0
        ended = await self.call_log.submit(_ended, sorted(self.live))
        for uniqueid in ended:
            self.live.pop(uniqueid, None)
        return len(ended)

    async def _sweep_loop(self, max_call_seconds: float, interval: float) -> None:
        while True:
            try:
                await self.sweep_stale_calls(max_call_seconds)
            except Exception:
                logger.exception("closing stale call records failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        # Lookups nobody waits for any more are dropped; a stalled one is not awaited.
        self._db.close(wait=False, cancel_pending=True)

    async def voicemail_saved(self, request: fast_agi.Request) -> None:
        """The message is recorded: open its case and read the code back twice,
        digit by digit, then the deadline."""
        channel = AgiChannel(request)
        args = scripts.VOICEMAIL_SAVED.parse(channel.arg)
        if self.case_desk is None:
            return
        try:
            case = await self.case_desk.voicemail_saved(
                args.uniqueid, args.rec_base, args.hotline, channel.env.get("agi_callerid", "")
            )
            if case is None:
                return
            await channel.set_variable(v.CASE_CODE, case.code)
            config = self._current()
            hotline = config.hotline_or_sole(case.hotline_id)
            if hotline is None:  # the case is open; only its read-back is lost
                logger.error("case %s: unknown hotline %r; code not read back",
                             case.code, case.hotline_id)  # fmt: skip
                return
            prompts = self._prompts_for(hotline, channel)
            digits = digit_prompts(case.code)
            due = day_month_prompts(case.due_date, prompts.language)
            names = ["case_code_intro", *digits, "case_code_repeat", *digits, "case_code_sms",
                     "case_due_intro", *due]  # fmt: skip
            for name in names:
                path = prompts.path(name)
                if path:
                    await channel.stream_file(path)
        except CallerHungUp:
            logger.info("caller hung up while hearing the case code (%s)", args.uniqueid)
        except Exception:
            logger.exception("voicemail-saved failed for %s", args.uniqueid)


class UnknownHotline(LookupError):
    """A call whose hotline cannot be known: it takes the failure branch."""


async def _hotline_of_channel(channel: AgiChannel, config: HotlineConfig) -> Hotline:
    """The hotline the dialplan set on the channel (HL_HOTLINE), for a number
    the config no longer lists (a config applied before Asterisk reloaded).
    Unknown: the call takes the failure branch, never another hotline's flow."""
    hotline_id = await channel.get_full_variable(f"${{{v.HOTLINE}}}")
    hotline = config.hotline(hotline_id) if hotline_id else None
    if hotline is None:
        raise UnknownHotline(f"no hotline has this number, and {v.HOTLINE}={hotline_id!r}")
    return hotline


def _epoch(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


async def _play(channel: AgiChannel, prompts: PromptFiles, names: list[str]) -> None:
    """Play the installed prompts among ``names``, in order."""
    for name in names:
        path = prompts.path(name)
        if path:
            await channel.stream_file(path)


async def _hand_over(channel: AgiChannel, route: Route) -> None:
    """Write the route into channel variables for the ``hotline-route`` context
    (one round trip: every AGI command costs both processes a wake-up)."""
    values: dict[str, str] = {}
    if route.kind is RouteKind.DIAL:
        values[v.TARGETS] = pack_targets(route)
        final = route.final
        if final is not None:
            values[v.FINAL] = final.kind.value
            if final.queue:
                values[v.QUEUE] = final.queue
    elif route.kind is RouteKind.QUEUE and route.queue:
        values[v.QUEUE] = route.queue
    # Last: the dialplan branches on it. A call back chosen in a menu ends like
    # key 1 in a queue, so reports count both as "callback".
    values[v.ROUTE] = v.CALLBACK_ROUTE if route.callback_queue else route.kind.value
    await channel.set_variables(values)


def pack_targets(route: Route) -> str:
    """``HL_TARGETS``: every target of a dial route in one variable."""
    return v.TARGET_SEPARATOR.join(
        v.FIELD_SEPARATOR.join((t.dial_string, str(t.ring_seconds), t.label)) for t in route.targets
    )


def _describe(route: Route) -> str:
    if route.kind is RouteKind.DIAL:
        chain = " → ".join(t.label for t in route.targets)
        if route.final is not None:
            chain += f" → {route.final.description}"
        return chain
    return route.description


async def start_agi_server(
    agi: HotlineAgi, host: str, port: int, allowed: AllowedClients | None = None
) -> asyncio.Server:
    return await asyncio.start_server(agi.application(allowed).handler, host, port)
