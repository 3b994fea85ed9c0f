"""Administrative units from the ``vietnam-provinces`` package into the config's area tree.

Since the 2025 reform Việt Nam has two levels: 34 provinces and 3,321 wards,
communes and special zones (Hà Nội, code "01", has 126). ``hotline areas import
--province 01`` puts a province and its units into the ``areas:`` tree, or
brings them up to date, and this module computes the new text of the file.

Choices, and why:

- The area tree stays data the hotline owns: a unit is recognised by its
  ``official_code`` wherever it sits in the tree (a hotline may group wards its
  own way), and the province unit found there is the one new units go under.
  A unit typed in by hand with no official code is adopted when its name is
  the official one (it gets its code; its chairman stays).
- ``code`` of a new unit is a slug of the package's ``codename``
  ("phuong-dong-ngac"), readable in destinations such as
  ``area:phuong-dong-ngac``; it is set once and never changed, since fallbacks
  and menus refer to it. A slug already taken gets the official code appended
  ("xa-tan-thanh-25459"). The official code is kept in ``official_code``.
- ``name`` is the official name with its type ("Phường Đông Ngạc", "Xã Sóc
  Sơn"); a re-import brings a renamed unit's name up to date, and a unit whose
  official code the data corrected (same name, new code) gets the new code:
  see :func:`_match` for the order in which units are recognised.
- ``shortcut``: three digits. A unit that has one keeps it; units without one
  get the lowest free numbers ("001" up) in the order of their official codes,
  free meaning unused in the province's subtree (one city-wide ward menu).
- Nothing the hotline added is touched (chairman, fallbacks, ring_seconds,
  aliases, its own groups), and a unit whose official code the package no
  longer has is kept and reported, never deleted.
- The file is edited as text, at the few places that change, so every comment
  and every other section stays byte for byte (there is no ruamel here, and
  re-dumping with PyYAML would drop the comments). A re-import with nothing new
  returns the text unchanged.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vietnam_provinces
import yaml
from vietnam_provinces import Province, ProvinceCode, Ward

from ivr.config.loader import ConfigProblem, format_field
from ivr.config.schema import Area, HotlineConfig
from ivr.config.yaml_lines import FieldPath, load_with_lines, nearest_line

logger = logging.getLogger(__name__)

PACKAGE_VERSION: str = vietnam_provinces.__version__
SHORTCUT_DIGITS = 3


class AreaImportError(ValueError):
    """The import cannot be done; the message says why (the file is left as it was)."""


@dataclass(frozen=True)
class OfficialUnit:
    """One unit as the package has it."""

    official_code: str  # "01" for a province, "00070" for a ward or commune
    name: str  # with its type: "Thành phố Hà Nội", "Phường Hoàn Kiếm"
    slug: str  # "ha-noi", "phuong-hoan-kiem"


def province_units(province_code: str | int) -> tuple[OfficialUnit, list[OfficialUnit]]:
    """The province and its wards/communes, ordered by official code.

    ``province_code`` is "01", "1" or 1; an unknown one raises
    :class:`AreaImportError` listing the known codes."""
    province = _province(province_code)
    wards = sorted(Ward.iter_by_province(province.code), key=lambda ward: int(ward.code))
    return _unit(province), [_ward_unit(ward) for ward in wards]


def province_area_data(province_code: str | int) -> dict[str, Any]:
    """The province as config data (what ``areas:`` holds for one unit): its
    wards as children with three-digit shortcuts "001", "002", … in the order
    of their official codes. For example configs and tests."""
    province, wards = province_units(province_code)
    codes: set[str] = set()
    return {
        **_new_unit_data(province, codes, shortcut=None),
        "children": [
            _new_unit_data(ward, codes, shortcut=_shortcut(number))
            for number, ward in enumerate(wards, start=1)
        ],
    }


def province_area(province_code: str | int) -> Area:
    """:func:`province_area_data` as a validated :class:`~ivr.config.schema.Area`."""
    return Area.model_validate(province_area_data(province_code))


def known_official_codes() -> frozenset[str]:
    """Every province and ward code of the installed package."""
    provinces = {_unit(province).official_code for province in Province.iter_all()}
    wards = {_ward_code(ward) for ward in Ward.iter_all()}
    return frozenset(provinces | wards)


def official_code_warnings(config: HotlineConfig, path: Path) -> list[ConfigProblem]:
    """One warning per area whose ``official_code`` the package does not have
    (merged or renamed by a later reform, or mistyped), naming file, line and
    field. A warning, not an error: the unit still works as configured."""
    with_codes = [
        (where, area)
        for area, where in _walk(config.areas, ("areas",))
        if area.official_code is not None
    ]
    if not with_codes:
        return []  # and the package's ward table is not even loaded
    known = known_official_codes()
    stale = [(where, area) for where, area in with_codes if area.official_code not in known]
    if not stale:
        return []
    _, lines = load_with_lines(path)
    return [
        ConfigProblem(
            path,
            nearest_line(lines, (*where, "official_code")),
            format_field((*where, "official_code")),
            f"no unit has official code {area.official_code!r} in vietnam-provinces "
            f"{PACKAGE_VERSION} (area {area.code!r}, {area.name}): merged, renamed or "
            "mistyped? `hotline areas import --province CODE` reports such units",
        )
        for where, area in stale
    ]


def _walk(areas: list[Area], here: FieldPath) -> Iterator[tuple[Area, FieldPath]]:
    for index, area in enumerate(areas):
        where = (*here, index)
        yield area, where
        yield from _walk(area.children, (*where, "children"))


@dataclass
class AreaImport:
    """The outcome: the new ``text`` of the file and what changed, one line per unit."""

    text: str
    province: OfficialUnit
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.province.name} ({self.province.official_code}) from vietnam-provinces "
            f"{PACKAGE_VERSION}: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.kept)} kept, {len(self.vanished)} vanished"
        )


def import_areas_text(text: str, province_code: str | int) -> AreaImport:
    """The config ``text`` with the province's units added or brought up to date
    (see the module docstring for the rules). Raises :class:`AreaImportError`
    for an unknown province or a tree it cannot edit as text."""
    province, wards = province_units(province_code)
    document = _Document(text)
    tree = list(document.areas())
    result = AreaImport(text=text, province=province)

    by_official = {node.official_code: node for node in tree if node.official_code}
    province_node = by_official.get(province.official_code) or next(
        (node for node in tree if node.official_code is None and node.name == province.name), None
    )
    subtree = [province_node, *province_node.descendants(tree)] if province_node else []
    taken_codes = {node.code for node in tree}
    used_shortcuts = {node.shortcut for node in subtree if node.shortcut is not None}

    if province_node is not None:
        _update(document, province_node, province, result, shortcut=None)
    found = _match(wards, by_official, subtree[1:])
    matched = [(ward, found.get(ward.official_code)) for ward in wards]

    # Shortcuts for every unit that has none, lowest free first, by official code.
    free = (
        _shortcut(number)
        for number in range(1, 10**SHORTCUT_DIGITS)
        if _shortcut(number) not in used_shortcuts
    )
    new_units: list[dict[str, Any]] = []
    for ward, existing in matched:
        needs_shortcut = existing is None or existing.shortcut is None
        shortcut = next(free, None) if needs_shortcut else None
        if needs_shortcut and shortcut is None:
            raise AreaImportError(
                f"{province.name} has more units than {SHORTCUT_DIGITS}-digit shortcuts"
            )
        if existing is None:
            data = _new_unit_data(ward, taken_codes, shortcut=shortcut)
            new_units.append(data)
            result.added.append(_describe(data["code"], ward, shortcut))
        else:
            _update(document, existing, ward, result, shortcut=shortcut)

    current = {province.official_code} | {ward.official_code for ward in wards}
    recognised = {id(node) for node in found.values()}
    for node in subtree:
        if id(node) in recognised:
            continue  # re-coded by the data: updated above
        if node.official_code is not None and node.official_code not in current:
            result.vanished.append(
                f"{node.code} ({node.name}, {node.official_code}) on line {node.line}: "
                f"not a unit of {province.name} in vietnam-provinces {PACKAGE_VERSION}; "
                "kept as it is"
            )

    if province_node is None:
        data = _new_unit_data(province, taken_codes, shortcut=None)
        if new_units:  # none when every unit already sits elsewhere in the tree
            data["children"] = new_units
        document.append_units(document.root, "areas", [data], key_column=0)
        result.added.insert(0, _describe(data["code"], province, None))
    elif new_units:
        document.append_units(
            province_node.node, "children", new_units, key_column=province_node.key_column
        )
    result.text = document.edited()
    return result


def _match(
    wards: list[OfficialUnit], by_official: dict[str, _AreaNode], subtree: list[_AreaNode]
) -> dict[str, _AreaNode]:
    """Which unit of the file each official unit is, keyed by official code.

    In this order, each unit of the file taken once: the same code and name; then
    the same name under the province, which also adopts a unit typed in by hand
    and follows a unit whose code the data corrected (2026.9.0 re-coded 27 Hà Nội
    units and swapped two codes between units; the name is what stayed); then
    the same code anywhere in the tree, a unit the data renamed."""
    found: dict[str, _AreaNode] = {}
    used: set[int] = set()

    def take(ward: OfficialUnit, node: _AreaNode) -> None:
        found[ward.official_code] = node
        used.add(id(node))

    for ward in wards:
        node = by_official.get(ward.official_code)
        if node is not None and node.name == ward.name:
            take(ward, node)
    names = Counter(ward.name for ward in wards)
    by_name: dict[str, list[_AreaNode]] = {}
    for node in subtree:
        by_name.setdefault(node.name, []).append(node)
    for ward in wards:
        if ward.official_code in found or names[ward.name] > 1:
            continue  # two units of one name: only their codes can tell them apart
        candidates = [n for n in by_name.get(ward.name, []) if id(n) not in used]
        if len(candidates) == 1:
            take(ward, candidates[0])
    for ward in wards:
        node = by_official.get(ward.official_code)
        if ward.official_code not in found and node is not None and id(node) not in used:
            take(ward, node)
    return found


def _update(
    document: _Document,
    node: _AreaNode,
    unit: OfficialUnit,
    result: AreaImport,
    shortcut: str | None,
) -> None:
    changes = []
    if node.name != unit.name:
        document.replace_value(node, "name", _plain(unit.name))
        changes.append(f"name {node.name!r} → {unit.name!r}")
    inserted: list[tuple[str, str]] = []
    if node.official_code is None:
        inserted.append(("official_code", _quoted(unit.official_code)))
        changes.append(f"official code {unit.official_code} set")
    elif node.official_code != unit.official_code:
        document.replace_value(node, "official_code", _quoted(unit.official_code))
        changes.append(f"official code {node.official_code} → {unit.official_code}")
    if shortcut is not None:
        inserted.append(("shortcut", _quoted(shortcut)))
        changes.append(f"shortcut {shortcut}")
    if inserted:
        document.insert_keys(node, after="name", keys=inserted)
    where = f"{node.code} ({unit.name}, {unit.official_code})"
    if changes:
        result.updated.append(f"{where}: {'; '.join(changes)}")
    else:
        result.kept.append(where)


def _describe(code: str, unit: OfficialUnit, shortcut: str | None) -> str:
    text = f"{code} ({unit.name}, {unit.official_code})"
    return f"{text} shortcut {shortcut}" if shortcut else text


def _new_unit_data(unit: OfficialUnit, taken: set[str], shortcut: str | None) -> dict[str, Any]:
    code = unit.slug if unit.slug not in taken else f"{unit.slug}-{unit.official_code}"
    taken.add(code)
    data: dict[str, Any] = {"code": code, "name": unit.name, "official_code": unit.official_code}
    if shortcut is not None:
        data["shortcut"] = shortcut
    return data


def _shortcut(number: int) -> str:
    return f"{number:0{SHORTCUT_DIGITS}d}"


def _province(code: str | int) -> Province:
    text = str(code).strip()
    try:
        return Province.from_code(ProvinceCode(int(text)))
    except ValueError:
        known = ", ".join(
            f"{_unit(p).official_code} {p.name}"
            for p in sorted(Province.iter_all(), key=lambda p: int(p.code))
        )
        raise AreaImportError(
            f"no province with code {text!r} in vietnam-provinces {PACKAGE_VERSION}; "
            f"the codes are: {known}"
        ) from None


def _unit(province: Province) -> OfficialUnit:
    return OfficialUnit(f"{int(province.code):02d}", province.name, _slug(province.codename))


def _ward_code(ward: Ward) -> str:
    return f"{int(ward.code):05d}"


def _ward_unit(ward: Ward) -> OfficialUnit:
    return OfficialUnit(_ward_code(ward), ward.name, _slug(ward.codename))


def _slug(codename: str) -> str:
    return codename.replace("_", "-")


def _plain(value: str) -> str:
    """``value`` as a one-line YAML scalar, plain where YAML allows it."""
    dumped = yaml.safe_dump({"k": value}, allow_unicode=True, width=1_000_000)
    return dumped.removeprefix("k: ").rstrip("\n")


def _quoted(digits: str) -> str:
    # Quoted on purpose: unquoted, YAML 1.1 reads "00070" as an octal number.
    return json.dumps(digits)


# --- editing the file as text --------------------------------------------------------


@dataclass
class _AreaNode:
    node: yaml.MappingNode
    keys: dict[str, tuple[yaml.Node, yaml.Node]]
    parent: _AreaNode | None
    code: str
    name: str
    official_code: str | None
    shortcut: str | None

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    @property
    def key_column(self) -> int:
        return next(iter(self.keys.values()))[0].start_mark.column

    def descendants(self, tree: list[_AreaNode]) -> list[_AreaNode]:
        found = []
        for node in tree:
            up = node.parent
            while up is not None and up is not self:
                up = up.parent
            if up is self:
                found.append(node)
        return found


class _Document:
    """The config text, its YAML nodes (which know their character offsets), and
    the edits to make; edits are applied from the end so offsets stay valid."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise AreaImportError(f"the file is not valid YAML: {exc}") from None
        if root is None:
            root = yaml.MappingNode("tag:yaml.org,2002:map", [])
        if not isinstance(root, yaml.MappingNode):
            raise AreaImportError("the file must hold a mapping")
        self.root = root
        self._edits: list[tuple[int, int, str]] = []

    def areas(self) -> Iterator[_AreaNode]:
        areas = _value(self.root, "areas")
        if isinstance(areas, yaml.SequenceNode):
            yield from self._walk(areas, None)

    def _walk(self, sequence: yaml.SequenceNode, parent: _AreaNode | None) -> Iterator[_AreaNode]:
        for item in sequence.value:
            if not isinstance(item, yaml.MappingNode):
                raise AreaImportError(f"line {item.start_mark.line + 1}: an area must be a mapping")
            keys = {str(key.value): (key, value) for key, value in item.value}
            node = _AreaNode(
                node=item,
                keys=keys,
                parent=parent,
                code=_scalar(keys, "code") or "",
                name=_scalar(keys, "name") or "",
                official_code=_scalar(keys, "official_code"),
                shortcut=_scalar(keys, "shortcut"),
            )
            yield node
            children = keys.get("children")
            if children is not None and isinstance(children[1], yaml.SequenceNode):
                yield from self._walk(children[1], node)

    def replace_value(self, node: _AreaNode, key: str, text: str) -> None:
        value = node.keys[key][1]
        self._edits.append((value.start_mark.index, value.end_mark.index, text))

    def insert_keys(self, node: _AreaNode, after: str, keys: list[tuple[str, str]]) -> None:
        if node.node.flow_style:
            raise AreaImportError(
                f"line {node.line}: area {node.code!r} is written as {{...}}; write it as "
                "one key per line so the import can add its official code and shortcut"
            )
        at = self._end_of_line(node.keys[after][1])
        indent = " " * node.key_column
        self._insert(at, "".join(f"{indent}{key}: {value}\n" for key, value in keys))

    def append_units(
        self, owner: yaml.MappingNode, key: str, units: list[dict[str, Any]], key_column: int
    ) -> None:
        """Add ``units`` at the end of the sequence ``owner[key]``, creating it if needed."""
        pair = next(((k, v) for k, v in owner.value if k.value == key), None)
        if pair is not None and isinstance(pair[1], yaml.SequenceNode) and pair[1].value:
            sequence = pair[1]
            if sequence.flow_style:
                raise AreaImportError(
                    f"line {sequence.start_mark.line + 1}: {key} written as [...]; write one "
                    "unit per item so the import can add to it"
                )
            first = sequence.value[0]
            at = self._end_of_line(_last_scalar(sequence))
            self._insert(at, _render(units, sequence.start_mark.column, first.start_mark.column))
            return
        dash = key_column + 2
        if pair is not None:
            key_node, value = pair
            if not (isinstance(value, yaml.SequenceNode) or _is_null(value)):
                raise AreaImportError(f"line {value.start_mark.line + 1}: {key} must be a list")
            # `children: []` or `children:` with nothing: the list goes below the key.
            self._edits.append((key_node.end_mark.index, value.end_mark.index, ":"))
            self._insert(self._end_of_line(value), _render(units, dash, dash + 2))
            return
        block = f"{' ' * key_column}{key}:\n{_render(units, dash, dash + 2)}"
        if owner is self.root:
            self._insert(
                len(self.text), ("" if self.text.endswith("\n") or not self.text else "\n") + block
            )
        else:
            self._insert(self._end_of_line(_last_scalar(owner)), block)

    def edited(self) -> str:
        text = self.text
        for start, end, replacement in sorted(
            self._edits, key=lambda e: (e[0], e[1]), reverse=True
        ):
            text = text[:start] + replacement + text[end:]
        return text

    def _insert(self, at: int, text: str) -> None:
        self._edits.append((at, at, text))

    def _end_of_line(self, node: yaml.Node) -> int:
        """Where the line after ``node``'s last line starts (a trailing comment stays
        on its line); a block scalar already ends at the start of a line."""
        end = node.end_mark.index
        if node.end_mark.column == 0 and end > 0:
            return end
        newline = self.text.find("\n", end)
        if newline < 0:
            self.text += "\n"
            return len(self.text)
        return newline + 1


def _value(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((value for k, value in mapping.value if k.value == key), None)


def _scalar(keys: dict[str, tuple[yaml.Node, yaml.Node]], key: str) -> str | None:
    pair = keys.get(key)
    if pair is None or not isinstance(pair[1], yaml.ScalarNode) or _is_null(pair[1]):
        return None
    return str(pair[1].value)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _last_scalar(node: yaml.Node) -> yaml.Node:
    """The last scalar inside ``node``: a block collection's own end mark lies past
    the comments that follow it, a scalar's does not."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return node


def _render(units: list[dict[str, Any]], dash: int, column: int) -> str:
    lines: list[str] = []
    for unit in units:
        first = True
        for key, value in unit.items():
            lead = " " * dash + "-" + " " * (column - dash - 1) if first else " " * column
            first = False
            if key == "children":
                lines.append(f"{lead}children:\n{_render(value, column + 2, column + 4)}")
                continue
            scalar = _quoted(value) if key in ("official_code", "shortcut") else _plain(value)
            lines.append(f"{lead}{key}: {scalar}\n")
    return "".join(lines)
