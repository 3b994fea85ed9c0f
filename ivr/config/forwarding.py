"""Config for forwarding cases to the units responsible (issue 13).

``units:`` lists the departments, agencies and ward committees a hotline
forwards cases to, with their contacts; ``forwarding:`` says how many working
days a unit has to answer (a default per kind of unit and per topic; a forward
may set its own) and when reminders go out. Cross-references (a unit's area and
hotline) are checked in :mod:`ivr.config.references`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ivr.config.safe_text import SafeTitle

_ID = r"^[a-z0-9][a-z0-9_-]*$"
UnitCode = Annotated[str, Field(pattern=_ID, min_length=1, max_length=64)]
UnitKind = Literal["department", "agency", "ward_committee"]
UNIT_KINDS: tuple[UnitKind, ...] = ("department", "agency", "ward_committee")
# An address the SMTP sender can take as it is: one mailbox, no display name,
# no line breaks (a header injection would need one).
_EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
_PHONE = r"^\+?[0-9]{3,15}$"
Email = Annotated[str, Field(pattern=_EMAIL, max_length=254)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponsibleUnit(_Strict):
    """A body a case can be forwarded to: a department (phòng), an agency
    (cơ quan) or a ward/commune people's committee (UBND phường/xã)."""

    code: UnitCode
    name: SafeTitle = Field(min_length=1)
    kind: UnitKind
    email: Email | None = None
    sms: Annotated[str, Field(pattern=_PHONE)] | None = None
    # The administrative unit it answers for (a ward committee: its ward).
    area: UnitCode | None = None
    # The hotline whose cases it receives, as queues have one; None with one
    # hotline (implied) or for a unit every hotline of the deployment may use.
    hotline: UnitCode | None = None


class KindDeadline(_Strict):
    kind: UnitKind
    working_days: int = Field(ge=1, le=365)


class TopicDeadline(_Strict):
    topic: UnitCode
    working_days: int = Field(ge=1, le=365)


class ForwardingSection(_Strict):
    """Deadlines and reminders of forwarded cases. A topic's rule wins over the
    kind's, which wins over ``default_working_days``; a forward may give its own."""

    default_working_days: int = Field(10, ge=1, le=365)
    by_kind: list[KindDeadline] = []
    by_topic: list[TopicDeadline] = []
    # A reminder this many working days before the due date (0: on the due date).
    remind_working_days_before: int = Field(1, ge=0, le=30)
    # Who hears of an overdue forward besides the wallboard: per hotline id,
    # its supervisors' mailboxes.
    supervisor_emails: dict[UnitCode, list[Email]] = {}
    # How often `hotline serve` looks for reminders and overdue forwards.
    check_every_minutes: int = Field(15, ge=0, le=1440)  # 0: not scheduled
    # The console's address as units reach it, for the link in their email and
    # SMS ("https://hotline.example.gov.vn"); None: the link is a path only.
    portal_base_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None

    def working_days_for(self, kind: str, topic: str | None) -> int:
        """The default deadline of a forward to a unit of ``kind`` about ``topic``."""
        for rule in self.by_topic:
            if topic is not None and rule.topic == topic:
                return rule.working_days
        for kind_rule in self.by_kind:
            if kind_rule.kind == kind:
                return kind_rule.working_days
        return self.default_working_days
