"""Who may read which calls and cases: one scope per request, computed from the
signed-in user, and the one function that masks phone numbers.

The role check in :mod:`ivr.web.app` says which *routes* a user may call; the
scope says which *rows* those routes may show. Both are enforced on the server:
lists filter in SQL (:meth:`AccessScope.call_condition`), single records are
checked before anything is rendered, and a refusal is a 403 that is audited.

- administrators: every call and case of this deployment, with full numbers;
- supervisors: the calls and cases of their hotline (``web_users.hotline_id``),
  or of every hotline when none is set, with full numbers; and of the live
  picture and the figures only their hotline's: the wallboard (page, JSON,
  websocket) shows its queues and agents, statistics and their exports count
  its calls, cases and queues, and pausing, logging off or listening in on an
  agent of another hotline is refused (403, audited);
- unit users (``unit``, a clerk of a responsible unit, ``web_users.unit_code``):
  no calls, no live picture, and of the cases only those forwarded to their
  unit (``case_forwards``), through the forwarding routes;
- agents: the calls their agent answered (``queue_calls.agent_id``, or the
  call record's ``answered_by`` naming their phone), the cases they opened and
  the cases linked to those calls; plus the call ringing or answered at their
  phone right now (the live hub knows it). Their hotline is their agent's
  (``Agent.hotline``): their board shows only its queues. Written cases (SMS,
  email, Zalo, web form, Open311: ``WRITTEN_CHANNELS``) come with no call to
  answer: the agents of the case's hotline work them from the queue of written
  work (:mod:`ivr.web.written_work`), so they may read them.

Queues and agents belong to a hotline in the config (``Queue.hotline``,
``Agent.hotline``; implied when there is one): the queue manager's data is
keyed by queue, and is filtered here by the queue's owner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from ivr.cases.models import Case, CaseEvent, CaseForward
from ivr.config.schema import Agent, HotlineConfig
from ivr.contracts.channels import WRITTEN_CHANNELS
from ivr.db.models import Call
from ivr.queue_records.models import QueueCall
from ivr.web.models import AGENT, SUPERVISOR, UNIT, WebUser

logger = logging.getLogger(__name__)

MASK = "x"
_VN_PREFIX = "+84"


def mask_number(number: str | None) -> str:
    """A phone number with all but its last three digits hidden; a Vietnamese
    E.164 number keeps its country code and the two digits naming the network
    (``+84912000678`` → ``+84 91x xxx 678``), which identify nobody."""
    if not number:
        return ""
    if number.startswith(_VN_PREFIX) and number[3:].isdigit() and len(number) > 8:
        national = number[3:]
        hidden = national[:2] + MASK * (len(national) - 5) + national[-3:]
        return f"{_VN_PREFIX} {hidden[:3]} {hidden[3:-3]} {hidden[-3:]}"
    digits = [c for c in number if c.isdigit()]
    keep = 3 if len(digits) > 3 else max(len(digits) - 1, 0)
    shown = len(digits) - keep
    out, seen = [], 0
    for char in number:
        if char.isdigit():
            out.append(char if seen >= shown else MASK)
            seen += 1
        elif char == "+":
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class AccessScope:
    """What one signed-in user may read. ``agent_id`` is set for agents only."""

    username: str
    role: str
    agent_id: str | None = None
    phone_interface: str = ""  # "PJSIP/<phone>" of the agent's phone
    # A supervisor limited to one hotline, or an agent's own hotline.
    hotline_id: str | None = None
    unit_code: str | None = None  # a unit user's responsible unit

    @classmethod
    def of(cls, user: WebUser, config: HotlineConfig) -> AccessScope:
        if user.role == UNIT:
            # A unit that left the config sees nothing (no unit matches None).
            known = user.unit_code and config.unit(user.unit_code) is not None
            return cls(user.username, user.role, unit_code=user.unit_code if known else None)
        return cls._staff(user, config)

    @classmethod
    def _staff(cls, user: WebUser, config: HotlineConfig) -> AccessScope:
        if user.role == SUPERVISOR and user.hotline_id:
            return cls(user.username, user.role, hotline_id=user.hotline_id)
        if user.role != AGENT:
            return cls(user.username, user.role)
        agent = next((a for a in config.agents if a.id == user.agent_id), None)
        return cls(
            user.username,
            user.role,
            # An agent user whose agent left the config sees nothing.
            agent_id=agent.id if agent else None,
            phone_interface=f"PJSIP/{agent.phone}" if agent else "",
            hotline_id=config.agent_owner(agent.id) if agent else None,
        )

    @property
    def sees_everything(self) -> bool:
        return self.role not in (AGENT, UNIT) and self.hotline_id is None

    @property
    def is_unit(self) -> bool:
        return self.role == UNIT

    @property
    def is_agent(self) -> bool:
        return self.role == AGENT

    @property
    def full_numbers(self) -> bool:
        """May this user see whole numbers of calls that are not their own?"""
        return self.role not in (AGENT, UNIT)

    def sees_forward(self, unit_code: str, hotline_id: str | None) -> bool:
        """May this user read and act on a forward of a case to ``unit_code``:
        a unit user, only its unit's; the hotline's staff, their hotline's."""
        if self.is_unit:
            return self.unit_code is not None and unit_code == self.unit_code
        return self.sees_hotline(hotline_id)

    # -- the live picture: queues and agents belong to hotlines --------------------

    def sees_hotline(self, hotline_id: str | None) -> bool:
        """May this user see what belongs to this hotline (None: to no known one)?"""
        if self.sees_everything:
            return True
        return hotline_id is not None and hotline_id == self.hotline_id

    def sees_queue(self, config: HotlineConfig, queue_id: str) -> bool:
        return self.sees_hotline(config.queue_owner(queue_id))

    def sees_agent(self, config: HotlineConfig, agent_id: str) -> bool:
        return self.sees_hotline(config.agent_owner(agent_id))

    def agents(self, config: HotlineConfig) -> list[Agent]:
        """The agents this user may see in lists and filters."""
        return [a for a in config.agents if self.sees_agent(config, a.id)]

    def queues(self, config: HotlineConfig) -> list[str]:
        """The ids of the queues this user may see."""
        return [q.id for q in config.queues if self.sees_queue(config, q.id)]

    def board(self, config: HotlineConfig, board: dict[str, Any]) -> dict[str, Any]:
        """The wallboard as this user may see it: the queues of their hotline,
        and in them no agent of another hotline (a queue's members are its
        hotline's by config, but a phone may be shared)."""
        if self.sees_everything:
            return board
        by_interface = {f"PJSIP/{a.phone}": a.id for a in config.agents}
        queues = []
        for queue in board["queues"]:
            if not self.sees_queue(config, queue["id"]):
                continue
            agents = [
                member
                for member in queue["agents"]
                if member.get("interface") not in by_interface
                or self.sees_agent(config, by_interface[member["interface"]])
            ]
            queues.append({**queue, "agents": agents})
        overdue = board.get("overdue_forwards", {})
        mine = {h: n for h, n in overdue.items() if self.sees_hotline(h)}
        return {**board, "queues": queues, "overdue_forwards": mine}

    def number(self, number: str | None, own: bool) -> str:
        """The number as this user may see it: whole for supervisors and for
        the agent's own calls, masked otherwise."""
        if number is None:
            return ""
        return number if (own or self.full_numbers) else mask_number(number)

    # -- SQL ------------------------------------------------------------------------

    def handled_calls(self) -> ColumnElement[bool]:
        """Calls this agent answered, as a condition on :class:`Call`."""
        if self.agent_id is None:
            return false()
        # Correlated EXISTS, one probe of (uniqueid, agent_id) per call looked
        # at: an IN (subquery) under OR becomes a hash of every call the agent
        # ever answered, hundreds of thousands at a province's scale.
        answered = exists().where(
            QueueCall.uniqueid == Call.uniqueid, QueueCall.agent_id == self.agent_id
        )
        conditions: list[ColumnElement[bool]] = [answered]
        if self.phone_interface:
            conditions.append(Call.answered_by == self.phone_interface)
        return or_(*conditions)

    def call_condition(self) -> ColumnElement[bool]:
        """The calls this user may read, as a WHERE condition on :class:`Call`."""
        if self.sees_everything:
            return true()
        if self.is_unit:
            return false()
        if not self.is_agent:
            return Call.hotline_id == self.hotline_id
        return self.handled_calls()

    def case_condition(self) -> ColumnElement[bool]:
        """The cases this user may read, as a WHERE condition on :class:`Case`."""
        if self.sees_everything:
            return true()
        if self.is_unit:
            if self.unit_code is None:
                return false()
            forwarded = select(CaseForward.case_id).where(CaseForward.unit_code == self.unit_code)
            return Case.id.in_(forwarded)
        if not self.is_agent:
            return Case.hotline_id == self.hotline_id
        if self.agent_id is None:
            return false()
        # Correlated EXISTS for the same reason as in handled_calls: each is an
        # index probe per case looked at.
        opened = exists().where(
            CaseEvent.case_id == Case.id,
            CaseEvent.actor == self.username,
            CaseEvent.action == "opened",
        )
        # Answered by this agent per the queue record (which may exist before
        # the call record is written), or per the call record's phone.
        queue_answered = exists().where(
            QueueCall.uniqueid == Case.call_uniqueid, QueueCall.agent_id == self.agent_id
        )
        conditions: list[ColumnElement[bool]] = [opened, queue_answered]
        if self.hotline_id is not None:
            # The hotline's written work is every one of its agents' to take.
            conditions.append(
                and_(Case.hotline_id == self.hotline_id, Case.channel.in_(WRITTEN_CHANNELS))
            )
        if self.phone_interface:
            conditions.append(
                exists().where(
                    Call.uniqueid == Case.call_uniqueid, Call.answered_by == self.phone_interface
                )
            )
        return or_(*conditions)
