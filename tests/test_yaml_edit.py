"""The forms' edits of the config file change only what they mean to change."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from ivr.config.yaml_edit import (
    YamlEditError,
    append_item,
    get_value,
    insert_item,
    remove_item,
    set_value,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BAC_TU_LIEM = (EXAMPLES / "bac-tu-liem.yaml").read_text(encoding="utf-8")
DONG_NGAC = ("areas", 0, "children", 0, "children", 2)


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) between two texts."""
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def test_ward_chairman_change_rewrites_only_that_line_and_keeps_its_comment() -> None:
    assert get_value(BAC_TU_LIEM, (*DONG_NGAC, "name")) == "Phường Đông Ngạc"
    new = set_value(BAC_TU_LIEM, (*DONG_NGAC, "chairman"), "tel:0913000103@pstn")
    removed, added = changed_lines(BAC_TU_LIEM, new)
    assert removed == [
        "            chairman: tel:0900000103@pstn        # Chủ tịch UBND phường (di động)"
    ]
    assert added == [
        "            chairman: tel:0913000103@pstn        # Chủ tịch UBND phường (di động)"
    ]
    assert yaml.safe_load(new)["areas"][0]["children"][0]["children"][2]["chairman"] == (
        "tel:0913000103@pstn"
    )


def test_value_in_a_multiline_flow_mapping_keeps_the_line_breaks() -> None:
    text = (EXAMPLES / "thanh-xuan.yaml").read_text(encoding="utf-8")
    units = yaml.safe_load(text)["units"]
    index = next(i for i, u in enumerate(units) if u["code"] == "ubnd-phuong-khuong-dinh")
    new = set_value(text, ("units", index, "sms"), "0900000999")
    removed, added = changed_lines(text, new)
    assert removed == ['     sms: "0900000364"}']
    assert added == ['     sms: "0900000999"}']


def test_appending_to_a_block_list_keeps_comments_and_the_items_style() -> None:
    new = append_item(BAC_TU_LIEM, (*DONG_NGAC, "fallbacks"), "tel:0900000303@pstn")
    removed, added = changed_lines(BAC_TU_LIEM, new)
    assert removed == []
    assert added == ["              - tel:0900000303@pstn"]
    assert "- queue:operator\n              - tel:0900000303@pstn\n" in new
    assert new.count("# Phó Chủ tịch") == BAC_TU_LIEM.count("# Phó Chủ tịch")


def test_appending_a_mapping_beside_flow_mappings_writes_one_flow_line() -> None:
    new = append_item(BAC_TU_LIEM, ("phones",), {"id": "vp-moi", "name": "Văn phòng, mới"})
    removed, added = changed_lines(BAC_TU_LIEM, new)
    assert removed == []
    assert added == ['  - {id: vp-moi, name: "Văn phòng, mới"}']


def test_appending_a_mapping_beside_block_mappings_writes_a_block_item() -> None:
    text = "trunks:\n  - id: pstn  # carrier\n    host: 127.0.0.1\n\nnext: 1\n"
    new = append_item(text, ("trunks",), {"id": "b", "host": "10.0.0.1"})
    assert new == (
        "trunks:\n  - id: pstn  # carrier\n    host: 127.0.0.1\n"
        "  - id: b\n    host: 10.0.0.1\n\nnext: 1\n"
    )


def test_flow_list_insert_and_append() -> None:
    text = "queues:\n  - {id: q, members: [a1, a2]}  # the desk\n"
    assert append_item(text, ("queues", 0, "members"), "a3") == (
        "queues:\n  - {id: q, members: [a1, a2, a3]}  # the desk\n"
    )
    assert insert_item(text, ("queues", 0, "members"), 0, "a0") == (
        "queues:\n  - {id: q, members: [a0, a1, a2]}  # the desk\n"
    )
    assert append_item("members: []\n", ("members",), "x") == "members: [x]\n"


def test_insert_into_a_block_list_before_an_item() -> None:
    new = insert_item(BAC_TU_LIEM, (*DONG_NGAC, "fallbacks"), 0, "tel:0900000999@pstn")
    assert "fallbacks:\n              - tel:0900000999@pstn\n              - tel:0900000203" in new
    assert changed_lines(BAC_TU_LIEM, new) == ([], ["              - tel:0900000999@pstn"])


def test_removing_items_and_keys() -> None:
    new = remove_item(BAC_TU_LIEM, (*DONG_NGAC, "fallbacks", 1))
    removed, added = changed_lines(BAC_TU_LIEM, new)
    assert removed == [
        "              - phone:vp-dong-ngac                    # Văn phòng UBND phường"
    ]
    assert added == []
    text = "q:\n  - {id: q, members: [a1, a2, a3]}\n"
    assert remove_item(text, ("q", 0, "members", 1)) == "q:\n  - {id: q, members: [a1, a3]}\n"
    assert remove_item(text, ("q", 0, "members", 2)) == "q:\n  - {id: q, members: [a1, a2]}\n"
    assert remove_item(text, ("q", 0, "id")) == "q:\n  - {members: [a1, a2, a3]}\n"
    block = "a:\n  - x  # only\nb: 2\n"
    assert remove_item(block, ("a", 0)) == "a: []\nb: 2\n"
    keyed = "a: 1  # one\nb: 2\nc: 3\n"
    assert remove_item(keyed, ("b",)) == "a: 1  # one\nc: 3\n"


def test_vietnamese_text_stays_readable() -> None:
    new = set_value(BAC_TU_LIEM, (*DONG_NGAC, "name"), "Phường Đông Ngạc (mới)")
    assert "            name: Phường Đông Ngạc (mới)\n" in new
    assert "\\u" not in new and "\\x" not in new
    quoted = set_value(BAC_TU_LIEM, ("phones", 0, "name"), 'Văn phòng "Quận"')
    assert '{id: pb-van-phong, name: "Văn phòng \\"Quận\\""}' in quoted
    assert yaml.safe_load(quoted)["phones"][0]["name"] == 'Văn phòng "Quận"'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("0913000103", '"0913000103"'),  # digits would read back as a number
        ("yes", '"yes"'),  # YAML 1.1 reads it as true
        ("a: b", '"a: b"'),
        ("x # y", '"x # y"'),
        (" leading", '" leading"'),
        ("[not a list]", '"[not a list]"'),
        ("", '""'),
        ("2026-02-17", '"2026-02-17"'),
        ("tel:0913@pstn", "tel:0913@pstn"),
    ],
)
def test_a_value_that_needs_quoting_is_quoted(value: str, written: str) -> None:
    new = set_value("k: old  # c\n", ("k",), value)
    assert new == f"k: {written}  # c\n"
    assert yaml.safe_load(new)["k"] == value


def test_a_quoted_value_keeps_its_quotes() -> None:
    new = set_value(BAC_TU_LIEM, (*DONG_NGAC, "shortcut"), "13")
    assert '            shortcut: "13"\n' in new


def test_missing_keys_are_added_under_their_parent() -> None:
    text = "a:\n  b: 1   # keep\n\n# next section\nz: 2\n"
    assert set_value(text, ("a", "c", "d"), "x") == (
        "a:\n  b: 1   # keep\n  c:\n    d: x\n\n# next section\nz: 2\n"
    )
    assert set_value("m: {a: 1}\n", ("m", "b"), [1, 2]) == "m: {a: 1, b: [1, 2]}\n"
    assert set_value("a:\nb: 1\n", ("a",), "v") == "a: v\nb: 1\n"
    # A key with no value yet takes a list or a mapping on its own line.
    assert append_item("a:   # none yet\nb: 1\n", ("a",), "i") == "a: [i]   # none yet\nb: 1\n"
    assert set_value("x:\n  a:\n  b: 1\n", ("x", "a"), {"k": 1}) == "x:\n  a: {k: 1}\n  b: 1\n"


def test_values_of_other_kinds() -> None:
    assert set_value("a: 1\n", ("a",), True) == "a: true\n"
    assert set_value("a: 1\n", ("a",), None) == "a: null\n"
    assert set_value("a: x\n", ("a",), ["p", "q"]) == "a: [p, q]\n"
    assert set_value("a: [x]\n", ("a",), {"k": "v"}) == "a: {k: v}\n"
    text = "a:\n  - x\n  - y\nb: 1\n"
    assert set_value(text, ("a",), ["p", "q", "r"]) == "a:\n  - p\n  - q\n  - r\nb: 1\n"


def test_bad_paths_are_refused_with_the_path_named() -> None:
    with pytest.raises(YamlEditError, match=r"areas\.0\.children\.9"):
        set_value(BAC_TU_LIEM, ("areas", 0, "children", 9, "chairman"), "x")
    with pytest.raises(YamlEditError, match="not a list"):
        append_item(BAC_TU_LIEM, ("timezone",), "x")
    with pytest.raises(YamlEditError, match="no position"):
        insert_item(BAC_TU_LIEM, ("phones",), 999, "x")
    with pytest.raises(YamlEditError, match="not valid YAML"):
        set_value("a: [1\n", ("a",), 2)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_round_trips_byte_identical(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    # Writing back the values the file already has changes nothing at all.
    for key, value in data.items():
        assert set_value(text, (key,), value) == text
    # A change and its undo give the original bytes back.
    name = data["phones"][0]["name"]
    changed = set_value(text, ("phones", 0, "name"), "Tên mới, có dấu phẩy")
    assert changed != text
    assert set_value(changed, ("phones", 0, "name"), name) == text
    count = len(data["phones"])
    appended = append_item(text, ("phones",), {"id": "x", "name": "Bàn mới"})
    assert remove_item(appended, ("phones", count)) == text


def test_a_long_text_written_as_a_block_stays_a_block() -> None:
    text = (
        "hotlines:\n  - prompts:\n      complaints:\n        vi: >-  # the referral\n"
        "          Khiếu nại xin gửi\n          Ban Tiếp công dân.\n\n        en: x\nnext: 1\n"
    )
    path = ("hotlines", 0, "prompts", "complaints", "vi")
    new = set_value(text, path, "Khiếu nại, tố cáo xin gửi Ban Tiếp công dân quận.")
    assert new == text.replace(
        "Khiếu nại xin gửi\n          Ban Tiếp công dân.",
        "Khiếu nại, tố cáo xin gửi Ban Tiếp công dân quận.",
    )
    two_lines = set_value(text, path, "Dòng một\nDòng hai")
    assert (
        "vi: |-  # the referral\n          Dòng một\n          Dòng hai\n\n        en: x"
        in two_lines
    )
    assert yaml.safe_load(two_lines)["hotlines"][0]["prompts"]["complaints"]["vi"] == (
        "Dòng một\nDòng hai"
    )
    # What a block cannot hold exactly is quoted instead.
    assert 'vi: " bắt đầu bằng dấu cách"\n\n        en: x' in set_value(
        text, path, " bắt đầu bằng dấu cách"
    )


def test_wards_are_added_and_removed_as_block_items_with_their_comments() -> None:
    text = (
        "areas:\n  - code: a\n    children:\n      - code: a1  # first\n        name: A1\n"
        "        fallbacks:\n          - x  # c\n      # about a2\n      - code: a2\n"
        "        name: A2\n"
    )
    added = append_item(text, ("areas", 0, "children"), {"code": "a3", "name": "Phường A3"})
    assert added == text + "      - code: a3\n        name: Phường A3\n"
    removed = remove_item(text, ("areas", 0, "children", 0))
    # The comment above a2 is about a2: it stays with it.
    assert removed == text.replace(
        "      - code: a1  # first\n        name: A1\n        fallbacks:\n          - x  # c\n", ""
    )
    inserted = insert_item(text, ("areas", 0, "children"), 1, {"code": "b", "name": "B"})
    assert "          - x  # c\n      - code: b\n        name: B\n      # about a2\n" in inserted


def _leaves(data: object, here: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _leaves(v, (*here, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _leaves(v, (*here, i))]
    return [here]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_any_value_of_the_examples_changes_only_its_own_lines(example: Path) -> None:
    """A sample of every example's values (every 23rd), each set to a text
    that needs quoting: the file reads back with only that value changed (the
    edit checks it), and only the lines of that value differ."""
    text = example.read_text(encoding="utf-8")
    for path in _leaves(yaml.safe_load(text))[::23]:
        new = set_value(text, path, "Giá trị mới, có: dấu #1")
        removed, added = changed_lines(text, new)
        assert len(added) == 1, (path, removed, added)
        assert "Giá trị mới, có: dấu #1" in added[0], path
        # One line, or the lines of a long > text that became one.
        assert (
            len(removed) == 1
            or removed[0].rstrip().endswith(("vi: >-", "en: >-"))
            or all(line.startswith(" " * 10) for line in removed)
        ), (path, removed)
