"""The one intake of the written channels (issue 14), as the web app holds it.

Every channel served by the web app (the public form, the SMS and Zalo
webhooks, Open311) reaches :class:`ivr.intake.service.IntakeService` through
``request.app[INTAKE]`` (or :func:`intake_of`), so one app holds one intake
whatever the number of channels. Handlers call it through
:func:`ivr.web.state.db` (its methods are synchronous database work).

Tests replace it with a fake by setting ``app[INTAKE]`` before the app starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.service import CaseService
from ivr.config.source import ConfigSource
from ivr.contracts.channels import ContactKind
from ivr.intake.types import IntakeResult, Submission

logger = logging.getLogger(__name__)


class Intake(Protocol):
    """What the channels use of :class:`ivr.intake.service.IntakeService`."""

    def submit(self, submission: Submission) -> IntakeResult: ...

    def status(self, case_code: str, contact: tuple[ContactKind, str] | None) -> Any | None: ...

    def thread(self, case_id: int) -> list[Any]: ...


INTAKE = web.AppKey("hotline_intake", Intake)


def intake_of(request: web.Request) -> Intake:
    """The app's intake, or 503 when this app was built without one."""
    intake = request.app.get(INTAKE)
    if intake is None:
        raise web.HTTPServiceUnavailable(text="the intake is not available")
    return intake


def attachments_root(recordings_root: Path) -> Path:
    """Where the written channels' attachments live: beside the recordings
    (same retention and access rules), as the forwards' do."""
    return recordings_root / "attachments"


def install_intake(
    app: web.Application,
    sessions: sessionmaker[Session],
    source: ConfigSource,
    cases: CaseService,
    recordings_root: Path,
) -> None:
    """Put the process's intake on ``app`` (kept when a test set one already)."""
    if INTAKE in app:
        return
    # Imported here: the intake service is only needed by an app that serves a channel.
    from ivr.intake.service import IntakeService

    app[INTAKE] = IntakeService(
        sessions, source, cases=cases, attachments_root=attachments_root(recordings_root)
    )
