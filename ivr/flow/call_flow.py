"""The citizen's path through a hotline, written as a generator of steps.

The executor answers each step: an :class:`Input` for :class:`Play` and
:class:`Collect`, :class:`CasesFound` for :class:`FindCases`, ``None`` for
:class:`Mark`; it receives a :class:`FlowResult` when the generator returns.
Everything here is pure: no I/O, the time is given.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from ivr.config.destinations import Destination, DestinationKind
from ivr.config.references import menu_keys
from ivr.config.schema import Area, Hotline, HotlineConfig, Menu
from ivr.contracts.statuses import OPEN_CASE_STATUSES, CaseStatus
from ivr.flow.routing import RoutingTable
from ivr.flow.schedule import OpeningHours
from ivr.flow.spoken_numbers import day_month_prompts, digit_prompts, number_prompts
from ivr.flow.steps import (
    CaseInfo,
    CasesFound,
    Collect,
    FindCases,
    FlowResult,
    Input,
    InputKind,
    Mark,
    Play,
    QueueLoad,
    QueueLoadInfo,
    Route,
    SetLanguage,
)

Step = Play | Collect | Mark | FindCases | QueueLoad | SetLanguage
Reply = Input | CasesFound | QueueLoadInfo | None
Flow = Generator[Step, Reply, FlowResult]
SubFlow = Generator[Step, Reply, "Destination | None"]

MAX_MENU_HOPS = 20  # a caller bouncing between menus this often goes to the operator
CASE_CODE_MAX_DIGITS = 12
AREA_MENU_PROMPT = "area_menu"
# Read-back of a keyed unit (Menu.confirm_area): its name, then "press 1 to confirm,
# 2 to enter another code"; "transferring" once confirmed instead of the name again.
AREA_CONFIRM_PROMPT = "area_confirm"
CONFIRM_KEY, REENTER_KEY = "1", "2"
CONFIRM_TIMEOUT_SECONDS = 5
TRANSFERRING_PROMPT = "transferring"
# Said after the greeting by a hotline with english_key ("For English, press 9").
ENGLISH_OFFER_PROMPT = "english_offer"
ENGLISH = "en"
# A call-back chosen by a caller whose number is withheld: nobody to call, so
# they are told so and leave a message instead (it becomes a case too).
CALLBACK_UNAVAILABLE_PROMPT = "callback_unavailable"
# Leaving a menu for these, "transferring you to an operator" would be untrue:
# their own prompts say what happens next.
_NOT_TO_AN_OPERATOR = frozenset(
    {DestinationKind.VOICEMAIL, DestinationKind.CALLBACK, DestinationKind.HANGUP}
)

ANSWERED_STATUS_PROMPT = "case_status_answered"
# "Phản ánh đã được trả lời ngày": followed by the day and month it was answered.
ANSWERED_ON_PROMPT = "case_answered_on_intro"
# Which sentence tells the caller where a case stands.
STATUS_PROMPTS: dict[str, str] = {  # keyed by CaseStatus; rows hold plain str
    CaseStatus.RECEIVED: "case_status_received",
    CaseStatus.CLASSIFIED: "case_status_received",
    CaseStatus.ASSIGNED: "case_status_in_progress",
    CaseStatus.IN_PROGRESS: "case_status_in_progress",
    CaseStatus.ANSWERED: ANSWERED_STATUS_PROMPT,
    CaseStatus.CLOSED: ANSWERED_STATUS_PROMPT,
    CaseStatus.REJECTED: "case_status_rejected",
}
DEFAULT_CALL_SECONDS = 180  # per call, until Asterisk has measured the queue's own


def expected_wait_minutes(position: int, load: QueueLoadInfo) -> int:
    """Whole minutes, at least 1: the calls ahead shared among the agents."""
    per_call = load.average_hold_seconds or DEFAULT_CALL_SECONDS
    agents = max(load.agents, 1)
    return max(1, -(-position * per_call // (agents * 60)))


def queue_announcement(load: QueueLoadInfo, callback: bool) -> tuple[str, ...]:
    """ "All operators are busy. You are number 3 in the queue. The expected wait is
    about 5 minutes. Press 1 to be called back." Nothing when an agent is free."""
    if load.ready_agents > 0 and load.waiting == 0:
        return ()
    position = load.waiting + 1
    prompts = ["queue_all_busy", "queue_position_intro", *number_prompts(min(position, 999))]
    prompts += ["queue_position_outro", "queue_wait_intro"]
    prompts += [*number_prompts(min(expected_wait_minutes(position, load), 999)), "minutes"]
    if callback:
        prompts.append("queue_callback_offer")
    return tuple(prompts)


class _Confirmation(Enum):
    YES = "yes"
    AGAIN = "again"  # enter the code again
    HUNG_UP = "hung_up"


_ConfirmFlow = Generator[Step, Reply, _Confirmation]


@dataclass
class _CallState:
    keys: str = ""
    step: str = "entry"
    confirmed_area: str | None = None  # the caller has heard this unit's name already
    language: str | None = None  # chosen with the hotline's english_key
    caller: str | None = None  # E.164; None when withheld (no call-back possible)

    def press(self, digits: str) -> None:
        self.keys += digits if not self.keys else f",{digits}"


def _hung_up(reply: Reply) -> bool:
    return isinstance(reply, Input) and reply.kind is InputKind.HANGUP


def case_status_prompts(case: CaseInfo) -> tuple[str, ...]:
    """ "Phản ánh mã số 2 5 0 7 … đang được xử lý. Thời hạn trả lời … ngày 15 tháng 7";
    an answered case says the day instead: "… đã được trả lời ngày 3 tháng 12"."""
    prompts = ["case_status_intro", *digit_prompts(case.code)]
    status_prompt = STATUS_PROMPTS.get(case.status, "case_status_in_progress")
    prompts.append(status_prompt)
    if case.status in OPEN_CASE_STATUSES and case.due_date is not None:
        prompts += ["case_due_date_intro", *day_month_prompts(case.due_date)]
    elif status_prompt == ANSWERED_STATUS_PROMPT and case.answered_on is not None:
        prompts += [ANSWERED_ON_PROMPT, *day_month_prompts(case.answered_on)]
    return tuple(prompts)


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

    def run(self, hotline: Hotline, now: datetime, caller: str | None = None) -> Flow:
        """The whole call; ``caller`` is the E.164 number, None when withheld."""
        state = _CallState(caller=caller)
        result = yield from self._call(hotline, now, caller, state)
        return replace(result, language=state.language) if state.language else result

    def _greeting(self, hotline: Hotline, state: _CallState) -> Generator[Step, Reply, Reply]:
        """The greeting, with "For English, press …" where the hotline offers it;
        that key switches the call to English and the greeting is said again in
        English. Returns the reply to the last greeting played."""
        offer = (ENGLISH_OFFER_PROMPT,) if hotline.english_key else ()
        reply = yield Play((*hotline.greeting_prompts, *offer), interruptible=True)
        pressed = reply.digits if isinstance(reply, Input) and reply.kind is InputKind.KEYS else ""
        if not hotline.english_key or pressed != hotline.english_key:
            return reply
        state.press(pressed)
        state.language = ENGLISH
        state.step = f"language:{ENGLISH}"
        yield Mark(state.step)
        yield SetLanguage(ENGLISH)
        return (yield Play(tuple(hotline.greeting_prompts), interruptible=True))

    def _call(self, hotline: Hotline, now: datetime, caller: str | None, state: _CallState) -> Flow:
        yield Mark("greeting")
        state.step = "greeting"
        if not self.hours.is_open(hotline.schedule, now):
            state.step = "out_of_hours"
            yield Mark(state.step)
            reply = yield Play(("out_of_hours",))
            if _hung_up(reply):
                return FlowResult(None, state.keys, state.step)
            return (yield from self._go(hotline, hotline.out_of_hours, state, now, ""))
        reply = yield from self._greeting(hotline, state)
        if _hung_up(reply):
            return FlowResult(None, state.keys, state.step)
        barge_in = reply.digits if isinstance(reply, Input) and reply.kind is InputKind.KEYS else ""
        if caller and hotline.offer_open_case and not barge_in:
            offered = yield from self._offer_open_case(caller, state)
            if offered is None:
                return FlowResult(None, state.keys, state.step)
        main = Destination(DestinationKind.MENU, hotline.main_menu)
        return (yield from self._go(hotline, main, state, now, barge_in))

    def _go(
        self,
        hotline: Hotline,
        destination: Destination,
        state: _CallState,
        now: datetime,
        barge_in: str,
    ) -> Flow:
        """Follow menus, play-and-return prompts and lookups until a bridging route."""
        current_menu: str | None = None
        main = Destination(DestinationKind.MENU, hotline.main_menu)
        for _ in range(MAX_MENU_HOPS):
            kind = destination.kind
            chosen: Destination | None
            if kind is DestinationKind.MENU:
                current_menu = destination.argument
                menu = hotline.menus[current_menu]
                keymap = self._keymaps[(hotline.id, current_menu)]
                chosen = yield from self._menu(menu, current_menu, keymap, state, barge_in)
            elif kind is DestinationKind.AREA and self._is_area_menu(destination.argument):
                # A unit with sub-units and no chairman of its own is a menu of
                # its children's shortcuts: province → district → ward, any depth.
                area = self.routing.area(destination.argument)
                assert area is not None
                chosen = yield from self._menu(
                    self._area_menu(area),
                    f"area:{area.code}",
                    self._area_keys(area),
                    state,
                    barge_in,
                )
            elif kind is DestinationKind.PROMPT:
                reply = yield Play((destination.argument,))
                chosen = (
                    None
                    if _hung_up(reply)
                    else Destination(DestinationKind.MENU, current_menu or hotline.main_menu)
                )
            elif kind is DestinationKind.CASE_STATUS:
                chosen = yield from self._case_lookup(state)
                chosen = main if chosen is not None else None
            elif kind is DestinationKind.CALLBACK and state.caller is None:
                state.step = CALLBACK_UNAVAILABLE_PROMPT
                yield Mark(state.step)
                reply = yield Play((CALLBACK_UNAVAILABLE_PROMPT,))
                chosen = None if _hung_up(reply) else Destination(DestinationKind.VOICEMAIL)
            else:
                return (yield from self._route(hotline, destination, state, now))
            barge_in = ""
            if chosen is None:
                return FlowResult(None, state.keys, state.step)
            destination = chosen
        state.step = "menu_loop"
        return FlowResult(
            self.routing.route_for(hotline.failure_destination, hotline), state.keys, state.step
        )

    def _route(
        self, hotline: Hotline, destination: Destination, state: _CallState, now: datetime
    ) -> Flow:
        route = self.routing.route_for(destination, hotline)
        route = self._check_queue_hours(route, hotline, now)
        queue = self.config.queue(route.queue) if route.queue else None
        if queue is not None and queue.announce_position and not route.announce:
            load = yield QueueLoad(queue.id)
            if isinstance(load, QueueLoadInfo):
                route = replace(route, announce=queue_announcement(load, queue.callback))
        if hotline.announce_selection and route.area_code and not route.announce:
            # The unit's name was read back and confirmed: do not say it twice.
            named = () if route.area_code == state.confirmed_area else (f"area_{route.area_code}",)
            route = replace(route, announce=(*named, TRANSFERRING_PROMPT))
        state.step = f"route:{'callback' if route.callback_queue else route.kind.value}"
        yield Mark(state.step)
        return FlowResult(route, state.keys, state.step)

    def _check_queue_hours(self, route: Route, hotline: Hotline, now: datetime) -> Route:
        """A queue outside its hours sends the caller where the hotline says, after
        a prompt with the hours."""
        if route.queue is None:
            return route
        queue = self.config.queue(route.queue)
        if queue is None or self.hours.is_open(queue.schedule, now):
            return route
        fallback = hotline.out_of_hours
        # Only a destination that puts the caller somewhere: not a menu, and not
        # a call-back they did not ask for.
        not_a_place = (DestinationKind.MENU, DestinationKind.PROMPT, DestinationKind.CALLBACK)
        if fallback.kind in not_a_place or (
            fallback.kind is DestinationKind.AREA and self._is_area_menu(fallback.argument)
        ):
            fallback = hotline.failure_destination
        closed = self.routing.route_for(fallback, hotline)
        return replace(
            closed,
            description=f"{route.description} closed → {closed.description}",
            announce=("out_of_hours",),
        )

    def _menu(
        self,
        menu: Menu,
        name: str,
        keymap: dict[str, Destination],
        state: _CallState,
        barge_in: str,
    ) -> SubFlow:
        max_digits = max((len(key) for key in keymap), default=1)
        state.step = f"menu:{name}"
        yield Mark(state.step)
        failures = 0
        while True:
            reply = yield Collect(
                menu.prompt, menu.timeout_seconds, max_digits, menu.terminator, barge_in
            )
            barge_in = ""
            if not isinstance(reply, Input) or reply.kind is InputKind.HANGUP:
                return None
            digits = reply.digits.rstrip("#") if reply.kind is InputKind.KEYS else ""
            if digits:
                state.press(digits)
                chosen = keymap.get(digits)
                unit = self._ringing_unit(chosen)
                if chosen is not None and unit is None:
                    return chosen
                if unit is not None:
                    confirmed = (
                        (yield from self._confirm_area(unit, state))
                        if menu.confirm_area
                        else _Confirmation.YES
                    )
                    if confirmed is _Confirmation.HUNG_UP:
                        return None
                    if confirmed is _Confirmation.YES:
                        if unit.chairman is not None:
                            return chosen
                        # Imported units may have no chairman yet: the caller still
                        # reaches a person, where the menu sends a failed choice.
                        state.step = f"no_chairman:{unit.code}"
                        yield Mark(state.step)
                        heard = yield Play(("to_operator",))
                        return None if _hung_up(heard) else menu.on_invalid
                    # "2", a wrong key or silence: the code is entered again, and
                    # that counts as an attempt so that nobody loops for ever.
                    failures += 1
                    if failures < menu.attempts:
                        continue
                    heard = yield Play(("to_operator",))
                    return None if _hung_up(heard) else menu.on_invalid
            failures += 1
            if failures >= menu.attempts:
                give_up_to = menu.on_invalid if digits else menu.on_no_input
                if give_up_to.kind not in _NOT_TO_AN_OPERATOR:
                    give_up = yield Play(("to_operator",))
                    if _hung_up(give_up):
                        return None
                return give_up_to
            retry = yield Play(("invalid_key",) if digits else ("no_input",))
            if _hung_up(retry):
                return None

    # --- reading a unit back ---------------------------------------------------

    def _ringing_unit(self, chosen: Destination | None) -> Area | None:
        """The unit a menu choice rings (not a unit that is itself a menu)."""
        if chosen is None or chosen.kind is not DestinationKind.AREA:
            return None
        if self._is_area_menu(chosen.argument):
            return None
        return self.routing.area(chosen.argument)

    def _confirm_area(self, unit: Area, state: _CallState) -> _ConfirmFlow:
        """ "Quý vị đã chọn Phường … Nhấn phím 1 để xác nhận, phím 2 để nhập lại":
        1 confirms; 2 or another key re-enters the code; silence repeats the
        read-back once."""
        state.step = f"confirm_area:{unit.code}"
        yield Mark(state.step)
        for heard_before in (False, True):
            name = yield Play((f"area_{unit.code}",), interruptible=True)
            if _hung_up(name):
                return _Confirmation.HUNG_UP
            early = name.digits if isinstance(name, Input) else ""
            reply = yield Collect(AREA_CONFIRM_PROMPT, CONFIRM_TIMEOUT_SECONDS, 1, "", early)
            if not isinstance(reply, Input) or reply.kind is InputKind.HANGUP:
                return _Confirmation.HUNG_UP
            key = reply.digits.rstrip("#") if reply.kind is InputKind.KEYS else ""
            if key:
                state.press(key)
            if key == CONFIRM_KEY:
                state.confirmed_area = unit.code
                return _Confirmation.YES
            if key == REENTER_KEY:
                return _Confirmation.AGAIN
            if key or heard_before:
                heard = yield Play(("invalid_key",) if key else ("no_input",))
                return _Confirmation.HUNG_UP if _hung_up(heard) else _Confirmation.AGAIN
        return _Confirmation.AGAIN  # not reached: the second pass always returns

    # --- areas as menus ------------------------------------------------------

    def _is_area_menu(self, code: str) -> bool:
        area = self.routing.area(code)
        return (
            area is not None
            and area.chairman is None
            and any(child.shortcut for child in area.children)
        )

    def _area_menu(self, area: Area) -> Menu:
        return Menu(prompt=AREA_MENU_PROMPT, terminator="#", timeout_seconds=6)

    def _area_keys(self, area: Area) -> dict[str, Destination]:
        return {
            child.shortcut: Destination(DestinationKind.AREA, child.code)
            for child in area.children
            if child.shortcut
        }

    # --- cases by phone ------------------------------------------------------

    def _offer_open_case(self, caller: str, state: _CallState) -> SubFlow:
        """A caller with an open case hears it offered first (press 1)."""
        found = yield FindCases(caller=caller)
        cases = found.cases if isinstance(found, CasesFound) else ()
        if not cases:
            return Destination(DestinationKind.HANGUP)  # anything but None: carry on
        state.step = "open_case_offer"
        yield Mark(state.step)
        reply = yield Collect("open_case_offer", 4, 1)
        if not isinstance(reply, Input) or reply.kind is InputKind.HANGUP:
            return None
        if reply.digits == "1":
            state.press("1")
            heard = yield Play(case_status_prompts(cases[0]))
            if _hung_up(heard):
                return None
        return Destination(DestinationKind.HANGUP)

    def _case_lookup(self, state: _CallState, attempts: int = 3) -> SubFlow:
        """Key in a case code, hear its status and due date; back to the menu."""
        state.step = "case_status"
        yield Mark(state.step)
        for _ in range(attempts):
            reply = yield Collect("case_lookup_prompt", 8, CASE_CODE_MAX_DIGITS, "#")
            if not isinstance(reply, Input) or reply.kind is InputKind.HANGUP:
                return None
            code = reply.digits.rstrip("#")
            if code:
                state.press(code)
                found = yield FindCases(code=code)
                if isinstance(found, CasesFound) and found.cases:
                    heard = yield Play(case_status_prompts(found.cases[0]))
                    return None if _hung_up(heard) else Destination(DestinationKind.HANGUP)
            missing = yield Play(("case_not_found",) if code else ("no_input",))
            if _hung_up(missing):
                return None
        return Destination(DestinationKind.HANGUP)


# The scale the `survey` prompt says (the hotline's own script, ../shared/domain.md):
# the key pressed is the rating stored on the call and its case. The prompt text and
# this table must agree; tests/test_call_flow.py checks both languages against it.
SATISFACTION_SCALE: dict[int, str] = {
    1: "very satisfied",
    2: "satisfied",
    3: "not satisfied",
}


def survey_flow(attempts: int = 2) -> Generator[Step, Reply, int | None]:
    """After an agent call: rate by key on SATISFACTION_SCALE (1 very satisfied,
    2 satisfied, 3 not satisfied). Any other key is invalid and asked again.
    Returns the rating or None."""
    for _ in range(attempts):
        reply = yield Collect("survey", 6, 1)
        if not isinstance(reply, Input) or reply.kind is not InputKind.KEYS:
            return None
        if reply.digits in {str(rating) for rating in SATISFACTION_SCALE}:
            yield Play(("survey_thanks",))
            return int(reply.digits)
        again = yield Play(("invalid_key",))
        if _hung_up(again):
            return None
    return None
