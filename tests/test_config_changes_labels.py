"""The change pipeline's words and rules without a server: field labels in the
clerk's words, the readable list of what changed, who owns a changed field,
and the checks on a reason and on where Apply returns."""

from __future__ import annotations

from pathlib import Path

import yaml

from ivr.config import load_config
from ivr.config.yaml_edit import append_item, remove_item, set_value
from ivr.web.config_changes import (
    _safe_back,
    check_reason,
    describe_changes,
    field_label,
    owners,
    parse_field,
    path_owner,
    problem_in_words,
    refused_fields,
)
from ivr.web.models import WebUser

REPO = Path(__file__).resolve().parents[1]
DISTRICT = (REPO / "examples" / "bac-tu-liem.yaml").read_text(encoding="utf-8")
COMBINED = REPO / "examples" / "combined.yaml"
DONG_NGAC = ("areas", 0, "children", 0, "children", 2)


def test_labels_name_fields_in_vietnamese_first_and_english_on_request() -> None:
    assert field_label((*DONG_NGAC, "chairman"), "vi") == "Chủ tịch"
    assert field_label((*DONG_NGAC, "chairman"), "en") == "Chairman"
    assert field_label((*DONG_NGAC, "fallbacks", 1), "vi") == "Người nghe thay"
    assert field_label(("queues", 3, "members"), "vi") == "Thành viên hàng đợi"
    assert field_label(("departments", 0, "extension"), "vi") == "Số máy lẻ"
    assert field_label(("roster", "overrides", 2, "agents"), "vi") == "Người trực ngày riêng"
    assert field_label(("hotlines", 0, "prompts", "complaints_referral", "vi"), "vi") == (
        "Lời hướng dẫn nơi gửi khiếu nại"
    )
    assert field_label(("hotlines", 0, "prompts", "out_of_scope", "vi"), "vi") == (
        "Lời hướng dẫn nơi gửi khiếu nại"
    )
    assert field_label(("schedules", "office", "weekly", "sat"), "vi") == "Giờ làm việc thứ Bảy"
    assert field_label(("schedules", "office", "weekly", "sat"), "en") == "Hours on Saturday"
    # No label of its own: named from its parts, still readable.
    assert field_label(("queues", 0, "callback_retry_seconds"), "en") == (
        "Queues › #1 › callback retry seconds"
    )


def test_check_config_field_names_read_back_as_paths() -> None:
    assert parse_field("areas[0].children[0].children[2].chairman") == (*DONG_NGAC, "chairman")
    assert parse_field("") == ()


def test_the_changes_are_listed_in_words_with_the_item_named() -> None:
    new = set_value(DISTRICT, (*DONG_NGAC, "chairman"), "tel:0913000103@pstn")
    new = append_item(new, (*DONG_NGAC, "fallbacks"), "queue:operator2")
    [chairman, fallbacks] = describe_changes(yaml.safe_load(DISTRICT), yaml.safe_load(new), "vi")
    assert (chairman.label, chairman.before, chairman.after) == (
        "Chủ tịch phường Đông Ngạc", "0900000103 (qua pstn)", "0913000103 (qua pstn)"
    )  # fmt: skip
    assert fallbacks.label == "Thứ tự người nghe thay phường Đông Ngạc"
    assert fallbacks.before == "0900000203 (qua pstn), máy vp-dong-ngac, hàng đợi operator"
    assert fallbacks.after.endswith("hàng đợi operator, hàng đợi operator2")
    [english, _] = describe_changes(yaml.safe_load(DISTRICT), yaml.safe_load(new), "en")
    assert (english.label, english.after) == (
        "Chairman (Phường Đông Ngạc)",
        "0913000103 (via pstn)",
    )


def test_a_removed_record_is_one_change_not_one_per_following_record() -> None:
    new = remove_item(DISTRICT, ("phones", 1))
    [removed] = describe_changes(yaml.safe_load(DISTRICT), yaml.safe_load(new), "en")
    assert removed.label == "Phone" and "pb-noi-vu" in removed.before and removed.after == ""


def test_secrets_are_never_shown_in_the_list() -> None:
    new = set_value(DISTRICT, ("phones", 0, "secret"), "bi-mat-rat-dai-0123456789")
    [change] = describe_changes(yaml.safe_load(DISTRICT), yaml.safe_load(new), "vi")
    assert "bi-mat" not in change.after and change.after == "••••••"


def test_owners_of_changed_fields() -> None:
    combined = load_config(COMBINED)
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    tx = next(i for i, q in enumerate(combined.queues) if q.hotline == "thanh-xuan")
    assert path_owner(combined, data, ("queues", tx, "members")) == "thanh-xuan"
    assert path_owner(combined, data, ("areas", 0, "name")) is None  # shared
    assert path_owner(combined, data, ("asterisk", "ami", "secret")) is None
    district = load_config(REPO / "examples" / "bac-tu-liem.yaml")
    one = yaml.safe_load(DISTRICT)
    sole = district.hotlines[0].id
    assert path_owner(district, one, (*DONG_NGAC, "chairman")) == sole
    assert path_owner(district, one, ("timezone",)) is None
    new = set_value(DISTRICT, (*DONG_NGAC, "chairman"), "tel:0913000103@pstn")
    assert owners(district, one, yaml.safe_load(new)) == [sole]
    supervisor = WebUser(username="gs", role="supervisor", hotline_id=sole)
    assert refused_fields(supervisor, district, one, yaml.safe_load(new)) == []
    machinery = set_value(DISTRICT, ("asterisk", "agi", "port"), 4574)
    assert refused_fields(supervisor, district, one, yaml.safe_load(machinery)) == [
        ("asterisk", "agi", "port")
    ]
    # A supervisor with no hotline set, in a one-authority deployment: the same.
    everyone = WebUser(username="gs0", role="supervisor", hotline_id=None)
    assert refused_fields(everyone, district, one, yaml.safe_load(new)) == []
    agent = WebUser(username="dtv", role="agent")
    assert refused_fields(agent, district, one, yaml.safe_load(new)) == [(*DONG_NGAC, "chairman")]
    admin = WebUser(username="qt", role="admin")
    assert refused_fields(admin, district, one, yaml.safe_load(machinery)) == []


def test_a_reason_is_one_line_of_3_to_500_characters() -> None:
    assert check_reason("Bầu Chủ tịch mới") == ""
    assert check_reason("ok") != ""
    assert check_reason("x" * 501) != ""
    assert check_reason("dòng một\r\nAction: Hangup") != ""
    assert check_reason("tab\there") != ""


def test_apply_returns_only_to_a_page_of_this_site() -> None:
    assert _safe_back("/admin/wards/dong-ngac?tab=1") == "/admin/wards/dong-ngac?tab=1"
    for hostile in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)",
                    "admin", "/admin\r\nSet-Cookie: x=1", "/\\evil.example"):  # fmt: skip
        assert _safe_back(hostile) == "/admin/changes", hostile


def test_check_config_messages_read_in_the_clerks_words() -> None:
    assert problem_in_words("unknown queue 'x' (known: 'a', 'b')", "vi") == (
        "không có hàng đợi “x” (đang có: 'a', 'b')"
    )
    assert problem_in_words("'tel:abc': expected tel:<digits>[@trunk]", "vi").startswith(
        "“tel:abc” không phải số điện thoại"
    )
    assert problem_in_words("Input should be less than or equal to 600 (got 9999)", "vi") == (
        "phải nhỏ hơn hoặc bằng 600"
    )
    assert problem_in_words("String should have at least 1 character (got '')", "vi") == (
        "không được để trống"
    )
    assert problem_in_words("unknown queue 'x'", "en") == "unknown queue 'x'"
    assert problem_in_words("something new", "vi") == "something new"
