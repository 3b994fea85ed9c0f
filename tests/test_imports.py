"""Every module of the project imports, and none is hidden by a package of the
same name (``ivr/x.py`` beside ``ivr/x/``: Python imports the package, and the
module's names vanish for whoever imports them at run time only)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import ivr
import queue_manager

ROOTS = (ivr, queue_manager)


def _modules() -> list[str]:
    names: list[str] = []
    for root in ROOTS:
        names.append(root.__name__)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
            if ".migrations." in info.name:
                continue  # Alembic's scripts run under Alembic's context, not as imports
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_the_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_no_module_is_hidden_by_a_package_of_the_same_name() -> None:
    hidden = [
        str(path)
        for root in ROOTS
        for folder in map(Path, root.__path__)
        for path in folder.rglob("*.py")
        if (path.with_suffix("") / "__init__.py").exists()
    ]
    assert hidden == []
