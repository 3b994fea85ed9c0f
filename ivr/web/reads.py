"""Who may read which call and which caller's history, beyond the SQL scopes
of :mod:`ivr.web.store` (see ivr/web/access.py): the call ringing or answered
at an agent's phone now is theirs to read before any record names them.
Reads of personal data are audited, refusals too."""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.cases.models import Case
from ivr.phone import normalise_caller
from ivr.web import store
from ivr.web.access import AccessScope
from ivr.web.rendering import error_page, refuse
from ivr.web.state import audit, db, scope_of, state_of

logger = logging.getLogger(__name__)


def _same_number(one: str, other: str) -> bool:
    def key(text: str) -> str:
        return normalise_caller(text).e164 or text.strip()

    return bool(one) and key(one) == key(other)


def serving(request: web.Request, scope: AccessScope, uniqueid: str, number: str = "") -> bool:
    """Is this the call ringing or answered at the agent's phone now (the live
    hub saw it)? Then the agent may read it before any record names them."""
    current = state_of(request).hub.current_call(scope.phone_interface)
    if current is None or (uniqueid and current.uniqueid != uniqueid):
        return False
    return not number or _same_number(current.number, number)


async def may_read_call(request: web.Request, scope: AccessScope, uniqueid: str) -> bool:
    if serving(request, scope, uniqueid):
        return True
    return bool(await db(store.call_visible, state_of(request).sessions, scope, uniqueid))


async def readable_history(
    request: web.Request, number: str, uniqueid: str
) -> store.CallerHistory | None:
    """The caller's history if this user may read it, audited either way (None:
    refused). An agent reads the whole history of the caller at their phone now
    (they are serving them), and of an earlier caller only their own work."""
    state = state_of(request)
    scope = scope_of(request)
    whole = scope.sees_everything or serving(request, scope, uniqueid, number)
    if not whole:
        own = await db(
            store.search_calls, state.sessions, store.Filters(number=number), state.zone,
            limit=1, scope=scope,
        )  # fmt: skip
        if not own:
            await refuse(request, "read_caller_refused", f"caller {number}")
            return None
    history = await db(
        store.caller_history, state.sessions, number, uniqueid if whole else "",
        scope=scope, only_readable=not whole,
    )  # fmt: skip
    await audit(request, "read_caller", f"caller {history.e164 or number}",
                detail=f"{len(history.earlier_calls)} calls, "
                       f"{len(history.open_cases)} open cases")  # fmt: skip
    return history


async def visible_case(request: web.Request, refused_action: str) -> Case | web.Response:
    """The case the URL's ``{code}`` names, with its history, if the user may
    read it; else the answer to give: the refusal (audited as
    ``refused_action``), or 404 for a code no case has."""
    state = state_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, refused_action, f"case {code}")
    case = await db(store.case_with_history, state.sessions, code)
    if case is None:
        return error_page(request, 404, "Not found")
    return case
