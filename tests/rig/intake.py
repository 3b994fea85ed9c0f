"""An intake kept in memory for the channels' handler tests: the intake's
contract (``submit`` with its idempotency and refusals) without a database."""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.intake.types import IntakeRefused, IntakeResult, Submission


@dataclass
class InMemoryIntake:
    """Keeps submissions; the same idempotency key gives the first case back as
    a duplicate, as the real intake does; a set ``refuse`` is raised instead."""

    submissions: list[Submission] = field(default_factory=list)
    by_key: dict[str, IntakeResult] = field(default_factory=dict)
    refuse: IntakeRefused | None = None

    def submit(self, submission: Submission) -> IntakeResult:
        if self.refuse is not None:
            raise self.refuse
        key = submission.idempotency_key or ""
        if key in self.by_key:
            first = self.by_key[key]
            return IntakeResult(first.case_code, first.case_id, first.message_id, False, True)
        self.submissions.append(submission)
        number = len(self.submissions)
        result = IntakeResult(f"2611{number:04d}", number, number, True)
        self.by_key[key] = result
        self.created(submission, result)
        return result

    def created(self, submission: Submission, result: IntakeResult) -> None:
        """Called once per new case: a fake that keeps more of it overrides this."""
