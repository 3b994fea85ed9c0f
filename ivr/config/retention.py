"""The ``retention:`` section: how long each kind of personal data is kept.

Kept apart from :mod:`ivr.config.schema` (which only names the section) so the
privacy rules read in one place; the job that applies them is
:mod:`ivr.privacy.retention`. Every field has a default, so a config without
the section is valid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ivr.config.schema import HotlineConfig
    from ivr.config.yaml_lines import FieldPath

logger = logging.getLogger(__name__)

Days = int | None
DEFAULT_AUDIO_DAYS = 365


class RetentionSection(BaseModel):
    """Days each kind is kept; 0 or null keeps it forever.

    The defaults are a starting point, not legal advice: the data controller
    sets them (Law 91/2025, Decree 356/2025). A case under legal hold keeps
    everything linked to it, whatever these say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Audio files of calls and voicemail (the row stays, marked deleted).
    # Absent: ``recording.retention_days`` (the older spelling) or 365.
    audio_days: Days = Field(DEFAULT_AUDIO_DAYS, ge=0, le=36500)
    # Text and word timings of transcripts (the row stays for statistics).
    transcript_days: Days = Field(730, ge=0, le=36500)
    # Citizens' numbers in calls, queue statistics, call backs and SMS rows;
    # a closed case's number counts from its closing.
    caller_number_days: Days = Field(730, ge=0, le=36500)
    # Summary, transcript copy, caller's name, answer and notes of a case,
    # counted from its closing; open cases keep theirs.
    case_text_days: Days = Field(1825, ge=0, le=36500)
    # pseudonym: a keyed hash (HMAC-SHA256) replaces the number, so repeat and
    # distinct-caller counts still work and nobody without the key can test a
    # guessed number; erase: the number is removed (NULL or empty).
    caller_numbers: Literal["pseudonym", "erase"] = "pseudonym"
    # The pseudonym key: $pseudonym_key_env if set, else this file (created 0600).
    # Deleting the key makes the pseudonyms anonymous for good.
    pseudonym_key_env: str = "HOTLINE_PSEUDONYM_KEY"
    pseudonym_key_file: Path = Path("../var/pseudonym-key")
    # `hotline serve` runs the job in the process that runs the web part, at
    # start and then this often; 0 leaves it to cron (`hotline retention run`).
    run_every_minutes: int = Field(60, ge=0, le=7 * 24 * 60)


def effective_audio_days(config: HotlineConfig) -> int | None:
    """``retention.audio_days``, or the older ``recording.retention_days`` when
    only that one is written in the file. None or 0: keep forever."""
    if "audio_days" in config.retention.model_fields_set:
        return config.retention.audio_days
    if "retention_days" in config.recording.model_fields_set:
        return config.recording.retention_days
    return config.retention.audio_days


def retention_problems(config: HotlineConfig) -> list[tuple[FieldPath, str]]:
    """Both spellings of the audio limit in one file: which one wins would be a guess."""
    if (
        "audio_days" in config.retention.model_fields_set
        and "retention_days" in config.recording.model_fields_set
    ):
        return [
            (
                ("recording", "retention_days"),
                "replaced by retention.audio_days, which is also set; remove this line",
            )
        ]
    return []
