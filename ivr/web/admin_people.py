"""The people of a hotline, as forms (issue 16): its queues and who is always
in them, its agents and their console users, and the phones they answer on.

Every form builds the new config text from the file as saved now
(:meth:`~ivr.config_applier.ConfigApplier.current_text`) with
:mod:`ivr.config.yaml_edit`, changing only the lines of the fields the clerk
changed, and hands it to :func:`ivr.web.config_changes.preview_change`: the
same checks as ``check-config``, the difference in words, a reason, Apply. No
value is checked here a second time, so a form can never accept what
``check-config`` refuses, nor refuse what it accepts.

Who may use them:

- queues and agents: administrators, and supervisors for their own hotline's
  (``web_users.hotline_id``; see :mod:`ivr.web.access`). A supervisor's request
  about another hotline's queue or agent, or one that would move an item to
  another hotline, is refused with a 403 and audited;
- phones: administrators only. A phone belongs to no hotline in the config
  (a chairman's phone may serve several), and its SIP secret opens the PBX.

A phone's SIP secret is never in the config file nor on any page but one: the
answer to "issue a secret" (:func:`ivr.config.phone_secrets.new_phone_secret`
writes it to the 0600 secrets file, Asterisk is re-rendered with it, and the
page showing it is not cached). Issuing again replaces it: nobody, the
administrator included, can read a secret back from the console.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, get_args
from urllib.parse import urlencode

import yaml
from aiohttp import web

from ivr.config import yaml_edit
from ivr.config.phone_secrets import new_phone_secret
from ivr.config.schema import Agent, HotlineConfig, Phone, Queue
from ivr.config_applier import ConfigApplier
from ivr.web import store
from ivr.web.access import AccessScope
from ivr.web.config_changes import preview_change
from ivr.web.i18n import N_, translator
from ivr.web.models import AGENT, SUPERVISOR
from ivr.web.rendering import error_page, form_or_json, refuse, render
from ivr.web.state import (
    ADMINS,
    LANGUAGE,
    WATCHERS,
    Route,
    audit,
    db,
    scope_of,
    state_of,
    user_of,
)

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = get_args(Queue.model_fields["strategy"].annotation)
# The queue's numbers a clerk sets (the rest stay in the expert editor).
QUEUE_NUMBERS = ("ring_seconds", "wrapup_seconds", "service_level_seconds", "max_wait_seconds")
# Where the roster engineer's week calendar lives (shifts × queues × agents).
ROSTER_PAGE = "/admin/roster"
_WHOLE_NUMBER = re.compile(r"^[0-9]{1,9}$")
# Asterisk's ring strategies in a clerk's words.
STRATEGY_LABELS = {
    "ringall": N_("Ring every free agent at once"),
    "leastrecent": N_("The agent who last answered longest ago"),
    "fewestcalls": N_("The agent with the fewest calls"),
    "rrmemory": N_("Each agent in turn"),
    "linear": N_("Always in the list's order"),
}

# -- building the new text -------------------------------------------------------------


def _raw(text: str) -> dict[str, Any]:
    """The file as plain data: which keys are written (a default is not)."""
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}


def _number(value: str) -> int | str:
    """A whole number as a number; anything else as typed, so that check-config
    refuses it with its own words (never a second, different check here)."""
    value = value.strip()
    return int(value) if _WHOLE_NUMBER.match(value) else value


def _set_fields(
    text: str, where: tuple[str | int, ...], written: dict[str, Any], defaults: dict[str, Any],
    new: dict[str, Any],
) -> str:  # fmt: skip
    """Set each of ``new``'s fields that differs from what the file says (or,
    for a field not written, from its default): an unchanged field keeps its
    line byte for byte, and a default is not written out."""
    for name, value in new.items():
        before = written[name] if name in written else defaults.get(name)
        if value != before:
            text = yaml_edit.set_value(text, (*where, name), value)
    return text


def _set_members(text: str, queue_index: int, written: dict[str, Any], new: list[str]) -> str:
    """A queue's fixed members as ``new``: appended and removed one by one so
    the list keeps its style and the other members their lines."""
    where: tuple[str | int, ...] = ("queues", queue_index, "members")
    if "members" not in written:
        return yaml_edit.set_value(text, where, new) if new else text
    current = [str(m) for m in written["members"] or []]
    for index in reversed(range(len(current))):  # from the end: indexes stay valid
        if current[index] not in new:
            text = yaml_edit.remove_item(text, (*where, index))
    for member in new:
        if member not in current:
            text = yaml_edit.append_item(text, where, member)
    return text


def _defaults(model: type[Any]) -> dict[str, Any]:
    return {
        name: field.default
        for name, field in model.model_fields.items()
        if not field.is_required() and field.default_factory is None
    } | {
        name: field.default_factory()  # type: ignore[call-arg,unused-ignore]
        for name, field in model.model_fields.items()
        if field.default_factory is not None
    }


@dataclass(frozen=True)
class QueueForm:
    """What the queue form sends: numbers as typed (check-config judges them)."""

    id: str
    title: str
    hotline: str | None
    strategy: str
    numbers: dict[str, int | str]
    members: list[str]

    @classmethod
    def parse(cls, form: Any, queue_id: str | None = None) -> QueueForm:
        return cls(
            id=queue_id or form.get("id", "").strip(),
            title=form.get("title", "").strip(),
            hotline=form.get("hotline", "").strip() or None,
            strategy=form.get("strategy", "").strip(),
            numbers={n: _number(form.get(n, "")) for n in QUEUE_NUMBERS if form.get(n, "") != ""},
            members=_unique(form.getall("members", []) if hasattr(form, "getall") else []),
        )


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def queue_text(text: str, queue_index: int | None, form: QueueForm) -> str:
    """The config text with the queue at ``queue_index`` (None: a new queue)
    as the form says."""
    fields: dict[str, Any] = {"title": form.title, "strategy": form.strategy or "leastrecent"}
    fields |= form.numbers
    if form.hotline is not None:
        fields["hotline"] = form.hotline
    if queue_index is None:
        item: dict[str, Any] = {"id": form.id}
        item |= {k: v for k, v in fields.items() if k == "title" or v != _defaults(Queue).get(k)}
        if form.members:
            item["members"] = form.members
        return yaml_edit.append_item(text, ("queues",), item)
    written = _raw(text)["queues"][queue_index]
    text = _set_fields(text, ("queues", queue_index), written, _defaults(Queue), fields)
    return _set_members(text, queue_index, written, form.members)


@dataclass(frozen=True)
class AgentForm:
    id: str
    name: str
    phone: str
    hotline: str | None
    queues: list[str]  # the queues the agent is always in

    @classmethod
    def parse(cls, form: Any, agent_id: str | None = None) -> AgentForm:
        return cls(
            id=agent_id or form.get("id", "").strip(),
            name=form.get("name", "").strip(),
            phone=form.get("phone", "").strip(),
            hotline=form.get("hotline", "").strip() or None,
            queues=_unique(form.getall("queues", []) if hasattr(form, "getall") else []),
        )


def agent_text(
    text: str, config: HotlineConfig, agent_index: int | None, form: AgentForm,
    managed_queues: list[str],
) -> str:  # fmt: skip
    """The config text with the agent (None: a new one) as the form says, and
    with the agent a fixed member of exactly ``form.queues`` among
    ``managed_queues`` (the queues the form showed; others are left alone)."""
    fields: dict[str, Any] = {"name": form.name, "phone": form.phone}
    if form.hotline is not None:
        fields["hotline"] = form.hotline
    if agent_index is None:
        text = yaml_edit.append_item(text, ("agents",), {"id": form.id, **fields})
    else:
        written = _raw(text)["agents"][agent_index]
        text = _set_fields(text, ("agents", agent_index), written, _defaults(Agent), fields)
    for index, queue in enumerate(config.queues):
        if queue.id not in managed_queues:
            continue
        members = list(queue.members)
        wanted = queue.id in form.queues
        if wanted and form.id not in members:
            members.append(form.id)
        elif not wanted and form.id in members:
            members = [m for m in members if m != form.id]
        else:
            continue
        text = _set_members(text, index, _raw(text)["queues"][index], members)
    return text


def remove_agent_text(text: str, config: HotlineConfig, agent_index: int) -> str:
    """The config text without the agent: out of every queue's fixed members
    and the roster's lists too (the roster would otherwise name a stranger)."""
    agent_id = config.agents[agent_index].id
    for index, queue in enumerate(config.queues):
        if agent_id in queue.members:
            members = [m for m in queue.members if m != agent_id]
            text = _set_members(text, index, _raw(text)["queues"][index], members)
    for section in ("assignments", "overrides"):
        for index, entry in enumerate(getattr(config.roster, section)):
            positions = [i for i, a in enumerate(entry.agents) if a == agent_id]
            for position in reversed(positions):
                text = yaml_edit.remove_item(text, ("roster", section, index, "agents", position))
    return yaml_edit.remove_item(text, ("agents", agent_index))


@dataclass(frozen=True)
class PhoneForm:
    id: str
    name: str
    contact: str | None

    @classmethod
    def parse(cls, form: Any, phone_id: str | None = None) -> PhoneForm:
        return cls(
            id=phone_id or form.get("id", "").strip(),
            name=form.get("name", "").strip(),
            contact=form.get("contact", "").strip() or None,
        )


def phone_text(text: str, phone_index: int | None, form: PhoneForm) -> str:
    """The config text with the phone as the form says. Never a secret: a
    phone without one gets its secret in the 0600 secrets file."""
    fields: dict[str, Any] = {"name": form.name}
    if form.contact is not None:
        fields["contact"] = form.contact
    if phone_index is None:
        return yaml_edit.append_item(text, ("phones",), {"id": form.id, **fields})
    written = _raw(text)["phones"][phone_index]
    text = _set_fields(text, ("phones", phone_index), written, _defaults(Phone), fields)
    if form.contact is None and "contact" in written:
        text = yaml_edit.remove_item(text, ("phones", phone_index, "contact"))
    return text


# -- handlers ---------------------------------------------------------------------------


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    context.setdefault("notice", request.query.get("notice", ""))
    return render(request, template, roster_page=ROSTER_PAGE, strategy_labels=STRATEGY_LABELS,
                  **context)  # fmt: skip


def _applier(request: web.Request) -> ConfigApplier:
    applier = state_of(request).applier
    if applier is None:
        raise web.HTTPServiceUnavailable(text="This process does not own the config.")
    return applier


async def _text(request: web.Request) -> str:
    return await asyncio.to_thread(_applier(request).current_text)


def _index(items: list[Any], item_id: str) -> int | None:
    return next((i for i, item in enumerate(items) if item.id == item_id), None)


def _hotline_choices(request: web.Request) -> list[Any]:
    scope, config = scope_of(request), state_of(request).config
    return [h for h in config.hotlines if scope.sees_hotline(h.id)]


def _new_hotline(request: web.Request, chosen: str | None) -> str | None:
    """The hotline a new queue or agent is written with: the chosen one, or a
    supervisor's own; none with one hotline in the file (it is implied)."""
    config, scope = state_of(request).config, scope_of(request)
    if chosen is None and scope.hotline_id is not None and len(config.hotlines) > 1:
        return scope.hotline_id
    return chosen


def _summary(request: web.Request, index: int | None, new: str, changed: str, **values: str) -> str:
    """A form's change in one line for the preview and the history, translated:
    ``new`` (an item not in the file yet: ``index`` None) or ``changed``."""
    _ = translator(request[LANGUAGE])
    return _(new if index is None else changed, **values)


def _owner_after(config: HotlineConfig, chosen: str | None) -> str | None:
    """The hotline a new item will belong to: the one the form chose, else the
    config's only one (its id: a supervisor's scope is checked against it)."""
    if chosen is not None:
        return chosen
    sole = config.sole_hotline()
    return sole.id if sole is not None else None


# what the URL and the form name, checked


@dataclass(frozen=True)
class HotlineItems:
    """Queues or agents: a list of the config whose items each belong to a
    hotline, so that a supervisor's scope applies to them."""

    key: str  # the config's list: "queues" or "agents"
    refusal: str  # the audited action of a request outside the user's scope
    sees: Callable[[AccessScope, HotlineConfig, str], bool]
    owner: Callable[[HotlineConfig, str], str | None]

    def index(self, config: HotlineConfig, item_id: str) -> int | None:
        return _index(getattr(config, self.key), item_id)


# QueueForm or AgentForm: both carry the id and the hotline _checked_form checks.
FormT = TypeVar("FormT", QueueForm, AgentForm)

QUEUES = HotlineItems("queues", "queue_refused", AccessScope.sees_queue, HotlineConfig.queue_owner)
AGENTS = HotlineItems("agents", "agent_refused", AccessScope.sees_agent, HotlineConfig.agent_owner)


async def _item_index(
    request: web.Request, items: HotlineItems, item_id: str
) -> int | web.Response:
    """Where the URL's queue or agent stands in its list, or the answer to send:
    404 for none, 403 (audited) for one outside the user's scope."""
    config = state_of(request).config
    index = items.index(config, item_id)
    if index is None:
        return error_page(request, 404, "Not found")
    if not items.sees(scope_of(request), config, item_id):
        return await refuse(request, items.refusal, item_id)
    return index


async def _hotline_to_write(
    request: web.Request, items: HotlineItems, item_id: str, chosen: str | None,
    index: int | None,
) -> str | web.Response | None:  # fmt: skip
    """The hotline a queue or agent form writes (a new item's: see
    :func:`_new_hotline`), or the 403 (audited) when the item would then belong
    to a hotline outside the user's scope: a supervisor cannot give an item away."""
    config = state_of(request).config
    hotline = chosen if index is not None else _new_hotline(request, chosen)
    owner = (
        _owner_after(config, hotline)
        if hotline is not None or index is None
        else items.owner(config, item_id)
    )
    if not scope_of(request).sees_hotline(owner):
        return await refuse(request, items.refusal, f"{item_id} → {owner}")
    return hotline


async def _checked_form(
    request: web.Request, items: HotlineItems, item_id: str | None,
    parse: Callable[[Any, str | None], FormT],
) -> tuple[int | None, FormT] | web.Response:  # fmt: skip
    """The queue or agent form the request posts, checked before anything is
    built from it: where the item stands (None: a new one), and the form with
    the hotline it writes; else the refusal (:func:`_item_index`,
    :func:`_hotline_to_write`)."""
    index = None if item_id is None else await _item_index(request, items, item_id)
    if isinstance(index, web.Response):
        return index
    form = parse(await request.post(), item_id)
    hotline = await _hotline_to_write(request, items, form.id, form.hotline, index)
    if isinstance(hotline, web.Response):
        return hotline
    return index, replace(form, hotline=hotline)


def _phone_index(request: web.Request, phone_id: str) -> int | web.Response:
    """Where the URL's phone stands in the list, or the 404 to send (phones are
    the administrators' alone: their routes check the role)."""
    index = _index(state_of(request).config.phones, phone_id)
    return error_page(request, 404, "Not found") if index is None else index


# queues


async def queues_page(request: web.Request) -> web.StreamResponse:
    state, scope = state_of(request), scope_of(request)
    queues = [q for q in state.config.queues if scope.sees_queue(state.config, q.id)]
    return _page(request, "admin_queues.html", queues=queues, hotlines=_hotline_choices(request),
                  strategies=STRATEGIES, defaults=_defaults(Queue),
                  owner=state.config.queue_owner)  # fmt: skip


async def queue_page(request: web.Request) -> web.StreamResponse:
    index = await _item_index(request, QUEUES, request.match_info["queue_id"])
    if isinstance(index, web.Response):
        return index
    state, scope = state_of(request), scope_of(request)
    queue = state.config.queues[index]
    return _page(request, "admin_queue.html", queue=queue, hotlines=_hotline_choices(request),
                  strategies=STRATEGIES, agents=scope.agents(state.config),
                  owner=state.config.queue_owner(queue.id))  # fmt: skip


async def queue_save(request: web.Request) -> web.StreamResponse:
    """A new queue (no id in the path) or a changed one, through the preview."""
    queue_id = request.match_info.get("queue_id")
    checked = await _checked_form(request, QUEUES, queue_id, QueueForm.parse)
    if isinstance(checked, web.Response):
        return checked
    index, form = checked
    new_text = queue_text(await _text(request), index, form)
    summary = _summary(request, index, N_("New queue {queue}"), N_("Queue {queue} changed"),
                       queue=form.id)  # fmt: skip
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/queues/{form.id}"
    )


async def queue_remove(request: web.Request) -> web.StreamResponse:
    queue_id = request.match_info["queue_id"]
    index = await _item_index(request, QUEUES, queue_id)
    if isinstance(index, web.Response):
        return index
    _ = translator(request[LANGUAGE])
    new_text = yaml_edit.remove_item(await _text(request), ("queues", index))
    return await preview_change(request, new_text=new_text,
                                summary=_("Queue {queue} removed", queue=queue_id),
                                back="/admin/queues")  # fmt: skip


# agents


def _managed_queues(request: web.Request) -> list[Queue]:
    state, scope = state_of(request), scope_of(request)
    return [q for q in state.config.queues if scope.sees_queue(state.config, q.id)]


def _member_of(config: HotlineConfig) -> dict[str, list[str]]:
    member_of: dict[str, list[str]] = {}
    for queue in config.queues:
        for member in queue.members:
            member_of.setdefault(member, []).append(queue.id)
    return member_of


async def agents_page(request: web.Request) -> web.StreamResponse:
    state, scope = state_of(request), scope_of(request)
    return _page(request, "admin_agents.html", agents=scope.agents(state.config),
                  hotlines=_hotline_choices(request), phones=state.config.phones,
                  queues=_managed_queues(request), owner=state.config.agent_owner,
                  member_of=_member_of(state.config))  # fmt: skip


async def agent_page(request: web.Request) -> web.StreamResponse:
    agent_id = request.match_info["agent_id"]
    index = await _item_index(request, AGENTS, agent_id)
    if isinstance(index, web.Response):
        return index
    state = state_of(request)
    users = [u for u in await db(state.users.all) if u.agent_id == agent_id]
    return _page(request, "admin_agent.html", agent=state.config.agents[index],
                  hotlines=_hotline_choices(request), phones=state.config.phones,
                  queues=_managed_queues(request), users=users,
                  owner=state.config.agent_owner(agent_id),
                  may_add_supervisor=user_of(request).role != SUPERVISOR,
                  error=request.query.get("error", ""))  # fmt: skip


async def agent_save(request: web.Request) -> web.StreamResponse:
    """A new agent (no id in the path) or a changed one, through the preview."""
    agent_id = request.match_info.get("agent_id")
    checked = await _checked_form(request, AGENTS, agent_id, AgentForm.parse)
    if isinstance(checked, web.Response):
        return checked
    index, form = checked
    managed = [q.id for q in _managed_queues(request)]
    if set(form.queues) - set(managed):
        outside = ", ".join(sorted(set(form.queues) - set(managed)))
        return await refuse(request, "queue_refused", outside)
    new_text = agent_text(await _text(request), state_of(request).config, index, form, managed)
    summary = _summary(request, index, N_("New agent {agent}"), N_("Agent {agent} changed"),
                       agent=form.id)  # fmt: skip
    return await preview_change(
        request, new_text=new_text, summary=summary, back=f"/admin/agents/{form.id}"
    )


async def agent_remove(request: web.Request) -> web.StreamResponse:
    agent_id = request.match_info["agent_id"]
    index = await _item_index(request, AGENTS, agent_id)
    if isinstance(index, web.Response):
        return index
    _ = translator(request[LANGUAGE])
    new_text = remove_agent_text(await _text(request), state_of(request).config, index)
    return await preview_change(request, new_text=new_text,
                                summary=_("Agent {agent} removed", agent=agent_id),
                                back="/admin/agents")  # fmt: skip


async def agent_user_add(request: web.Request) -> web.StreamResponse:
    """A console user for an agent: an agent user (signs in to the agent
    console as this agent), or, by an administrator, a supervisor of the
    agent's hotline."""
    agent_id = request.match_info["agent_id"]
    index = await _item_index(request, AGENTS, agent_id)
    if isinstance(index, web.Response):
        return index
    state = state_of(request)
    form = await form_or_json(request)
    role = form.get("role", AGENT)
    if role != AGENT and user_of(request).role == SUPERVISOR:
        return await refuse(request, "user_refused", f"{role} for {agent_id}")
    if role not in (AGENT, SUPERVISOR):
        return error_page(request, 400, "Bad request")
    hotline = state.config.agent_owner(agent_id) if role == SUPERVISOR else None
    try:
        user = await db(
            state.users.add, form.get("username", ""), form.get("password", ""), role,
            agent_id=agent_id, display_name=form.get("display_name", ""), hotline_id=hotline,
        )  # fmt: skip
    except store.UserError as exc:
        raise web.HTTPSeeOther(
            f"/admin/agents/{agent_id}?" + urlencode({"error": str(exc)})
        ) from None
    await audit(request, "user_add", user.username, detail=f"{user.role} {agent_id}")
    raise web.HTTPSeeOther(f"/admin/agents/{agent_id}?notice=user")


# phones


async def phones_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    used_by = {a.phone: a for a in state.config.agents}
    return _page(request, "admin_phones.html", phones=state.config.phones,
                  used_by=used_by)  # fmt: skip


async def phone_page(request: web.Request) -> web.StreamResponse:
    index = _phone_index(request, request.match_info["phone_id"])
    if isinstance(index, web.Response):
        return index
    config = state_of(request).config
    phone = config.phones[index]
    return _page(request, "admin_phone.html", phone=phone,
                  agents=[a for a in config.agents if a.phone == phone.id],
                  added=request.query.get("added") == "1")  # fmt: skip


async def phone_save(request: web.Request) -> web.StreamResponse:
    """A new phone (no id in the path) or a changed one, through the preview."""
    phone_id = request.match_info.get("phone_id")
    index = None if phone_id is None else _phone_index(request, phone_id)
    if isinstance(index, web.Response):
        return index
    form = PhoneForm.parse(await request.post(), phone_id)
    new_text = phone_text(await _text(request), index, form)
    summary = _summary(request, index, N_("New phone {phone}"), N_("Phone {phone} changed"),
                       phone=form.id)  # fmt: skip
    back = f"/admin/phones/{form.id}"
    if index is None:
        back += "?added=1"  # the preview adds notice=applied
    return await preview_change(request, new_text=new_text, summary=summary, back=back)


async def phone_remove(request: web.Request) -> web.StreamResponse:
    phone_id = request.match_info["phone_id"]
    index = _phone_index(request, phone_id)
    if isinstance(index, web.Response):
        return index
    _ = translator(request[LANGUAGE])
    new_text = yaml_edit.remove_item(await _text(request), ("phones", index))
    return await preview_change(request, new_text=new_text,
                                summary=_("Phone {phone} removed", phone=phone_id),
                                back="/admin/phones")  # fmt: skip


async def phone_secret_issue(request: web.Request) -> web.StreamResponse:
    """A new SIP secret for the phone, shown on this answer only. Asterisk is
    re-rendered with it at once: the phone's old secret stops working."""
    phone_id = request.match_info["phone_id"]
    index = _phone_index(request, phone_id)
    if isinstance(index, web.Response):
        return index
    config = state_of(request).config
    phone = config.phones[index]
    if phone.secret is not None:
        # Its secret is written in the config file by hand: the expert editor's.
        return error_page(request, 409, N_("Bad request"),
                          N_("This phone's secret is written in the config file."))  # fmt: skip
    applier = _applier(request)
    secret = await asyncio.to_thread(new_phone_secret, config, phone_id)
    await applier.reload_file()  # renders pjsip.conf with it and reloads Asterisk
    await audit(request, "phone_secret_issue", phone_id)
    logger.info("%s issued a new SIP secret for phone %s", user_of(request).username, phone_id)
    response = _page(request, "admin_phone_secret.html", phone=phone, secret=secret)
    response.headers["Cache-Control"] = "no-store"
    return response


QUEUE = "/admin/queues/{queue_id}"
AGENT_PAGE = "/admin/agents/{agent_id}"
PHONE = "/admin/phones/{phone_id}"
ROUTES = [
    Route("GET", "/admin/queues", queues_page, WATCHERS, "people_queues"),
    Route("POST", "/admin/queues", queue_save, WATCHERS, "people_queue_add"),
    Route("GET", QUEUE, queue_page, WATCHERS, "people_queue"),
    Route("POST", QUEUE, queue_save, WATCHERS, "people_queue_save"),
    Route("POST", QUEUE + "/remove", queue_remove, WATCHERS, "people_queue_remove"),
    Route("GET", "/admin/agents", agents_page, WATCHERS, "people_agents"),
    Route("POST", "/admin/agents", agent_save, WATCHERS, "people_agent_add"),
    Route("GET", AGENT_PAGE, agent_page, WATCHERS, "people_agent"),
    Route("POST", AGENT_PAGE, agent_save, WATCHERS, "people_agent_save"),
    Route("POST", AGENT_PAGE + "/remove", agent_remove, WATCHERS, "people_agent_remove"),
    Route("POST", AGENT_PAGE + "/user", agent_user_add, WATCHERS, "people_agent_user"),
    Route("GET", "/admin/phones", phones_page, ADMINS, "people_phones"),
    Route("POST", "/admin/phones", phone_save, ADMINS, "people_phone_add"),
    Route("GET", PHONE, phone_page, ADMINS, "people_phone"),
    Route("POST", PHONE, phone_save, ADMINS, "people_phone_save"),
    Route("POST", PHONE + "/remove", phone_remove, ADMINS, "people_phone_remove"),
    Route("POST", PHONE + "/secret", phone_secret_issue, ADMINS, "people_phone_secret"),
]
