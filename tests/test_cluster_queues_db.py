"""Queue records from two nodes (issue 15): each row keeps the node it was on,
the same Asterisk uniqueid on two nodes is two calls, and the statistics page
(from the records and from the daily roll-up) sums a hotline's queue over its
owner and the standby."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.agi.server import HotlineAgi
from ivr.call_log import CallEnd, CallLog, CallStart
from ivr.config import load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call, utc_now
from ivr.queue_records.models import AgentSession, QueueCall
from ivr.reports.call_rollup import roll_up
from ivr.web.statistics_store import statistics
from queue_manager.manager import QueueManager
from tests.rig.postgres import fresh_database_url
from tests.test_cluster_config import _cluster
from tests.test_cluster_queues import T0, ZONE, ev, member_added
from tests.test_tenancy import B_QUEUE, A, write_config

pytestmark = pytest.mark.db


class _Node:
    def __init__(self, link: Any) -> None:
        self.link = link


def test_records_carry_their_node_and_statistics_sum_a_hotline_over_nodes(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path, _cluster()))
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    day = datetime.fromtimestamp(T0, UTC).astimezone(ZONE).date()

    async def run() -> None:
        manager = QueueManager(config, sessions)
        assert manager.recorder is not None
        manager.recorder.start()
        owner, standby = manager.models["node-a"], manager.models["standby"]
        for model in (owner, standby):
            model.clock = lambda: T0 + 200
            model.resync([])
            member_added(_Node(manager.links[model.node]), "operator", "PJSIP/dtv-01")  # type: ignore[arg-type]
        # Owner: one answered after 10 s. Standby (after a failover): the same
        # uniqueid answered after 40 s, and one caller who hung up waiting.
        for model, hold in ((owner, 10), (standby, 40)):
            model.apply(
                ev(
                    "QueueCallerJoin",
                    T0,
                    Queue="operator",
                    Uniqueid="1800000000.5",
                    Channel="PJSIP/trunk-1",
                    CallerIDNum="0912000005",
                    Position=1,
                )
            )
            model.apply(
                ev(
                    "QueueCallerLeave",
                    T0 + hold,
                    Queue="operator",
                    Uniqueid="1800000000.5",
                    Position=1,
                )
            )
            model.apply(
                ev(
                    "AgentConnect",
                    T0 + hold,
                    Queue="operator",
                    Uniqueid="1800000000.5",
                    Interface="PJSIP/dtv-01",
                    MemberName="dtv01",
                    HoldTime=hold,
                    RingTime=1,
                )
            )
            model.apply(ev("AgentComplete", T0 + hold + 60, Queue="operator",
                           Uniqueid="1800000000.5", Interface="PJSIP/dtv-01",
                           MemberName="dtv01", HoldTime=hold, TalkTime=60,
                           Reason="caller"))  # fmt: skip
        standby.apply(
            ev(
                "QueueCallerJoin",
                T0 + 5,
                Queue="operator",
                Uniqueid="1800000000.9",
                Channel="PJSIP/trunk-2",
                CallerIDNum="0912000009",
                Position=1,
            )
        )
        standby.apply(
            ev(
                "QueueCallerAbandon",
                T0 + 25,
                Queue="operator",
                Uniqueid="1800000000.9",
                Position=1,
                OriginalPosition=1,
                HoldTime=20,
            )
        )
        standby.apply(ev("QueueCallerLeave", T0 + 25, Queue="operator",
                         Uniqueid="1800000000.9", Position=1))  # fmt: skip
        await manager.recorder.flush()
        await manager.recorder.close()
        manager.db.close(wait=True)

    asyncio.run(run())
    with sessions() as session:
        calls = sorted(
            (r.node, r.uniqueid, r.outcome, r.wait_seconds)
            for r in session.scalars(select(QueueCall))
        )
        members = sorted((r.node, r.interface) for r in session.scalars(select(AgentSession)))
    assert calls == [
        ("node-a", "1800000000.5", "answered", 10.0),
        ("standby", "1800000000.5", "answered", 40.0),
        ("standby", "1800000000.9", "abandoned", 20.0),
    ]
    assert members == [("node-a", "PJSIP/dtv-01"), ("standby", "PJSIP/dtv-01")]
    a_queues = [q.id for q in config.queues_of(A)]
    expected = {"queue_answered": 2, "queue_abandoned": 1, "average_wait_seconds": 25.0}
    for use_rollup in (False, True):
        page = statistics(sessions, day, day, ZONE, (A, a_queues), use_rollup=use_rollup)
        assert {k: page[k] for k in expected} == expected
        other = statistics(sessions, day, day, ZONE, ("ha-noi-hcc", [B_QUEUE]))
        assert other["queue_answered"] == 0 and other["queue_abandoned"] == 0
        # The daily roll-up (the day is over) gives the same per-hotline figures.
        assert roll_up(sessions, datetime.fromtimestamp(T0, UTC) + timedelta(days=3)) >= 1
    engine.dispose()


async def test_a_fastagi_process_forgets_calls_whose_hangup_reached_another(
    tmp_path: Path,
) -> None:
    """Two ``hotline serve --only agi`` processes: a call's entry reached this one,
    its hangup handler the other, which closed the record. This process no
    longer counts the call as up: its sweep and its drain do not wait for it,
    and its list of live calls does not grow with every such call."""
    config = load_config(write_config(tmp_path, _cluster()))
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    this_log, other_log = CallLog(sessions), CallLog(sessions)
    agi = HotlineAgi(config, this_log)
    try:
        for uniqueid in ("node-a-1800000000.1", "standby-1800000000.1"):
            await this_log.call_started(
                CallStart(uniqueid, uniqueid, A, "PJSIP/trunk-000001", "0912000001", "1022",
                          utc_now())
            )  # fmt: skip
            agi.live[uniqueid] = time.monotonic()

        def hung_up_elsewhere(uniqueid: str) -> Any:
            return other_log.call_ended(
                CallEnd(uniqueid=uniqueid, route="queue:operator", dial_status="",
                        answered_epoch=None, answered_by="", queue_member="",
                        ended_at=utc_now())
            )  # fmt: skip

        await hung_up_elsewhere("node-a-1800000000.1")
        assert await agi.sweep_stale_calls() == 0  # nothing closed: none is stale
        assert set(agi.live) == {"standby-1800000000.1"}
        await hung_up_elsewhere("standby-1800000000.1")
        assert await agi.drain(timeout=5.0) == 0  # no call left waiting for its hangup
        assert agi.live == {}
        with sessions() as session:
            outcomes = set(session.scalars(select(Call.outcome)))
        assert "in_progress" not in outcomes and "interrupted" not in outcomes
    finally:
        await agi.close()
        await asyncio.to_thread(this_log.close)
        await asyncio.to_thread(other_log.close)
        engine.dispose()
