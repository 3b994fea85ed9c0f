"""GeoReport v2's wire formats (ivr/web/open311_format.py): the spec's element
names, errors, w3 datetimes and the 90-day window; and the channel's config
errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ivr.web.open311_format import (
    REQUESTS,
    SERVICES,
    Open311Error,
    comma_list,
    date_range,
    end_of_day,
    error_body,
    parse_w3,
    render,
    w3,
)
from tests.config_checks import config_problems, line_of
from tests.rig.stack import EXAMPLE

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def test_services_in_xml_use_the_spec_element_names_and_words() -> None:
    body, content_type = render(
        "xml", SERVICES,
        [{"service_code": "moi-truong", "service_name": "Môi trường", "metadata": False,
          "type": "realtime", "keywords": "rác, nước", "group": None}],
    )  # fmt: skip
    assert content_type.startswith("text/xml")
    root = ET.fromstring(body)
    assert root.tag == "services"
    (service,) = root.findall("service")
    assert service.findtext("service_code") == "moi-truong"
    assert service.findtext("service_name") == "Môi trường"
    assert service.findtext("metadata") == "false"
    assert service.findtext("type") == "realtime"
    assert service.findtext("group") == ""  # an empty value is an empty element


def test_json_keeps_null_and_booleans_and_unicode() -> None:
    body, content_type = render("json", REQUESTS, [{"service_request_id": "12345678",
                                                    "account_id": None, "metadata": True,
                                                    "description": "Đèn hỏng"}])  # fmt: skip
    assert content_type.startswith("application/json")
    assert json.loads(body) == [
        {"service_request_id": "12345678", "account_id": None, "metadata": True,
         "description": "Đèn hỏng"}
    ]  # fmt: skip


def test_errors_are_the_spec_list_in_both_formats() -> None:
    body, _ = error_body("json", [(403, "api_key is not valid")])
    assert json.loads(body) == [{"code": 403, "description": "api_key is not valid"}]
    body, _ = error_body("xml", [(400, "service_code is required")])
    root = ET.fromstring(body)
    assert root.tag == "errors"
    assert [(e.findtext("code"), e.findtext("description")) for e in root] == [
        ("400", "service_code is required")
    ]


def test_xml_escapes_markup_and_drops_characters_xml_cannot_carry() -> None:
    body, _ = render("xml", REQUESTS, [{"description": "<b>x</b> & \x07bell"}])
    request = ET.fromstring(body).find("request")
    assert request is not None
    assert request.findtext("description") == "<b>x</b> & bell"


def test_a_nested_object_definition_renders_as_one_element() -> None:
    body, _ = render("xml", ("service_definition", None), {"service_code": "x", "attributes": []})
    root = ET.fromstring(body)
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "x"


def test_w3_datetimes_carry_the_hotline_offset_and_due_dates_end_the_day() -> None:
    assert w3(datetime(2026, 11, 30, 2, 15, tzinfo=UTC), HANOI) == "2026-11-30T09:15:00+07:00"
    assert end_of_day(date(2026, 12, 4), HANOI) == "2026-12-04T23:59:59+07:00"
    assert w3(None, HANOI) is None


def test_w3_input_with_z_offset_or_date_alone() -> None:
    assert parse_w3("2026-01-01T00:00:00Z", "start_date", HANOI) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_w3("2026-01-01", "start_date", HANOI) == datetime(2026, 1, 1, tzinfo=HANOI)
    naive = parse_w3("2026-01-01T08:00:00", "end_date", HANOI)
    assert naive.utcoffset() == timedelta(hours=7)
    with pytest.raises(Open311Error) as refused:
        parse_w3("yesterday", "start_date", HANOI)
    assert refused.value.status == 400
    assert "start_date" in refused.value.description


def test_the_window_defaults_to_ninety_days_and_refuses_more() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert date_range(None, None, now, HANOI) == (now - timedelta(days=90), now)
    start, end = date_range("2026-01-01T00:00:00Z", None, now, HANOI)
    assert end - start == timedelta(days=90)
    start, end = date_range(None, "2026-06-01T00:00:00Z", now, HANOI)
    assert end - start == timedelta(days=90)
    with pytest.raises(Open311Error, match="90 days"):
        date_range("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z", now, HANOI)
    with pytest.raises(Open311Error, match="before"):
        date_range("2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z", now, HANOI)


def test_comma_lists_drop_blanks_and_are_capped() -> None:
    assert comma_list(" 1, 2,,3 ", limit=5) == ["1", "2", "3"]
    assert comma_list(None, limit=5) == []
    with pytest.raises(Open311Error):
        comma_list("1,2,3", limit=2)


def test_config_errors_name_the_line_of_an_unknown_open311_topic(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["channels"] = {
        "open311": {"enabled": True, "topics": ["hien-truong", "den-duong"],
                    "services": {"rac-thai": {"group": "Đô thị"}}, "requests_per_minute": 0}
    }  # fmt: skip
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    problems = config_problems(path)
    assert "requests_per_minute" in problems
    data["channels"]["open311"].pop("requests_per_minute")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    problems = config_problems(path)
    topic_line = line_of(path, "den-duong")
    assert f"{path}:{topic_line}: channels.open311.topics[1]: unknown topic 'den-duong'" in problems
    assert f"{path}:{line_of(path, 'rac-thai')}: channels.open311.services.rac-thai" in problems
