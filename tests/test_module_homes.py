"""The intake service and the Open311 handlers were split into modules with one
job each; the names their old modules had are still importable there, as the
very objects of their new homes (so a caller of either path sees one class, one
constant, one route table)."""

from __future__ import annotations

import importlib

import pytest

# Old module → {name: the module that now defines it}.
HOMES = {
    "ivr.intake.service": {
        "IntakeService": "ivr.intake.service",
        "TEXT_LIMIT": "ivr.intake.checks",
        "SUBJECT_LIMIT": "ivr.intake.checks",
        "NAME_LIMIT": "ivr.intake.checks",
        "ADDRESS_LIMIT": "ivr.intake.checks",
        "KEY_LIMIT": "ivr.intake.checks",
        "normalise_contact": "ivr.intake.checks",
        "CaseStatusView": "ivr.intake.status",
        "CHANNEL_CONTACT": "ivr.intake.thread",
        "REPLY_CHANNELS": "ivr.intake.thread",
        "ANSWER_HOOK": "ivr.intake.thread",
        "ThreadEntry": "ivr.intake.thread",
        "StoredAttachment": "ivr.intake.thread",
        "queue_answer": "ivr.intake.thread",
    },
    "ivr.web.open311": {
        "ROUTES": "ivr.web.open311",
        "BASE": "ivr.web.open311_http",
        "Open311Handler": "ivr.web.open311_http",
        "SPEC": "ivr.web.open311_services",
        "DESCRIPTION_MAX": "ivr.web.open311_format",
        "IDEMPOTENCY_HEADER": "ivr.web.open311_post_form",
        "Budgets": "ivr.web.open311_limits",
    },
}


@pytest.mark.parametrize(
    ("old", "name", "home"),
    [(old, name, home) for old, names in HOMES.items() for name, home in names.items()],
)
def test_an_old_name_is_its_new_homes_object(old: str, name: str, home: str) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(
        importlib.import_module(home), name
    )


@pytest.mark.parametrize("old", sorted(HOMES))
def test_the_old_module_declares_what_it_re_exports(old: str) -> None:
    """``__all__`` lists every kept name (a re-export is not an unused import)."""
    assert set(HOMES[old]) <= set(importlib.import_module(old).__all__)
