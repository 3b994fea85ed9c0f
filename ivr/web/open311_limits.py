"""Who may call Open311 (:mod:`ivr.web.open311`) and how often: the API key a
POST names, looked up once per burst, and the budgets per minute (POSTs per
key, wrong keys and GETs per client address) that answer 429 when spent.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field

from aiohttp import web

from ivr.config.channels import Open311Channel
from ivr.web.api_keys import ApiKeyStore, ApiKeyView, CheckedKeys, hash_key
from ivr.web.open311_format import Open311Error
from ivr.web.security import LoginRateLimiter
from ivr.web.state import db, state_of

logger = logging.getLogger(__name__)


@dataclass
class Budgets:
    """Requests per minute: POSTs per API key, GETs per client address."""

    posts: LoginRateLimiter
    reads: LoginRateLimiter


# Per app, not module-wide: a test builds many apps. Weak: a dropped app's go too.
_BUDGETS: weakref.WeakKeyDictionary[web.Application, Budgets] = weakref.WeakKeyDictionary()


def budgets_of(request: web.Request, channel: Open311Channel) -> Budgets:
    """This app's budgets, rebuilt when the configured rates changed."""
    budgets = _BUDGETS.get(request.app)
    if (
        budgets is None
        or budgets.posts.attempts != channel.requests_per_minute
        or (budgets.reads.attempts != channel.reads_per_minute)
    ):
        # First use, or a config applied while running changed a budget.
        budgets = Budgets(
            LoginRateLimiter(channel.requests_per_minute, 60),
            LoginRateLimiter(channel.reads_per_minute, 60),
        )
        _BUDGETS[request.app] = budgets
    return budgets


class TooMany(Open311Error):
    """A spent budget: 429, with the seconds to wait (the Retry-After header)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"too many requests; try again in {retry_after} s")
        self.retry_after = retry_after


def spend(limiter: LoginRateLimiter, key: str) -> None:
    """Count one request against ``key``'s budget, or raise :class:`TooMany`."""
    wait = limiter.blocked([key])
    if wait > 0:
        raise TooMany(int(wait) + 1)
    limiter.failed([key])  # every request counts


@dataclass
class _Keys:
    """Keys checked lately, and the lookups under way: requests with the same
    key that arrive while its lookup waits for a database thread (a burst, a
    backlog) wait for that one lookup instead of each queueing their own."""

    checked: CheckedKeys = field(default_factory=CheckedKeys)
    pending: dict[str, asyncio.Future[ApiKeyView | None]] = field(default_factory=dict)


_KEYS: weakref.WeakKeyDictionary[web.Application, _Keys] = weakref.WeakKeyDictionary()


async def api_key_of(request: web.Request, given: str) -> ApiKeyView | None:
    """The active key ``given`` is (see :class:`ivr.web.api_keys.CheckedKeys`)."""
    keys = _KEYS.get(request.app)
    if keys is None:
        keys = _KEYS[request.app] = _Keys()
    found = keys.checked.get(given)
    if found is not None:
        return found
    digest = hash_key(given)
    lookup = keys.pending.get(digest)
    if lookup is None:
        store = ApiKeyStore(state_of(request).sessions)
        lookup = keys.pending[digest] = asyncio.ensure_future(db(store.check, given))

        def done(future: asyncio.Future[ApiKeyView | None]) -> None:
            keys.pending.pop(digest, None)
            if not future.cancelled() and future.exception() is None:
                view = future.result()
                if view is not None:
                    keys.checked.put(given, view)

        lookup.add_done_callback(done)
    # Shielded: one waiter leaving (its client hung up) cancels no one else's.
    return await asyncio.shield(lookup)
