"""Plain-text views of the call log for the command line."""

from __future__ import annotations

from sqlalchemy import select

from ivr.config.schema import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import Call


def format_call(call: Call) -> str:
    def when(value: object) -> str:
        return value.strftime("%H:%M:%S") if value is not None else "-"  # type: ignore[attr-defined]

    return (
        f"call #{call.id} uniqueid={call.uniqueid} linkedid={call.linkedid}\n"
        f"  hotline={call.hotline_id} dialed={call.dialed_number} "
        f"caller={'(withheld)' if call.caller_withheld else call.caller_number}"
        f" (raw {call.caller_raw!r})\n"
        f"  keys={call.keys_pressed!r} area={call.area_code} route={call.route_kind}: "
        f"{call.route_target}\n"
        f"  started={when(call.started_at)} answered={when(call.answered_at)} "
        f"ended={when(call.ended_at)} UTC  answered_by={call.answered_by} "
        f"dial_status={call.dial_status} outcome={call.outcome} last_step={call.last_step}"
    )


def recent_calls(config: HotlineConfig, limit: int = 10) -> list[Call]:
    engine = make_engine(config.database_url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(Call).order_by(Call.id.desc()).limit(limit)))
    finally:
        engine.dispose()


def print_recent_calls(config: HotlineConfig, limit: int = 10) -> None:
    calls = recent_calls(config, limit)
    if not calls:
        print("no calls recorded yet")
    for call in calls:
        print(format_call(call))
