"""Answers the call flow's case questions from the case records."""

from __future__ import annotations

import asyncio
import logging

from ivr.cases.service import CaseService
from ivr.flow.steps import CaseInfo, FindCases

logger = logging.getLogger(__name__)


class CaseRecords:
    """:class:`ivr.agi.executor.CaseDirectory` over :class:`CaseService`.

    A failing lookup answers "nothing found": the caller then hears "not found"
    and can reach an operator, which is better than a dropped call.
    """

    def __init__(self, service: CaseService) -> None:
        self._service = service

    async def find(self, request: FindCases) -> tuple[CaseInfo, ...]:
        try:
            return await asyncio.to_thread(self._find, request)
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
        return tuple(
            CaseInfo(c.code, c.status, c.due_date, c.responsible_unit) for c in cases
        )
