"""The FastAGI server: one short AGI session per decision, never held for a call."""

from __future__ import annotations

import asyncio
import logging

from panoramisk import fast_agi

from ivr.agi import variables as v
from ivr.agi.channel import AgiChannel, CallerHungUp
from ivr.agi.executor import PromptFiles, execute_flow
from ivr.call_log import CallEnd, CallLog, CallStart
from ivr.config.schema import HotlineConfig
from ivr.db.models import utc_now
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.steps import Route, RouteKind

logger = logging.getLogger(__name__)


class HotlineAgi:
    """Handlers for the scripts the dialplan calls; all logic lives in ivr.flow."""

    def __init__(self, config: HotlineConfig, call_log: CallLog) -> None:
        self.config = config
        self.flow = HotlineFlow(config)
        self.call_log = call_log
        prompts_root = config.resolve_path(config.paths.prompts)
        self._prompts = {h.id: PromptFiles(prompts_root, h.language) for h in config.hotlines}

    def application(self) -> fast_agi.Application:
        app = fast_agi.Application()
        app.add_route(v.ENTRY_SCRIPT, self.entry)
        app.add_route(v.ENDED_SCRIPT, self.ended)
        return app

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
        dialed = channel.arg(1) or env.get("agi_extension", "")
        hotline = self.config.hotline_for_number(dialed) or self.config.hotlines[0]
        uniqueid = env.get("agi_uniqueid", "")
        started = utc_now()
        call_id = await self.call_log.call_started(
            CallStart(
                uniqueid=uniqueid,
                linkedid=channel.arg(2) or uniqueid,
                hotline_id=hotline.id,
                channel=env.get("agi_channel", ""),
                caller_raw=env.get("agi_callerid", ""),
                dialed_number=dialed,
                started_at=started,
            )
        )
        await channel.set_variable(v.CALL_ID, call_id)
        last_step = "entry"

        async def mark(step: str) -> None:
            nonlocal last_step
            last_step = step

        result = await execute_flow(
            self.flow.run(hotline, started), channel, self._prompts[hotline.id], mark
        )
        route = result.route
        await self.call_log.call_routed(
            uniqueid,
            keys=result.keys_pressed,
            last_step=result.last_step or last_step,
            area_code=route.area_code if route else None,
            route_kind=route.kind.value if route else None,
            route_target=_describe(route) if route else None,
        )
        if route is None:
            return
        for name in route.announce:
            path = self._prompts[hotline.id].path(name)
            if path:
                await channel.stream_file(path)
        await _hand_over(channel, route)

    async def ended(self, request: fast_agi.Request) -> None:
        """Hangup handler: close the call record with what the dialplan saw."""
        channel = AgiChannel(request)
        dial_status = channel.arg(4)
        answered = channel.arg(3) if dial_status == "ANSWER" else ""
        try:
            await self.call_log.call_ended(
                CallEnd(
                    uniqueid=channel.arg(1) or channel.env.get("agi_uniqueid", ""),
                    route=channel.arg(2),
                    dial_status=dial_status,
                    answered_epoch=_epoch(channel.arg(5)),
                    answered_by=answered,
                    queue_member=channel.arg(6),
                    ended_at=utc_now(),
                )
            )
        except Exception:
            logger.exception("could not close call record %s", channel.arg(1))


def _epoch(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


async def _hand_over(channel: AgiChannel, route: Route) -> None:
    """Write the route into channel variables for the ``hotline-route`` context."""
    if route.kind is RouteKind.DIAL:
        for index, target in enumerate(route.targets, start=1):
            await channel.set_variable(f"{v.DIAL_PREFIX}{index}", target.dial_string)
            await channel.set_variable(f"{v.RING_PREFIX}{index}", target.ring_seconds)
            await channel.set_variable(f"{v.LABEL_PREFIX}{index}", target.label)
        await channel.set_variable(v.DIAL_COUNT, len(route.targets))
        final = route.final
        if final is not None:
            await channel.set_variable(v.FINAL, final.kind.value)
            if final.queue:
                await channel.set_variable(v.QUEUE, final.queue)
    elif route.kind is RouteKind.QUEUE and route.queue:
        await channel.set_variable(v.QUEUE, route.queue)
    await channel.set_variable(v.ROUTE, route.kind.value)


def _describe(route: Route) -> str:
    if route.kind is RouteKind.DIAL:
        chain = " → ".join(t.label for t in route.targets)
        if route.final is not None:
            chain += f" → {route.final.description}"
        return chain
    return route.description


async def start_agi_server(
    agi: HotlineAgi, host: str, port: int
) -> asyncio.Server:
    return await asyncio.start_server(agi.application().handler, host, port)

