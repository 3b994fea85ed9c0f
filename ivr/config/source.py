"""The one place a running process keeps its current config.

The composition root (:mod:`ivr.service`) makes one :class:`ConfigSource` and
hands it to every part. A part that only reads the config reads
``source.current`` when it needs it, never a copy kept at start, so a config
applied while running cannot miss a holder. A part that must *act* on a change
(the queue manager re-applies the roster, the console's live hub re-sends its
picture) subscribes; :meth:`ConfigSource.replace` swaps the config first and
then calls the subscribers in the order they subscribed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)

Subscriber = Callable[[HotlineConfig], Awaitable[None]]


class ConfigSource:
    """Holds the current :class:`HotlineConfig`; see the module docstring."""

    def __init__(self, config: HotlineConfig) -> None:
        self._current = config
        self._subscribers: list[tuple[str, Subscriber]] = []

    @classmethod
    def of(cls, config: HotlineConfig | ConfigSource) -> ConfigSource:
        """``config`` itself when it is a source, else a source holding it (a part
        built alone, as in the unit tests, gets a source of its own)."""
        return config if isinstance(config, ConfigSource) else cls(config)

    @property
    def current(self) -> HotlineConfig:
        return self._current

    def subscribe(self, callback: Subscriber, name: str | None = None) -> Callable[[], None]:
        """Call ``callback(new)`` after each :meth:`replace`; returns the undo.
        ``name`` names the part in the warnings of a failed apply."""
        owner = getattr(callback, "__self__", None)
        entry = (name or type(owner or callback).__name__, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    async def replace(self, config: HotlineConfig) -> list[str]:
        """Make ``config`` current, then let every subscriber react. A subscriber
        that fails does not stop the others: the failures come back as
        ``"Part: error"`` lines (the applier shows them to the administrator)."""
        # One assignment: a reader sees the old config or the new one, never a mix.
        self._current = config
        failures: list[str] = []
        for name, callback in list(self._subscribers):
            try:
                await callback(config)
            except Exception as exc:  # one part failing must not stop the others
                logger.exception("%s did not take the new config", name)
                failures.append(f"{name}: {exc}")
        return failures
