"""The placeholders a prompt text may use, shared by the catalog and the config.

A hotline's own texts (``Hotline.prompts``) are checked with the config, the
catalog when prompts are built; both accept the same names so a text moves
from one to the other unchanged.
"""

from __future__ import annotations

import string

# Filled per hotline when its prompts are built.
HOTLINE_PLACEHOLDERS = frozenset({"unit_name", "hotline_name", "opening_hours"})
# Filled once per area (area_<code>.wav), only in that template.
AREA_TEMPLATE = "area_selected"
AREA_PLACEHOLDER = "area_name"
# Folders of paths.prompts that are not a hotline's (<prompts>/<hotline id>/<lang>/):
# music on hold, studio recordings, and the languages (the shared overrides folder
# prompts/custom/<lang>/ sits beside per-hotline ones, custom/<hotline id>/<lang>/).
RESERVED_PROMPT_FOLDERS = frozenset({"moh", "custom", "vi", "en"})


def placeholders_in(text: str) -> set[str]:
    """The ``{name}`` fields of ``text``; ValueError on an unbalanced brace."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def placeholder_problem(name: str, text: str, known: frozenset[str]) -> str | None:
    """What is wrong with the placeholders of ``text`` (prompt ``name``), or None."""
    try:
        used = placeholders_in(text)
    except ValueError as exc:
        return f"{exc} (write a literal brace as {{{{)"
    unknown = used - known - {AREA_PLACEHOLDER}
    if unknown:
        return (
            "unknown placeholder "
            + ", ".join(f"{{{u}}}" for u in sorted(unknown))
            + "; known: "
            + ", ".join(f"{{{k}}}" for k in sorted(known))
        )
    if AREA_PLACEHOLDER in used and name != AREA_TEMPLATE:
        return (
            f"{{{AREA_PLACEHOLDER}}} is filled per area and can only be used in {AREA_TEMPLATE!r}"
        )
    return None
