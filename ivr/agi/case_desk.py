"""What the FastAGI handlers ask of case records and recordings, off the loop.

It sits with the FastAGI adapter because it joins two domain packages at
hangup (a voicemail becomes a case, the call's recordings become
transcription jobs); cases and transcription themselves do not import each
other's services.

Synchronous database work runs on a one-thread :class:`~ivr.db.executor.DbExecutor`
of its own, so the asyncio loop never blocks and this work stays in order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts.statuses import RouteKind
from ivr.db.executor import DbExecutor
from ivr.db.models import Call, utc_now
from ivr.phone import normalise_caller
from ivr.transcription.jobs import LEG_SUFFIXES, register_recordings

logger = logging.getLogger(__name__)

VOICEMAIL_CHANNEL = "voicemail"


class CaseDesk:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig | ConfigSource,
        writer: Callable[..., Awaitable[Any]] | None = None,
        cases: CaseService | None = None,
    ) -> None:
        """``writer`` (the call log's batching writer) takes the rows written at
        every hangup, so a busy hotline commits them in batches. ``cases`` is the
        process's case service (shared with the console); one is made when the
        desk is built alone."""
        self.sessions = sessions
        self.config_source = ConfigSource.of(config)
        self._writer = writer
        self.cases = cases or CaseService(sessions, self.config_source)
        self._db = DbExecutor("case-desk", 1)

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    def close(self) -> None:
        self._db.close(wait=True)

    async def call_ended(self, uniqueid: str, route: str, rec_base: str) -> None:
        """After hangup: recordings and the transcription job; a voicemail whose
        caller hung up before the code was read still becomes a case."""
        if rec_base and self._writer is not None and route != RouteKind.VOICEMAIL:
            settle = self.config.transcription.settle_seconds
            found = await self._writer(register_recordings, uniqueid, rec_base, utc_now(), settle)
            if found:
                logger.info("call %s: %d recording files registered", uniqueid, found)
            return
        await self._db.run(self._call_ended, uniqueid, route, rec_base)

    def rated(self, uniqueid: str, rating: int) -> None:
        """The survey answer on the case opened from the call, through the call
        log's writer like the call's own rating (the caller never waits)."""
        if self._writer is not None:
            self._writer(_rate_case_of_call, uniqueid, rating)

    async def voicemail_saved(
        self, uniqueid: str, rec_base: str, hotline_id: str, caller_raw: str
    ) -> Case | None:
        return await self._db.run(self._voicemail_case, uniqueid, rec_base, hotline_id, caller_raw)

    def _call_ended(self, uniqueid: str, route: str, rec_base: str) -> None:
        if not rec_base:
            return
        if route == RouteKind.VOICEMAIL and Path(rec_base + LEG_SUFFIXES["voicemail"]).is_file():
            self._voicemail_case(uniqueid, rec_base, "", "")
        settle = self.config.transcription.settle_seconds
        # A bare connection: this runs at every hangup and needs no ORM session.
        with self.sessions.kw["bind"].begin() as connection:
            found = register_recordings(connection, uniqueid, rec_base, utc_now(), settle)
        if found:
            logger.info("call %s: %d recording files registered", uniqueid, found)

    def _voicemail_case(
        self, uniqueid: str, rec_base: str, hotline_id: str, caller_raw: str
    ) -> Case | None:
        path = Path(rec_base + LEG_SUFFIXES["voicemail"])
        if not path.is_file() or path.stat().st_size <= 44:  # a bare WAV header
            logger.info("call %s left no message; no case", uniqueid)
            return None
        with self.sessions() as session:
            call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
        known = self.config.hotline_or_sole(hotline_id or (call.hotline_id if call else None))
        caller = call.caller_number if call else normalise_caller(caller_raw).e164
        with self.sessions.begin() as session:  # first, so open_case links them
            register_recordings(
                session, uniqueid, rec_base, utc_now(), self.config.transcription.settle_seconds
            )
        if known is None:
            # Several hotlines and neither the dialplan nor a call record says
            # whose: the message is kept (its recording is registered), but no
            # case goes to a hotline chosen at random.
            logger.error("call %s: voicemail of an unknown hotline; recording kept, no case",
                         uniqueid)  # fmt: skip
            return None
        hotline = known.id
        return self.cases.open_case(
            channel=VOICEMAIL_CHANNEL,
            hotline_id=hotline,
            caller_number=caller,
            area_code=call.area_code if call else None,
            summary="",  # written by the official who listens to it (Decree 20)
            call_uniqueid=uniqueid,
            actor="ivr",
        )


def _rate_case_of_call(connection: Connection, uniqueid: str, rating: int) -> None:
    connection.execute(
        update(Case).where(Case.call_uniqueid == uniqueid).values(satisfaction=rating)
    )
