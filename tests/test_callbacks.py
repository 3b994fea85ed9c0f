"""The callback dispatcher's rules, with a live model filled by hand (no PBX)."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import utc_now
from ivr.queue_records.models import CallbackRequest
from queue_manager.callbacks import CallbackDispatcher, national
from queue_manager.model import DailyTotals, LiveModel, Member, QueueState, WaitingCaller
from tests.rig.postgres import fresh_database_url

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"
pytestmark = pytest.mark.db


@pytest.fixture
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def sessions(tmp_path: Path) -> Any:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    return make_session_factory(make_engine(url))


def model_with(callers: list[float], free_agents: int, busy_agents: int = 0) -> LiveModel:
    model = LiveModel("local", timezone="Asia/Ho_Chi_Minh", queue_settings={"operator": (30, 0)})
    queue = QueueState("operator", 30, 0, DailyTotals(utc_now().date()))
    for index, joined in enumerate(callers):
        queue.callers[f"c{index}"] = WaitingCaller(
            f"c{index}", "PJSIP/x", "09", index + 1, joined, index + 1
        )
    for index in range(free_agents):
        queue.members[f"PJSIP/free{index}"] = Member(f"PJSIP/free{index}", "free", device=1)
    for index in range(busy_agents):
        queue.members[f"PJSIP/busy{index}"] = Member(
            f"PJSIP/busy{index}", "busy", talking_to="x", device=2
        )
    model.queues["operator"] = queue
    return model


def request(sessions: Any, joined_at: float, number: str = "+84912000001") -> int:
    with sessions.begin() as session:
        row = CallbackRequest(
            queue="operator",
            hotline_id="bac-tu-liem",
            caller_number=number,
            call_uniqueid=f"u{joined_at}",
            case_code="1",
            joined_at=joined_at,
        )
        session.add(row)
        session.flush()
        return row.id


async def test_no_call_back_ahead_of_a_caller_who_waited_longer(
    config: HotlineConfig, sessions: Any
) -> None:
    sent: list[dict[str, str]] = []
    request(sessions, joined_at=1000.0)
    dispatcher = CallbackDispatcher(
        config, sessions, {"local": model_with([900.0], free_agents=1)}, sent.append
    )
    assert await dispatcher.tick() == []  # someone still waiting joined at 900
    dispatcher.models = {"local": model_with([1100.0], free_agents=1)}
    assert len(await dispatcher.tick()) == 1  # the later joiner does not block it
    assert sent[0]["Channel"] == "PJSIP/0912000001@pstn"
    assert sent[0]["Context"] == "hotline-callback"


async def test_no_call_back_while_the_queue_is_closed_even_with_an_idle_agent(
    config: HotlineConfig, sessions: Any
) -> None:
    """A caller promised a call "when the office opens" (after hours, or at lunch)
    is not rung back until the queue's own schedule opens it."""
    operator = next(q for q in config.queues if q.id == "operator")
    queues = [
        q.model_copy(update={"schedule": "office"}) if q is operator else q for q in config.queues
    ]
    office_only = config.model_copy(update={"queues": queues})
    zone = ZoneInfo(config.timezone)
    # A working day after the request was written (its rows carry the real time).
    day = (utc_now() + timedelta(days=1)).astimezone(zone).date()
    while day.weekday() >= 5 or any(h.date == day for h in config.holidays):
        day += timedelta(days=1)
    now = [datetime.combine(day, time(12, 10), zone)]  # lunch break (12:00-13:30)
    sent: list[dict[str, str]] = []
    request(sessions, joined_at=1000.0)
    dispatcher = CallbackDispatcher(
        office_only,
        sessions,
        {"local": model_with([], free_agents=1)},
        sent.append,
        clock=lambda: now[0],
    )
    assert await dispatcher.tick() == []
    now[0] = datetime.combine(day, time(13, 30), zone)  # the afternoon opens
    assert len(await dispatcher.tick()) == 1 and len(sent) == 1


async def test_one_call_back_per_free_agent_oldest_first(
    config: HotlineConfig, sessions: Any
) -> None:
    sent: list[dict[str, str]] = []
    older = request(sessions, joined_at=500.0, number="+84912000002")
    request(sessions, joined_at=600.0, number="+84912000003")
    dispatcher = CallbackDispatcher(
        config, sessions, {"local": model_with([], free_agents=1, busy_agents=2)}, sent.append
    )
    assert await dispatcher.tick() == [older]
    assert await dispatcher.tick() == []  # the one free agent is promised already
    assert len(sent) == 1 and "0912000002" in sent[0]["Channel"]


async def test_unanswered_call_backs_retry_then_fail(config: HotlineConfig, sessions: Any) -> None:
    request_id = request(sessions, joined_at=1.0)
    now = [utc_now()]
    dispatcher = CallbackDispatcher(
        config,
        sessions,
        {"local": model_with([], free_agents=1)},
        lambda action: None,
        clock=lambda: now[0],
    )
    attempts = config.queue("operator").callback_attempts  # type: ignore[union-attr]
    for _ in range(attempts):
        assert await dispatcher.tick() == [request_id]
        assert await dispatcher.tick() == []  # ringing: not dialled twice
        now[0] += timedelta(hours=1)  # nobody answered: the attempt expires …
        assert await dispatcher.tick() == []
        now[0] += timedelta(hours=1)  # … and the retry is due after the pause
    with sessions() as session:
        row = session.get(CallbackRequest, request_id)
        assert row is not None and row.status == "failed" and row.attempts == attempts


def test_national_number() -> None:
    assert national("+84912345678") == "0912345678"


class OffLoopSessions:
    """A session factory that refuses to run a query on the event loop's thread."""

    def __init__(self, sessions: Any, loop_thread: int) -> None:
        self._sessions = sessions
        self._loop_thread = loop_thread
        self.used = 0

    def _check(self) -> None:
        assert threading.get_ident() != self._loop_thread, "a query ran on the event loop"
        self.used += 1

    def __call__(self) -> Any:
        self._check()
        return self._sessions()

    def begin(self) -> Any:
        self._check()
        return self._sessions.begin()


async def test_call_back_checks_never_query_on_the_event_loop(
    config: HotlineConfig, sessions: Any
) -> None:
    """The loop also serves every live call's AGI session: a slow database must
    not stall it, so each query of a tick runs in a thread."""
    first = request(sessions, joined_at=500.0, number="+84912000004")
    request(sessions, joined_at=600.0, number="+84912000005")
    guarded = OffLoopSessions(sessions, threading.get_ident())
    dispatcher = CallbackDispatcher(
        config,
        guarded,
        {"local": model_with([], free_agents=1)},
        lambda action: None,  # type: ignore[arg-type]
    )
    assert await dispatcher.tick() == [first]
    assert await dispatcher.tick() == []  # the one free agent is promised: counted off the loop
    assert guarded.used >= 5
