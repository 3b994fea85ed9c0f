"""UI language: Vietnamese by default, English available.

Templates and handlers write English source text (``_("Calls")``); the
Vietnamese translations live in a gettext catalogue,
``ivr/web/locale/vi/LC_MESSAGES/messages.po``, that a translator edits with any
PO editor. The compiled ``messages.mo`` beside it is committed and is what
runs: it is loaded once, with Babel, when this module is imported. A unit test
(tests/test_i18n.py) checks that the ``.mo`` is a fresh compile of the ``.po``,
that ``pybabel extract`` finds exactly the catalogue's texts and that every one
is translated, so a page never shows half English to a Vietnamese user. The
workflow (extract, update, translate, compile) is in docs/web.md.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from babel.messages.mofile import read_mo
from babel.support import Translations

logger = logging.getLogger(__name__)

LANGUAGES = ("vi", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def N_(text: str) -> str:
    """Marks a text for ``pybabel extract`` without translating it here: for
    texts that reach ``_()`` as a value (a role, a case status, an error title)."""
    return text


# Texts the console translates by value, so extraction cannot see them at the call
# site: ``_(case.status)``, ``_(user.role)``, ``_(q.state)``, ``_(s)`` for a severity,
# and the titles handlers pass to error_page. Listing them here keeps them in the
# catalogue when ``pybabel update`` drops texts it no longer finds.
BY_VALUE = (
    # error_page titles
    N_("Access denied"),
    N_("Bad request"),
    N_("Not found"),
    N_("Unavailable"),
    # error_page messages
    N_("Your role does not allow this page."),
    N_("The form has expired; reload the page and try again."),
    N_("This process does not own the config."),
    N_("The agent is not on a call."),
    N_("Which hotline is this case for? This deployment has several: give hotline_id."),
    # agent states (queue_manager's live model)
    N_("idle"),
    N_("ringing"),
    N_("talking"),
    N_("paused"),
    N_("wrapup"),
    N_("unavailable"),
    # case statuses (ivr.contracts.statuses.CaseStatus)
    N_("received"),
    N_("classified"),
    N_("assigned"),
    N_("in_progress"),
    N_("answered"),
    N_("closed"),
    N_("rejected"),
    # forward statuses (ivr.contracts.statuses.ForwardStatus) besides the case's words
    N_("sent"),
    N_("returned"),
    N_("extension_requested"),
    N_("extension_granted"),
    # case severities (ivr.cases.service.SEVERITIES)
    N_("urgent"),
    N_("normal"),
    N_("complex"),
    # console roles (ivr.web.models.ROLES)
    N_("admin"),
    N_("supervisor"),
    N_("agent"),
    N_("unit"),
)


def _load(language: str) -> tuple[Translations, Mapping[str, str]]:
    # Opened directly rather than with Translations.load, which quietly falls back
    # to English when the file is missing (say, package data left out of a wheel).
    data = (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").read_bytes()
    translations = Translations(io.BytesIO(data), domain=DOMAIN)
    catalog = read_mo(io.BytesIO(data))
    # No plural forms are used, so every id and translation is a plain str.
    table = {
        m.id: m.string
        for m in catalog
        if m.id and isinstance(m.id, str) and m.string and isinstance(m.string, str)
    }
    return translations, MappingProxyType(table)


_VI_TRANSLATIONS, VI = _load("vi")
"""``VI``: the Vietnamese catalogue as a read-only mapping, English → Vietnamese."""


def translator(language: str) -> Callable[..., str]:
    """``_("text", **values)`` in ``language``; English is the source text.

    ``{name}`` placeholders in the text are filled from ``values`` after
    translation, so a translation may move them."""
    gettext = _VI_TRANSLATIONS.gettext if language == "vi" else None

    def translate(text: str, **values: object) -> str:
        # gettext("") would return the catalogue's header, not an empty text.
        result = gettext(text) if gettext is not None and text else text
        return result.format(**values) if values else result

    return translate
