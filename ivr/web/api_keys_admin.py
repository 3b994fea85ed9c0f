"""Open311 API keys in the administrators' console (issue 14).

The same keys as ``hotline open311-keys`` (:mod:`ivr.web.api_keys`), for an
administrator who works in the browser: the keys of each hotline (never the
keys themselves), a form that issues a key to an app for one hotline and
shows it once, and a revocation behind a confirmation page. The store audits
each change in the change's own transaction, with the signed-in administrator
and their address, as the command does with the system user.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass

from aiohttp import web

from ivr.config.schema import HotlineConfig
from ivr.web.api_keys import ApiKeyError, ApiKeyStore, ApiKeyView
from ivr.web.i18n import translator
from ivr.web.rendering import error_page, form_or_json, render
from ivr.web.state import ADMINS, LANGUAGE, Route, address_of, db, state_of, user_of

logger = logging.getLogger(__name__)

# The store's columns (ivr/web/api_keys.py): refused here first, in the
# administrator's words, rather than as the store's English error.
APP_NAME_MAX = 128
CONTACT_MAX = 255


@dataclass(frozen=True)
class KeyRequest:
    """What the issue form asked for, cleaned: spaces collapsed as the store does."""

    hotline_id: str
    app_name: str
    contact: str


@dataclass(frozen=True)
class HotlineKeys:
    """One hotline's keys, for the list."""

    hotline_id: str
    name: str
    keys: list[ApiKeyView]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _has_control(text: str) -> bool:
    # Line breaks are already spaces; NUL, escape and the like have no place in
    # a name (PostgreSQL refuses NUL outright: the form would fail, not say why).
    return any(unicodedata.category(c) == "Cc" for c in text)


def check_key_request(
    form: dict[str, str], config: HotlineConfig, language: str
) -> tuple[KeyRequest, dict[str, str]]:
    """The form's request and, per field, what is wrong with it (in ``language``)."""
    _ = translator(language)
    request = KeyRequest(
        hotline_id=form.get("hotline_id", "").strip(),
        app_name=_one_line(form.get("app_name", "")),
        contact=_one_line(form.get("contact", "")),
    )
    problems: dict[str, str] = {}
    if not request.app_name:
        problems["app_name"] = _("Enter the app's name.")
    elif len(request.app_name) > APP_NAME_MAX:
        problems["app_name"] = _(
            "The app's name is at most {count} characters.", count=APP_NAME_MAX
        )
    elif _has_control(request.app_name):
        problems["app_name"] = _("The app's name holds characters that cannot be shown.")
    if not request.hotline_id:
        problems["hotline_id"] = _("Choose the hotline the app will post to.")
    elif config.hotline(request.hotline_id) is None:
        problems["hotline_id"] = _(
            "There is no hotline {hotline} here.", hotline=request.hotline_id
        )
    if len(request.contact) > CONTACT_MAX:
        problems["contact"] = _("The contact is at most {count} characters.", count=CONTACT_MAX)
    elif _has_control(request.contact):
        problems["contact"] = _("The contact holds characters that cannot be shown.")
    return request, problems


def _by_hotline(config: HotlineConfig, keys: list[ApiKeyView]) -> list[HotlineKeys]:
    """Every configured hotline, in the config's order, then any hotline a key
    names that the config no longer has (its keys are still listed: an
    administrator may want to revoke them)."""
    groups = [HotlineKeys(h.id, h.name, []) for h in config.hotlines]
    by_id = {g.hotline_id: g for g in groups}
    for key in keys:
        group = by_id.get(key.hotline_id)
        if group is None:
            group = by_id[key.hotline_id] = HotlineKeys(key.hotline_id, key.hotline_id, [])
            groups.append(group)
        group.keys.append(key)
    return groups


async def _list_page(
    request: web.Request, *, status: int = 200, form: KeyRequest | None = None,
    problems: dict[str, str] | None = None, revoked: ApiKeyView | None = None,
) -> web.Response:  # fmt: skip
    state = state_of(request)
    keys = await db(ApiKeyStore(state.sessions).all)
    return render(
        request, "admin_api_keys.html", status=status, groups=_by_hotline(state.config, keys),
        form=form or KeyRequest("", "", ""), problems=problems or {}, revoked=revoked,
        open311_enabled=state.config.channels.open311.enabled,
    )  # fmt: skip


async def _key(request: web.Request) -> ApiKeyView | None:
    key_id = int(request.match_info["key_id"])  # the route admits digits only
    keys = await db(ApiKeyStore(state_of(request).sessions).all)
    return next((k for k in keys if k.id == key_id), None)


async def keys_page(request: web.Request) -> web.Response:
    """The keys of every hotline and the form that issues one."""
    revoked: ApiKeyView | None = None
    if request.query.get("revoked", "").isdigit():
        revoked_id = int(request.query["revoked"])
        keys = await db(ApiKeyStore(state_of(request).sessions).all)
        revoked = next((k for k in keys if k.id == revoked_id and not k.active), None)
    return await _list_page(request, revoked=revoked)


async def issue_key(request: web.Request) -> web.Response:
    """Issue a key and show it, once: only its hash is kept."""
    state = state_of(request)
    language = request[LANGUAGE]
    key_request, problems = check_key_request(await form_or_json(request), state.config, language)
    if problems:
        return await _list_page(request, status=400, form=key_request, problems=problems)
    try:
        view, key = await db(
            ApiKeyStore(state.sessions).create, key_request.hotline_id, key_request.app_name,
            user_of(request).username, contact=key_request.contact, address=address_of(request),
        )  # fmt: skip
    except ApiKeyError as exc:  # the form's checks are the store's; kept as a safety net
        return await _list_page(
            request, status=400, form=key_request, problems={"app_name": str(exc)}
        )
    hotline = state.config.hotline(view.hotline_id)
    return render(request, "admin_api_key_issued.html", key=key, view=view,
                  hotline_name=hotline.name if hotline else view.hotline_id)  # fmt: skip


async def revoke_confirm(request: web.Request) -> web.Response:
    """Which key, for which app and hotline, before it is refused for good."""
    view = await _key(request)
    if view is None:
        return error_page(request, 404, "Not found")
    hotline = state_of(request).config.hotline(view.hotline_id)
    return render(request, "admin_api_key_revoke.html", view=view,
                  hotline_name=hotline.name if hotline else view.hotline_id)  # fmt: skip


async def revoke_key(request: web.Request) -> web.StreamResponse:
    """Refuse the key from its next request on (revoking twice changes nothing)."""
    key_id = request.match_info["key_id"]
    try:
        if len(key_id) > 9:  # no such key, and too large for the database's integer
            raise ApiKeyError(key_id)
        view = await db(
            ApiKeyStore(state_of(request).sessions).revoke, int(key_id),
            user_of(request).username, address=address_of(request),
        )  # fmt: skip
    except ApiKeyError:
        return error_page(request, 404, "Not found")
    logger.info("open311 key %s (%s) revoked by %s", view.id, view.hotline_id,
                user_of(request).username)  # fmt: skip
    raise web.HTTPSeeOther(f"/admin/api-keys?revoked={view.id}")


REVOKE = r"/admin/api-keys/{key_id:\d+}/revoke"
ROUTES = [
    Route("GET", "/admin/api-keys", keys_page, ADMINS, "api_keys"),
    Route("POST", "/admin/api-keys", issue_key, ADMINS, "api_key_issue"),
    Route("GET", REVOKE, revoke_confirm, ADMINS, "api_key_revoke_confirm"),
    Route("POST", REVOKE, revoke_key, ADMINS, "api_key_revoke"),
]
