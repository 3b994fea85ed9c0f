"""The ward forms' own logic, without a server: the new config text each form
builds changes only what the clerk changed (comments and order kept), the
fallback chain's reorder, addition and removal, the clerk's words for each
destination, the search, who may change which ward (a supervisor only their
own hotline's wards), and the test call's AMI action (exact, and refused for
anything that is not a dial string the routing builds)."""

from __future__ import annotations

import difflib
from typing import Any

import pytest
import yaml

from ivr.config import load_config, yaml_edit
from ivr.config.destinations import Destination
from ivr.config.loader import ConfigError
from ivr.config.schema import HotlineConfig
from ivr.web.access import AccessScope
from ivr.web.admin_wards import (
    describe,
    form_destination,
    matches,
    may_change,
    problem_lines,
    ward_entries,
    ward_entry,
    ward_owners,
    with_chairman,
    with_list,
)
from queue_manager.trial_call import TrialCallRefused, originate_trial_call, trial_call_action
from tests.rig.stack import EXAMPLE, REPO

COMBINED = REPO / "examples" / "combined.yaml"
DONG_NGAC = ("areas", 0, "children", 0, "children", 2)


@pytest.fixture(scope="module")
def example() -> HotlineConfig:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def combined() -> HotlineConfig:
    return load_config(COMBINED)


def _changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_the_wards_path_in_the_file_is_where_the_ward_is(example: HotlineConfig) -> None:
    entry = ward_entry(example, "dong-ngac")
    assert entry is not None and entry.path == DONG_NGAC
    assert entry.parent is not None and entry.parent.code == "bac-tu-liem"
    # The district and the city take no calls themselves: not in the list.
    assert {w.area.code for w in ward_entries(example)} >= {"co-nhue-1", "xuan-tao"}
    assert "ha-noi" not in {w.area.code for w in ward_entries(example)}


def test_a_new_chairman_changes_that_one_line_and_keeps_the_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    new = with_chairman(text, DONG_NGAC, "tel:0912345678@pstn")
    assert _changed_lines(text, new) == [
        "-            chairman: tel:0900000103@pstn        # Chủ tịch UBND phường (di động)",
        "+            chairman: tel:0912345678@pstn        # Chủ tịch UBND phường (di động)",
    ]
    config = load_config(EXAMPLE, text=new)
    assert str(config.area("dong-ngac").chairman) == "tel:0912345678@pstn"  # type: ignore[union-attr]


def test_the_fallback_chain_reorders_adds_and_removes_keeping_the_comments() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    path = (*DONG_NGAC, "fallbacks")
    old = ["tel:0900000203@pstn", "phone:vp-dong-ngac", "queue:operator"]
    # The ward office first, then the vice-chairman; voicemail instead of the operators.
    new_chain = ["phone:vp-dong-ngac", "tel:0900000203@pstn", "voicemail"]
    new = with_list(text, path, old, new_chain)
    assert yaml_edit.get_value(new, path) == new_chain
    # Only the moved and replaced steps' lines changed: the step that stayed
    # kept its comment (a moved one is written anew, without it).
    assert _changed_lines(text, new) == [
        "+              - phone:vp-dong-ngac",
        "-              - phone:vp-dong-ngac                    # Văn phòng UBND phường",
        "-              - queue:operator",
        "+              - voicemail",
    ]
    assert "- tel:0900000203@pstn              # Phó Chủ tịch" in new
    # Removing a step removes only its line.
    shorter = with_list(text, path, old, old[:1] + old[2:])
    assert _changed_lines(text, shorter) == [
        "-              - phone:vp-dong-ngac                    # Văn phòng UBND phường"
    ]
    # Unchanged: the same text, byte for byte.
    assert with_list(text, path, old, old) == text


def test_a_form_row_becomes_the_configs_destination() -> None:
    assert form_destination("tel", " 0912 345.678 ", "pstn") == "tel:0912345678@pstn"
    assert form_destination("tel", "0912345678") == "tel:0912345678"
    assert form_destination("phone", "vp-dong-ngac") == "phone:vp-dong-ngac"
    assert form_destination("voicemail", "ignored") == "voicemail"
    assert form_destination("none", "0912") is None
    assert form_destination("queue", "  ") is None  # an empty row is no step


def test_destinations_read_in_the_clerks_words(example: HotlineConfig) -> None:
    def words(text: str | None, language: str = "vi") -> str:
        return describe(Destination.parse(text) if text else None, example, language)

    assert words("tel:0900000103@pstn") == "Số điện thoại 0900000103"
    assert words("phone:vp-dong-ngac") == "Máy bàn Văn phòng UBND Phường Đông Ngạc"
    assert words("queue:operator") == "Điện thoại viên: Điện thoại viên"
    assert words("voicemail", "en") == "Leave a message (it becomes a case)"
    assert words(None, "en") == "Nobody (the caller goes to an operator)"


def test_the_search_finds_a_ward_by_name_without_accents_code_or_key(
    example: HotlineConfig,
) -> None:
    entry = ward_entry(example, "dong-ngac")
    assert entry is not None
    for query in ("Đông Ngạc", "dong ngac", "DONG", "03", "dong-ngac", ""):
        assert matches(entry, query), query
    assert not matches(entry, "Xuân Tảo")


def test_a_ward_is_changed_by_an_administrator_or_its_sole_hotlines_supervisor(
    example: HotlineConfig, combined: HotlineConfig
) -> None:
    admin = AccessScope("quantri", "admin")
    own = AccessScope("gs", "supervisor", hotline_id="bac-tu-liem")
    other = AccessScope("gs-x", "supervisor", hotline_id="thanh-xuan")
    unscoped = AccessScope("gs-all", "supervisor")  # reads everything, changes nothing
    agent = AccessScope("dtv", "agent", agent_id="dtv01", hotline_id="bac-tu-liem")
    ward = ward_entry(example, "dong-ngac")
    assert ward is not None
    assert [may_change(s, example, ward) for s in (admin, own, other, unscoped, agent)] == [
        True, True, False, False, False,
    ]  # fmt: skip
    # Several hotlines share the area tree: only administrators change a ward,
    # though the ward is reached by one hotline's menu (its test calls are that
    # hotline's).
    shared = ward_entry(combined, "phuong-hoan-kiem")
    assert shared is not None and ward_owners(combined, shared) == {"bac-tu-liem-2026"}
    btl = AccessScope("gs-btl", "supervisor", hotline_id="bac-tu-liem-2026")
    assert may_change(admin, combined, shared) and not may_change(btl, combined, shared)


def test_check_config_problems_name_the_field_in_the_clerks_words() -> None:
    text = with_chairman(EXAMPLE.read_text(encoding="utf-8"), DONG_NGAC, "phone:khong-co")
    with pytest.raises(ConfigError) as refused:
        load_config(EXAMPLE, text=text)
    lines = problem_lines(refused.value.problems, yaml.safe_load(text), "vi")
    assert len(lines) == 1 and lines[0].startswith("Chủ tịch phường Đông Ngạc: ")
    assert "khong-co" in lines[0]


# --- the test call's AMI action ------------------------------------------------------


def test_the_test_call_is_one_originate_that_plays_the_greeting() -> None:
    action = trial_call_action(
        "PJSIP/0912345678@pstn", "/srv/prompts/bac-tu-liem/vi/greeting", "02437655555", 20
    )
    assert action == {
        "Action": "Originate",
        "Channel": "PJSIP/0912345678@pstn",
        "Application": "Playback",
        "Data": "/srv/prompts/bac-tu-liem/vi/greeting",
        "CallerID": "<02437655555>",
        "Timeout": "20000",
        "Async": "true",
    }


@pytest.mark.parametrize(
    ("dial", "prompt", "number"),
    [
        ("PJSIP/x\r\nAction: Hangup", "/p/greeting", "02437655555"),  # a second action
        ("Local/s@hotline-spy", "/p/greeting", "02437655555"),  # not a phone or trunk
        ("PJSIP/0912,tt", "/p/greeting", "02437655555"),  # Dial options smuggled in
        ("PJSIP/0912@pstn", "/p/greeting,skip", "02437655555"),  # Playback options
        ("PJSIP/0912@pstn", "relative/greeting", "02437655555"),
        ("PJSIP/0912@pstn", "/p/greeting", "Chủ tịch <0912>"),  # free text as caller id
    ],
)
async def test_nothing_is_sent_for_a_target_the_routing_would_not_build(
    dial: str, prompt: str, number: str
) -> None:
    sent: list[dict[str, Any]] = []

    async def send(action: dict[str, Any]) -> None:
        sent.append(action)

    with pytest.raises(TrialCallRefused):
        await originate_trial_call(send, dial, prompt, number, 20)
    assert sent == []


async def test_the_queue_manager_sends_the_test_call_on_a_node_serving_the_hotline(
    example: HotlineConfig,
) -> None:
    from queue_manager.manager import QueueManager

    manager = QueueManager(example)
    sent: list[dict[str, Any]] = []

    async def send(action: dict[str, Any]) -> None:
        sent.append(action)

    manager.sender_for = lambda hotline_id: send  # type: ignore[method-assign]
    await manager.trial_call("bac-tu-liem", "PJSIP/t-chair-new", "/p/bac-tu-liem/vi/greeting",
                             "02437655555", 20)  # fmt: skip
    assert [a["Channel"] for a in sent] == ["PJSIP/t-chair-new"]
    manager.db.close(wait=False)
