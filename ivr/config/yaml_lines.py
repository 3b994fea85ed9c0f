"""YAML loading that remembers where each value came from.

PyYAML's node graph carries line numbers; plain ``safe_load`` throws them away.
We construct the data from the nodes ourselves and keep a map from the path of
every value (a tuple of keys and list indexes) to its 1-based line, so that a
validation error can name the exact line of the field that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """The file is not valid YAML; ``line`` is 1-based where YAML could tell."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_with_lines(path: Path, text: str | None = None) -> tuple[Any, dict[FieldPath, int]]:
    """Parse ``path`` (or ``text``, as if it were that file) and return
    ``(data, lines)``; ``lines`` maps field paths to lines."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        message = f"invalid YAML: {exc.problem}"
        if exc.context and exc.context_mark is not None:
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise YamlSyntaxError(message, line) from exc
    lines: dict[FieldPath, int] = {}
    if root is None:
        return {}, lines
    constructor = yaml.SafeLoader(text)
    return _build(root, (), lines, constructor, path), lines


def _build(
    node: yaml.Node,
    here: FieldPath,
    lines: dict[FieldPath, int],
    constructor: yaml.SafeLoader,
    path: Path,
) -> Any:
    lines[here] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise YamlSyntaxError("mapping keys must be text", key_node.start_mark.line + 1)
            if key in result:
                raise YamlSyntaxError(f"key {key!r} appears twice", key_node.start_mark.line + 1)
            key = str(key)
            result[key] = _build(value_node, (*here, key), lines, constructor, path)
            lines[(*here, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*here, index), lines, constructor, path)
            for index, item in enumerate(node.value)
        ]
    return constructor.construct_object(node, deep=True)


def nearest_line(lines: dict[FieldPath, int], where: FieldPath) -> int | None:
    """The line of ``where`` or, for a missing field, of its closest existing parent."""
    probe = where
    while True:
        if probe in lines:
            return lines[probe]
        if not probe:
            return None
        probe = probe[:-1]
