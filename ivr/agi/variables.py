"""Kept only so the web console's imports (``from ivr.agi import variables``)
keep working while it is split into feature modules; new code imports
:mod:`ivr.contracts.channel_variables` and :mod:`ivr.contracts.agi_scripts`.
Remove once nothing imports it."""

from __future__ import annotations

from ivr.contracts import agi_scripts as _scripts
from ivr.contracts.channel_variables import *  # noqa: F403

# FastAGI script names, as they were spelled here before the script table.
ENTRY_SCRIPT = _scripts.ENTRY.name
ENDED_SCRIPT = _scripts.CALL_ENDED.name
SURVEY_SCRIPT = _scripts.SURVEY.name
CALLBACK_REQUESTED_SCRIPT = _scripts.CALLBACK_REQUESTED.name
CALLBACK_ANSWERED_SCRIPT = _scripts.CALLBACK_ANSWERED.name
VOICEMAIL_SAVED_SCRIPT = _scripts.VOICEMAIL_SAVED.name
