"""Imports every module that declares tables, so ``Base.metadata`` is complete
(for Alembic autogenerate and for tests that create the schema directly)."""

from __future__ import annotations

import importlib

from ivr.db.models import Base

MODEL_MODULES = (
    "ivr.db.models",
    "ivr.queue_records.models",
    "ivr.cases.models",
    "ivr.web.models",
    "ivr.audit",
    "ivr.knowledge.models",
    "ivr.web.api_keys",  # Open311 apps' keys and their requests (issue 14)
    "ivr.web.open311_store",
    "ivr.intake.models",
    "ivr.reports.models",
)

for _module in MODEL_MODULES:
    importlib.import_module(_module)

__all__ = ["Base"]
