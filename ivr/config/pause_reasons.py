"""Why an agent pauses: a short list of codes with labels, chosen from a list.

The reason travels to Asterisk in a ``QueuePause`` header and back in every
member event, so it is a code (``[a-z0-9_-]``), never text an agent typed:
free text in an AMI header is how an agent could inject actions. The labels
are what people read on the wallboard and in the console.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_CODE = r"^[a-z0-9][a-z0-9_-]*$"
# A label is shown, never sent to Asterisk; still no control characters.
_LABEL = r"^[^\x00-\x1f\x7f]+$"

# The reason a supervisor's pause carries (the supervisor's name is in the audit log).
SUPERVISOR_PAUSE = "supervisor"


class PauseReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=_CODE, min_length=1, max_length=32)
    vi: str = Field(pattern=_LABEL, min_length=1, max_length=64)
    en: str = Field(pattern=_LABEL, min_length=1, max_length=64)

    def label(self, language: str) -> str:
        return self.vi if language == "vi" else self.en


DEFAULT_PAUSE_REASONS: tuple[PauseReason, ...] = (
    PauseReason(code="break", vi="Nghỉ giải lao", en="Break"),
    PauseReason(code="meal", vi="Ăn ca", en="Meal"),
    PauseReason(code="meeting", vi="Họp", en="Meeting"),
    PauseReason(code="paperwork", vi="Xử lý hồ sơ", en="Paperwork"),
    PauseReason(code=SUPERVISOR_PAUSE, vi="Giám sát viên tạm dừng", en="Paused by a supervisor"),
)


def reason_codes(reasons: list[PauseReason] | tuple[PauseReason, ...]) -> frozenset[str]:
    return frozenset(r.code for r in reasons)
