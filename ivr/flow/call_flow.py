"""The citizen's path through a hotline, written as a generator of steps.

The executor sends back an :class:`Input` for every :class:`Play` and
:class:`Collect` (``None`` for :class:`Mark`), and receives a
:class:`FlowResult` when the generator returns.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from datetime import datetime

from ivr.config.destinations import Destination, DestinationKind
from ivr.config.references import menu_keys
from ivr.config.schema import Hotline, HotlineConfig, Menu
from ivr.flow.routing import RoutingTable
from ivr.flow.schedule import OpeningHours
from ivr.flow.steps import Collect, FlowResult, Input, InputKind, Mark, Play, Route

Step = Play | Collect | Mark
Flow = Generator[Step, Input | None, FlowResult]

MAX_MENU_HOPS = 20  # a caller bouncing between menus this often goes to the operator


@dataclass
class _CallState:
    keys: str = ""
    step: str = "entry"


class HotlineFlow:
    """Builds the flow for calls into one config; cheap to call per call."""

    def __init__(self, config: HotlineConfig) -> None:
        self.config = config
        self.routing = RoutingTable(config)
        self.hours = OpeningHours(config)
        # Key maps are fixed for a config: compute them once, not per call.
        self._keymaps: dict[tuple[str, str], dict[str, Destination]] = {
            (hotline.id, name): menu_keys(menu, config)
            for hotline in config.hotlines
            for name, menu in hotline.menus.items()
        }

    def run(self, hotline: Hotline, now: datetime) -> Flow:
        state = _CallState()
        yield Mark("greeting")
        state.step = "greeting"
        if not self.hours.is_open(hotline.schedule, now):
            state.step = "out_of_hours"
            yield Mark(state.step)
            reply = yield Play(("out_of_hours",))
            if reply is not None and reply.kind is InputKind.HANGUP:
                return FlowResult(None, state.keys, state.step)
            return (yield from self._go(hotline, hotline.out_of_hours, state, now, ""))
        reply = yield Play(tuple(hotline.greeting_prompts), interruptible=True)
        if reply is not None and reply.kind is InputKind.HANGUP:
            return FlowResult(None, state.keys, state.step)
        barge_in = reply.digits if reply is not None and reply.kind is InputKind.KEYS else ""
        return (
            yield from self._go(
                hotline, Destination(DestinationKind.MENU, hotline.main_menu), state, now, barge_in
            )
        )

    def _go(
        self,
        hotline: Hotline,
        destination: Destination,
        state: _CallState,
        now: datetime,
        barge_in: str,
    ) -> Flow:
        """Follow menus and play-and-return prompts until a bridging route."""
        current_menu: str | None = None
        for _ in range(MAX_MENU_HOPS):
            kind = destination.kind
            if kind is DestinationKind.MENU:
                current_menu = destination.argument
                chosen = yield from self._menu(hotline, current_menu, state, barge_in)
                barge_in = ""
                if chosen is None:
                    return FlowResult(None, state.keys, state.step)
                destination = chosen
                continue
            if kind is DestinationKind.PROMPT:
                reply = yield Play((destination.argument,))
                if reply is not None and reply.kind is InputKind.HANGUP:
                    return FlowResult(None, state.keys, state.step)
                destination = Destination(
                    DestinationKind.MENU, current_menu or hotline.main_menu
                )
                continue
            if kind is DestinationKind.CASE_STATUS:
                # Case lookup by phone arrives with case records; until then a
                # person answers the question.
                destination = hotline.failure_destination
                continue
            route = self.routing.route_for(destination, hotline)
            route = self._check_queue_hours(route, hotline, now)
            if hotline.announce_selection and route.area_code and not route.announce:
                route = replace(route, announce=(f"area_{route.area_code}",))
            state.step = f"route:{route.kind.value}"
            yield Mark(state.step)
            return FlowResult(route, state.keys, state.step)
        state.step = "menu_loop"
        return FlowResult(
            self.routing.route_for(hotline.failure_destination, hotline), state.keys, state.step
        )

    def _check_queue_hours(self, route: Route, hotline: Hotline, now: datetime) -> Route:
        if route.queue is None:
            return route
        queue = self.config.queue(route.queue)
        if queue is None or self.hours.is_open(queue.schedule, now):
            return route
        closed = self.routing.route_for(hotline.out_of_hours, hotline) if (
            hotline.out_of_hours.kind not in (DestinationKind.MENU, DestinationKind.PROMPT)
        ) else self.routing.route_for(hotline.failure_destination, hotline)
        return Route(
            closed.kind,
            targets=closed.targets,
            queue=closed.queue,
            final=closed.final,
            description=f"{route.description} closed → {closed.description}",
            announce=("out_of_hours",),
        )

    def _menu(
        self, hotline: Hotline, menu_name: str, state: _CallState, barge_in: str
    ) -> Generator[Step, Input | None, Destination | None]:
        menu: Menu = hotline.menus[menu_name]
        keymap = self._keymaps[(hotline.id, menu_name)]
        max_digits = max((len(key) for key in keymap), default=1)
        state.step = f"menu:{menu_name}"
        yield Mark(state.step)
        failures = 0
        while True:
            reply = yield Collect(
                menu.prompt, menu.timeout_seconds, max_digits, menu.terminator, barge_in
            )
            barge_in = ""
            if reply is None or reply.kind is InputKind.HANGUP:
                return None
            digits = reply.digits.rstrip("#") if reply.kind is InputKind.KEYS else ""
            if digits:
                state.keys += digits if not state.keys else f",{digits}"
                chosen = keymap.get(digits)
                if chosen is not None:
                    return chosen
            failures += 1
            if failures >= menu.attempts:
                give_up = yield Play(("to_operator",))
                if give_up is not None and give_up.kind is InputKind.HANGUP:
                    return None
                return menu.on_invalid if digits else menu.on_no_input
            retry = yield Play(("invalid_key",) if digits else ("no_input",))
            if retry is not None and retry.kind is InputKind.HANGUP:
                return None
