"""Edit one value of the config file and leave every other byte as it was.

The console's forms change one thing at a time (a ward's chairman, who is in a
queue, a holiday) in a file people also edit by hand: its comments, its order,
its quoting and its line breaks are theirs. Dumping the whole document again
would re-flow it (ruamel.yaml's round-trip dump joins the examples' multi-line
flow mappings into one long line), so instead we compose the text to learn
where each node starts and ends, and splice only the changed node's
characters. The
new fragment is rendered in the style of its neighbours (flow inside a flow
collection, a block line beside block items, a ``>``/``|`` text kept a
block, double quotes where a plain scalar would read back differently,
Unicode kept as it is, never ``\\u`` escapes). Comment lines right above a
list item stay with it.

Every edit re-reads its result and compares it with the old data plus the
intended change, so a splice that would change anything else raises
:class:`YamlEditError` instead of returning a wrong file.

Facts this relies on: PyYAML's composer (libyaml's when built, as the
loader's) gives nodes whose ``start_mark.index``/``end_mark.index`` are
character offsets into the text (Vietnamese letters count one), the same as
ruamel.yaml's composer on every example but a hundred times faster — forms
call these functions on the event loop; a block collection's end mark lies
past its trailing blank lines and comments, so the end of its last child is
used instead; ``flow_style`` is True for ``{...}``/``[...]`` collections.
ruamel.yaml (YAML 1.2) double-checks that a plain scalar reads back the same
under both YAML versions.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.config.yaml_lines import FieldPath

logger = logging.getLogger(__name__)

__all__ = [
    "FieldPath",
    "YamlEditError",
    "append_item",
    "get_value",
    "insert_item",
    "remove_item",
    "set_value",
]


class YamlEditError(ValueError):
    """The edit cannot be made (path missing, wrong kind of node, or the text
    is not YAML); the message says which path."""


# A plain scalar that must not be written plain whatever it reads back as:
# the examples quote phone numbers and codes with leading zeros, and a value
# that starts or ends with a space would lose it.
_NEEDS_QUOTES = re.compile(r"^\s|\s$|^$|[\x00-\x1f\x7f]")
_CONTROL_IN_BLOCK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _compose(text: str) -> Node | None:
    try:
        return pyyaml.compose(text, Loader=_LOADER)
    except pyyaml.YAMLError as exc:
        raise YamlEditError(f"the config is not valid YAML: {exc}") from exc


_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


def _load(text: str) -> Any:
    """The data as the config loader sees it (PyYAML, YAML 1.1 rules)."""
    try:
        return pyyaml.load(text, Loader=_LOADER)  # a safe loader (C when built)
    except pyyaml.YAMLError as exc:
        raise YamlEditError(f"the config is not valid YAML: {exc}") from exc


def _describe(path: FieldPath) -> str:
    return ".".join(str(part) for part in path) or "(top)"


# --- finding nodes -------------------------------------------------------------


def _child(node: Node, part: str | int) -> tuple[Node | None, Node | None]:
    """``(key node, value node)`` of ``part`` in ``node``; key is None for lists."""
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == str(part):
                return key_node, value_node
        return None, None
    if isinstance(node, SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            return None, node.value[part]
        return None, None
    return None, None


def _find(root: Node | None, path: FieldPath) -> Node:
    node = root
    for depth, part in enumerate(path):
        if node is None:
            break
        _, node = _child(node, part)
        if node is None:
            raise YamlEditError(f"{_describe(path[: depth + 1])} is not in the config")
    if node is None:
        raise YamlEditError(f"{_describe(path)} is not in the config")
    return node


def _content_end(node: Node) -> int:
    """Where the node's own characters end (a block collection's end mark lies
    past the blank lines and comments that follow it)."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return int(node.end_mark.index)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, index: int) -> int:
    """The start of the line after the one holding ``index`` (a trailing
    comment on that line stays with it)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _column(text: str, index: int) -> int:
    return index - _line_start(text, index)


def _dash_index(text: str, item: Node) -> int:
    """The ``-`` that introduces a block sequence item."""
    dash = text.rfind("-", 0, item.start_mark.index)
    if dash < 0:
        raise YamlEditError("cannot find the list item's dash")
    return dash


def _indent_step(root: Node | None) -> int:
    """The file's mapping indentation (2 in the examples)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode) and not node.flow_style:
            for key_node, value_node in node.value:
                if (
                    isinstance(value_node, MappingNode)
                    and not value_node.flow_style
                    and value_node.value
                ):
                    step = value_node.value[0][0].start_mark.column - key_node.start_mark.column
                    if step > 0:
                        return step
                stack.append(value_node)
    return 2


# --- rendering -----------------------------------------------------------------


def _plain_reads_back(text: str, value: str) -> bool:
    """Whether ``text`` written plain reads back as ``value`` in every place we
    put scalars: a block value, a flow mapping value and a flow list item."""
    for probe, pick in (
        (f"k: {text}\n", lambda d: d["k"]),
        (f"{{k: {text}}}\n", lambda d: d["k"]),
        (f"[{text}]\n", lambda d: d[0]),
    ):
        try:
            data = _load(probe)
            got = pick(data)
        except (YamlEditError, KeyError, IndexError, TypeError):
            return False
        if not isinstance(got, str) or got != value:
            return False
        try:
            # ruamel reads YAML 1.2 (no octal/sexagesimal surprises the other way).
            again = YAML(typ="safe", pure=True).load(probe)
            if pick(again) != value:
                return False
        except (YAMLError, KeyError, IndexError, TypeError):
            return False
    return True


def _double_quoted(value: str) -> str:
    """A double-quoted scalar that keeps Vietnamese letters as they are."""
    out = ['"']
    for char in value:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render_scalar(value: Any, style: str | None = None) -> str:
    """``value`` as a YAML scalar. ``style`` is the quoting of the value it
    replaces (``'"'``, ``"'"`` or None): a string keeps its quotes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if not isinstance(value, str):
        raise YamlEditError(f"cannot write a {type(value).__name__} into the config")
    if "\n" not in value and not any(ord(c) < 0x20 for c in value) and style == "'":
        return _single_quoted(value)
    if style == '"' or _NEEDS_QUOTES.search(value) or not _plain_reads_back(value, value):
        return _double_quoted(value)
    return value


def render_flow(value: Any) -> str:
    """``value`` on one line: ``{a: 1, b: [x, y]}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {render_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_flow(v) for v in value) + "]"
    return render_scalar(value)


def _key(key: Any) -> str:
    return render_scalar(str(key))


def render_block(value: Any, indent: int, step: int) -> list[str]:
    """``value`` as block lines, each starting at column ``indent`` (no newline).
    Nested lists sit at ``indent + step`` like the examples' ``trunks``."""
    lines: list[str] = []
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(render_block(item, indent + step, step))
            else:
                lines.append(f"{pad}{_key(key)}: {render_flow(item)}")
        return lines
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, dict) and item:
                inner = render_block(item, indent + 2, step)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {render_flow(item)}")
        return lines
    return [f"{pad}{render_scalar(value)}"]


def _render_item(text: str, siblings: list[Node], item: Any, column: int, step: int) -> str:
    """A new block-list item in the style of the existing ones (a one-line
    flow mapping beside flow mappings, a block mapping beside block ones)."""
    pad = " " * column
    block_siblings = any(
        isinstance(node, MappingNode | SequenceNode) and not node.flow_style for node in siblings
    )
    if isinstance(item, dict) and item and block_siblings:
        inner = render_block(item, column + 2, step)
        return "\n".join([f"{pad}- {inner[0].lstrip()}", *inner[1:]]) + "\n"
    return f"{pad}- {render_flow(item)}\n"


# --- checking ------------------------------------------------------------------


def _apply_to_data(data: Any, path: FieldPath, change: str, value: Any = None) -> Any:
    """The data the edited text must read back as."""
    data = copy.deepcopy(data)
    if change == "set" and not path:
        return copy.deepcopy(value)
    if data is None:
        data = {}
    holder = data
    for part in path[:-1]:
        if isinstance(holder, dict):
            if holder.get(str(part)) is None:
                holder[str(part)] = {}
            holder = holder[str(part)]
        else:
            holder = holder[int(part)]
    last = path[-1]
    if change == "set":
        if isinstance(holder, list):
            holder[last] = value  # type: ignore[index]
        else:
            holder[str(last)] = value
    elif change == "remove":
        if isinstance(holder, list):
            del holder[last]  # type: ignore[arg-type]
        else:
            del holder[str(last)]
    return data


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kinds all the way down (``True == 1`` in Python,
    not in a config)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _normalise(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value


def _checked(old_text: str, new_text: str, expected: Any, what: str) -> str:
    try:
        got = _load(new_text)
    except YamlEditError as exc:
        raise YamlEditError(f"{what}: the edited text would not be valid YAML ({exc})") from exc
    if not _same(got, expected):
        logger.warning("yaml edit %s did not read back as intended", what)
        raise YamlEditError(f"{what}: the edit would change more than intended")
    return new_text


# --- the edits -----------------------------------------------------------------


def get_value(text: str, path: FieldPath) -> Any:
    """The value at ``path`` as the config loader reads it; raises
    :class:`YamlEditError` when it is not there."""
    data = _load(text)
    for depth, part in enumerate(path):
        try:
            data = data[int(part)] if isinstance(data, list) else data[str(part)]
        except (KeyError, IndexError, TypeError) as exc:
            raise YamlEditError(f"{_describe(path[: depth + 1])} is not in the config") from exc
    return data


def set_value(text: str, path: FieldPath, value: Any) -> str:
    """``text`` with the value at ``path`` replaced by ``value`` (missing
    mapping keys on the way are added); every other byte unchanged."""
    value = _normalise(value)
    if not path:
        raise YamlEditError("cannot replace the whole config")
    try:
        if _same(get_value(text, path), value):
            # Nothing changes: not a byte either (re-rendering a block would
            # drop the comments inside it).
            return text
    except YamlEditError:
        pass  # a new key, added below
    root = _compose(text)
    step = _indent_step(root)
    # The deepest existing node on the path.
    node = root
    depth = 0
    while depth < len(path) and node is not None:
        _, found = _child(node, path[depth])
        if found is None:
            break
        node = found
        depth += 1
    what = f"set {_describe(path)}"
    if depth < len(path) and any(isinstance(part, int) for part in path[depth:]):
        raise YamlEditError(f"{_describe(path[: depth + 1])} is not in the config")
    old = _load(text)
    expected = _apply_to_data(old, path, "set", value)
    if depth == len(path):
        assert node is not None
        new_text = _replace_node(text, node, value, step)
        return _checked(text, new_text, expected, what)
    missing = path[depth:]
    nested: Any = value
    for part in reversed(missing[1:]):
        nested = {str(part): nested}
    if node is None:  # an empty file
        new_text = text + "\n".join(render_block({str(missing[0]): nested}, 0, step)) + "\n"
        return _checked(text, new_text, expected, what)
    if isinstance(node, ScalarNode) and node.value in ("", "~", "null"):
        # `key:` with nothing yet: give it a mapping.
        return _checked(text, _replace_node(text, node, {missing[0]: nested}, step), expected, what)
    if not isinstance(node, MappingNode):
        raise YamlEditError(f"{_describe(path[:depth])} is not a mapping")
    new_text = _add_key(text, node, str(missing[0]), nested, step)
    return _checked(text, new_text, expected, what)


def _replace_node(text: str, node: Node, value: Any, step: int) -> str:
    start = node.start_mark.index
    end = _content_end(node)
    if isinstance(node, ScalarNode) and node.value == "" and not node.style and start == end:
        # `key:` with no value: its empty node sits after the colon (libyaml)
        # or at the next line's start (the pure-Python composer); the value
        # goes right after the colon.
        colon = text.rfind(":", 0, start)
        return text[: colon + 1] + " " + render_flow(value) + text[colon + 1 :]
    if isinstance(value, dict | list) and value:
        block = (
            isinstance(node, MappingNode | SequenceNode)
            and not node.flow_style
            and isinstance(value, dict) == isinstance(node, MappingNode)
        )
        if block:
            column = node.start_mark.column
            if isinstance(node, SequenceNode):
                column = _column(text, _dash_index(text, node.value[0]))
                start = _dash_index(text, node.value[0])
            lines = render_block(value, column, step)
            fragment = "\n".join(lines)[column:]
            return text[:start] + fragment + text[end:]
        return text[:start] + render_flow(value) + text[end:]
    if isinstance(value, dict | list):
        return text[:start] + render_flow(value) + text[end:]
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        return _replace_block_scalar(text, node, value, step)
    style = node.style if isinstance(node, ScalarNode) else None
    return text[:start] + render_scalar(value, style) + text[end:]


def _replace_block_scalar(text: str, node: ScalarNode, value: Any, step: int) -> str:
    """A ``|`` or ``>`` text (the examples' long prompt texts) stays one, its
    header's comment and the blank lines after it kept. Chomping follows the
    new value's final line breaks; a value a block cannot hold exactly (a
    leading space, control characters) is written double-quoted."""
    start = node.start_mark.index
    header_end = text.find("\n", start)
    # The node's end lies past its trailing line breaks (and for "keep", its
    # blank lines): they stay where they are.
    content_end = node.end_mark.index
    while content_end > header_end and text[content_end - 1] in " \n":
        content_end -= 1
    if header_end < 0:
        header_end = len(text)
    header = text[start:header_end]
    indicators = re.match(r"[|>][-+0-9]*", header)
    comment = header[indicators.end() :] if indicators else ""  # spacing kept
    body = text[header_end + 1 : content_end] if content_end > header_end else ""
    first = next((line for line in body.splitlines() if line.strip()), "")
    indent = len(first) - len(first.lstrip(" ")) if first else 0
    if not indent:
        line_start = _line_start(text, start)
        key_line = text[line_start:start]
        indent = len(key_line) - len(key_line.lstrip(" ")) + step
    lines = value.split("\n") if isinstance(value, str) else []
    core = value.rstrip("\n") if isinstance(value, str) else ""
    blockable = (
        isinstance(value, str)
        and core != ""
        and not core.startswith((" ", "\t"))
        and not _CONTROL_IN_BLOCK.search(value)
        and not any(line.endswith(" ") for line in lines)
    )
    if not blockable:
        return text[:start] + render_scalar(value) + text[content_end:]
    trailing = len(value) - len(core)
    chomp = "-" if trailing == 0 else "" if trailing == 1 else "+"
    indicator = "|" if node.style == "|" or "\n" in core else ">"
    pad = " " * indent
    rendered = "\n".join(pad + line if line else "" for line in core.split("\n"))
    return text[:start] + f"{indicator}{chomp}{comment}\n{rendered}" + text[content_end:]


def _add_key(text: str, mapping: MappingNode, key: str, value: Any, step: int) -> str:
    if mapping.flow_style:
        close = text.rfind("}", 0, mapping.end_mark.index)
        entry = f"{_key(key)}: {render_flow(value)}"
        before = text[mapping.start_mark.index + 1 : close].strip()
        joiner = ", " if before else ""
        cut = close
        while cut > 0 and text[cut - 1] in " \t":
            cut -= 1
        return (
            text[:cut] + joiner + entry + text[cut:]
            if before
            else text[:close] + entry + text[close:]
        )
    if not mapping.value:
        raise YamlEditError("cannot add to an empty mapping")
    column = mapping.value[0][0].start_mark.column
    where = _after_line(text, _content_end(mapping))
    lines = render_block({key: value}, column, step)
    prefix = "" if where == 0 or text[where - 1] == "\n" else "\n"
    return text[:where] + prefix + "\n".join(lines) + "\n" + text[where:]


def append_item(text: str, path: FieldPath, item: Any) -> str:
    """``text`` with ``item`` added at the end of the list at ``path`` (a
    missing or empty list becomes ``[item]``)."""
    root = _compose(text)
    try:
        node = _find(root, path)
    except YamlEditError:
        return set_value(text, path, [item])
    if isinstance(node, ScalarNode) and node.value in ("", "~", "null"):
        return set_value(text, path, [item])
    if not isinstance(node, SequenceNode):
        raise YamlEditError(f"{_describe(path)} is not a list")
    return insert_item(text, path, len(node.value), item)


def insert_item(text: str, path: FieldPath, index: int, item: Any) -> str:
    """``text`` with ``item`` inserted before position ``index`` of the list at
    ``path`` (``index`` equal to the length appends)."""
    item = _normalise(item)
    old = _load(text)
    root = _compose(text)
    step = _indent_step(root)
    node = _find(root, path)
    if not isinstance(node, SequenceNode):
        raise YamlEditError(f"{_describe(path)} is not a list")
    count = len(node.value)
    if not 0 <= index <= count:
        raise YamlEditError(f"{_describe(path)} has no position {index}")
    items = list(get_value(text, path))
    items.insert(index, item)
    expected = _apply_to_data(old, path, "set", items)
    what = f"insert into {_describe(path)}"
    if node.flow_style:
        rendered = render_flow(item)
        if count == 0:
            close = text.rfind("]", 0, node.end_mark.index)
            new_text = text[:close] + rendered + text[close:]
        elif index < count:
            at = node.value[index].start_mark.index
            new_text = text[:at] + rendered + ", " + text[at:]
        else:
            at = _content_end(node.value[-1])
            new_text = text[:at] + ", " + rendered + text[at:]
        return _checked(text, new_text, expected, what)
    column = _column(text, _dash_index(text, node.value[0]))
    fragment = _render_item(text, node.value, item, column, step)
    if index < count:
        at = _line_start(text, _dash_index(text, node.value[index]))
        # Comment lines right above an item are about it: the new item goes
        # before them, not between them and their item.
        while at > 0:
            above = _line_start(text, at - 1)
            if not text[above:at].strip().startswith("#"):
                break
            at = above
    else:
        at = _after_line(text, _content_end(node.value[-1]))
        if at == len(text) and not text.endswith("\n"):
            fragment = "\n" + fragment
    new_text = text[:at] + fragment + text[at:]
    return _checked(text, new_text, expected, what)


def remove_item(text: str, path: FieldPath) -> str:
    """``text`` without the list item (path ends with its index) or the
    mapping key (path ends with the key) at ``path``; the comment lines above
    it stay."""
    if not path:
        raise YamlEditError("cannot remove the whole config")
    old = _load(text)
    expected = _apply_to_data(old, path, "remove")
    root = _compose(text)
    parent = _find(root, path[:-1])
    last = path[-1]
    key_node, node = _child(parent, last)
    if node is None:
        raise YamlEditError(f"{_describe(path)} is not in the config")
    what = f"remove {_describe(path)}"
    if isinstance(parent, SequenceNode):
        position = parent.value.index(node)
        if parent.flow_style:
            new_text = _cut_flow(
                text,
                parent,
                [(n.start_mark.index, _content_end(n)) for n in parent.value],
                position,
            )
        elif len(parent.value) == 1:
            new_text = _emptied(text, root, path[:-1], "[]")
        else:
            start = _line_start(text, _dash_index(text, node))
            end = _after_line(text, _content_end(node))
            new_text = text[:start] + text[end:]
        return _checked(text, new_text, expected, what)
    assert isinstance(parent, MappingNode) and key_node is not None
    position = [k for k, _ in parent.value].index(key_node)
    if parent.flow_style:
        spans = [(k.start_mark.index, _content_end(v)) for k, v in parent.value]
        new_text = _cut_flow(text, parent, spans, position)
    elif len(parent.value) == 1:
        new_text = _emptied(text, root, path[:-1], "{}")
    else:
        start = _line_start(text, key_node.start_mark.index)
        end = _after_line(text, _content_end(node))
        new_text = text[:start] + text[end:]
    return _checked(text, new_text, expected, what)


def _cut_flow(text: str, parent: Node, spans: list[tuple[int, int]], position: int) -> str:
    """Remove entry ``position`` of a flow collection with one of its commas."""
    start, end = spans[position]
    if len(spans) == 1:
        return text[:start] + text[end:]
    if position + 1 < len(spans):
        return text[:start] + text[spans[position + 1][0] :]
    return text[: spans[position - 1][1]] + text[end:]


def _emptied(text: str, root: Node | None, path: FieldPath, empty: str) -> str:
    """The collection at ``path`` written as ``[]``/``{}`` when its last block
    entry goes."""
    if not path:
        raise YamlEditError("cannot empty the whole config")
    parent = _find(root, path[:-1])
    key_node, node = _child(parent, path[-1])
    assert node is not None
    end = _after_line(text, _content_end(node))
    if key_node is not None:
        colon = text.find(":", key_node.end_mark.index)
        return text[: colon + 1] + f" {empty}\n" + text[end:]
    start = node.start_mark.index
    return text[:start] + empty + "\n" + text[end:]
