"""Answers the call flow's case questions from the case records."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from zoneinfo import ZoneInfo

from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.contracts.statuses import CaseStatus
from ivr.db.executor import DbExecutor
from ivr.flow.steps import CaseInfo, FindCases

logger = logging.getLogger(__name__)


class CaseRecords:
    """:class:`ivr.agi.executor.CaseDirectory` over :class:`CaseService`.

    Lookups run on ``executor`` (the IVR's own bounded :class:`DbExecutor`, so a
    stalled database can hold those threads but never the event loop or the
    console's executor) and are given up after ``timeout`` seconds. A failing or late
    lookup answers "nothing found": the caller then hears "not found" and can
    reach an operator, which is better than a dropped call or a long silence.
    """

    def __init__(self, service: CaseService, executor: DbExecutor, timeout: float = 4.0) -> None:
        self._service = service
        self._executor = executor
        self._timeout = timeout

    async def find(self, request: FindCases) -> tuple[CaseInfo, ...]:
        try:
            return await asyncio.wait_for(self._executor.run(self._find, request), self._timeout)
        except TimeoutError:
            logger.error("case lookup gave up after %.1f s (database slow or away)", self._timeout)
            return ()
        except Exception:
            logger.exception("case lookup failed for %s", request)
            return ()

    def _find(self, request: FindCases) -> tuple[CaseInfo, ...]:
        if request.code is not None:
            case = self._service.find_by_code(request.code)
            cases = [case] if case is not None else []
        elif request.caller is not None:
            cases = self._service.open_cases_for_caller(request.caller)
        else:
            cases = []
        zone = ZoneInfo(self._service.config_source.current.timezone)
        return tuple(
            CaseInfo(
                c.code, c.status, c.due_date, c.responsible_unit, answered_on=_answered_on(c, zone)
            )
            for c in cases
        )


def _answered_on(case: Case, zone: ZoneInfo) -> date | None:
    """The local day ``case`` was answered: its last move to ``answered`` in the
    history, else (closed without one, say by an import) the day it was closed.
    None for a case that is not answered or closed: open cases are listed
    without their history, which is not read for them."""
    if case.status not in (CaseStatus.ANSWERED, CaseStatus.CLOSED):
        return None
    answered = [
        event.at
        for event in case.history
        if event.action == "status" and event.to_status == CaseStatus.ANSWERED
    ]
    when = max(answered) if answered else case.closed_at
    return when.astimezone(zone).date() if when is not None else None
