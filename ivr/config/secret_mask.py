"""Secrets hidden in the console's config editor, kept when the text comes back.

The editor shows the config file as text. Every secret in it (AMI secrets,
phone and trunk SIP secrets, the SMS token, the password inside
``database.url``) is replaced by :data:`MASK` before the text leaves the
server, on the same line, so line numbers in errors still match. When the
edited text is applied, each secret still holding the mask gets the stored
value back; a newly typed value replaces it.

Secrets are found by their YAML node, not by text search, and matched between
the two texts by the identity of the list item they sit in (``phones`` item
``id: dtv-01``), so inserting or moving a phone never hands it another phone's
secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ivr.config.loader import ConfigError, ConfigProblem, format_field
from ivr.config.safe_text import SECRET_FIELDS, is_secret_field
from ivr.config.yaml_lines import FieldPath

MASK = "••••••••"
# scheme://user:password@host…: only the password is a secret.
_URL_PASSWORD = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@.*)$"
)
_SECRET_LINE = re.compile(
    rf"^(?P<head>\s*-?\s*(?:{'|'.join(sorted(SECRET_FIELDS))})\s*:\s*)(?P<value>[^#\s].*?)\s*$"
)


@dataclass(frozen=True)
class _SecretScalar:
    path: FieldPath  # as pydantic names it: phones[3].secret
    identity: tuple[str, ...]  # as matched between texts: phones, id=dtv-01, secret
    value: str
    start: int  # offsets of the scalar in the text
    end: int
    line: int  # 1-based
    line_breaks: int  # inside the scalar's text (a multi-line scalar)
    source: str  # the scalar as written (quotes included)


def mask_secrets(text: str) -> str:
    """``text`` with every secret replaced by :data:`MASK`, lines preserved."""
    try:
        found = list(_secret_scalars(text))
    except yaml.YAMLError:
        # Not YAML (a file broken by hand): mask line by line rather than show it.
        return "\n".join(_mask_line(line) for line in text.split("\n"))
    pieces: list[tuple[int, int, str]] = []
    for scalar in found:
        masked = _masked_value(scalar)
        if masked != scalar.value:
            pieces.append((scalar.start, scalar.end, _yaml_scalar(masked, scalar)))
    return _splice(text, pieces)


def unmask_secrets(submitted: str, stored: str, path: Path) -> str:
    """``submitted`` with each masked secret given back its value from
    ``stored`` (the file as saved). A mask with no stored value to restore
    (a new phone) is a :class:`ConfigError` naming ``path``, line and field."""
    try:
        found = list(_secret_scalars(submitted))
    except yaml.YAMLError:
        return submitted  # the loader reports the syntax error with its line
    if not any(MASK in scalar.value for scalar in found):
        return submitted
    try:
        originals = {s.identity: s for s in _secret_scalars(stored)}
    except yaml.YAMLError:
        originals = {}
    pieces: list[tuple[int, int, str]] = []
    problems: list[ConfigProblem] = []
    for scalar in found:
        if MASK not in scalar.value:
            continue  # typed anew, or never masked
        original = originals.get(scalar.identity)
        if original is not None and _masked_value(original) == scalar.value:
            # As it was written when it fits on the line, so the file is unchanged.
            restored = original.source if not original.line_breaks else None
            pieces.append(
                (scalar.start, scalar.end, restored or _yaml_scalar(original.value, scalar))
            )
            continue
        problems.append(
            ConfigProblem(
                path,
                scalar.line,
                format_field(scalar.path),
                "still holds the mask but there is no saved secret here to keep: type the secret",
            )
        )
    if problems:
        raise ConfigError(problems)
    return _splice(submitted, pieces)


def _masked_value(scalar: _SecretScalar) -> str:
    if scalar.path[-2:] == ("database", "url"):
        match = _URL_PASSWORD.match(scalar.value)
        if match is None or not match.group("pw"):
            return scalar.value  # no password in it
        return match.group("head") + MASK + match.group("tail")
    return MASK if scalar.value else scalar.value


def _yaml_scalar(value: str, scalar: _SecretScalar) -> str:
    # JSON strings are YAML double-quoted scalars; keep the lines the old
    # scalar spanned so every later line keeps its number.
    return json.dumps(value, ensure_ascii=False) + "\n" * scalar.line_breaks


def _splice(text: str, pieces: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(pieces, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _mask_line(line: str) -> str:
    match = _SECRET_LINE.match(line)
    return match.group("head") + json.dumps(MASK, ensure_ascii=False) if match else line


def _secret_scalars(text: str) -> Iterator[_SecretScalar]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        yield from _walk(text, root, (), ())


def _walk(
    text: str, node: yaml.Node, path: FieldPath, identity: tuple[str, ...]
) -> Iterator[_SecretScalar]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            yield from _walk(text, value_node, (*path, key), (*identity, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(text, item, (*path, index), (*identity, _item_identity(item, index)))
    elif isinstance(node, yaml.ScalarNode) and path and is_secret_field(path):
        value = node.value if isinstance(node.value, str) else str(node.value)
        yield _SecretScalar(
            path,
            identity,
            value,
            node.start_mark.index,
            node.end_mark.index,
            node.start_mark.line + 1,
            node.end_mark.line - node.start_mark.line,
            text[node.start_mark.index : node.end_mark.index],
        )


def _item_identity(item: yaml.Node, index: int) -> str:
    """A list item by its ``id`` (or ``code``) when it has one, else by position."""
    if isinstance(item, yaml.MappingNode):
        for key_node, value_node in item.value:
            if (
                isinstance(key_node, yaml.ScalarNode)
                and key_node.value in ("id", "code")
                and isinstance(value_node, yaml.ScalarNode)
            ):
                return f"{key_node.value}={value_node.value}"
    return f"#{index}"
