"""Open311 GeoReport v2 in the console's app (ivr/web/open311.py) against a real
database, with the intake faked (its own tests are the intake's): services,
POST with an API key, GET requests without personal data, the spec's errors,
retries, budgets, and the keys' store and command."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, func, select

from ivr.audit import AuditEntry
from ivr.cases.models import Case
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.contracts.channels import Channel, ContactKind
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.intake.types import IntakeRefused, IntakeResult, Submission
from ivr.web.api_keys import ApiKeyStore, Open311ApiKey
from ivr.web.app import create_app
from ivr.web.intake_state import INTAKE
from ivr.web.open311_cli import run_open311_keys_command
from ivr.web.open311_store import Open311Request
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

pytestmark = pytest.mark.db

BASE = "/open311/v2"
HOTLINE = "bac-tu-liem"
POSTS_PER_MINUTE = 8


def _config(tmp_path: Path, **open311: Any) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl")}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["web"] = {"cookie_secure": False}
    data["channels"] = {
        "open311": {
            "enabled": True,
            "requests_per_minute": POSTS_PER_MINUTE,
            "max_request_bytes": 64 * 1024,
            "services": {"hien-truong": {"keywords": ["rác", "đèn"], "group": "Đô thị"}},
            **open311,
        }
    }
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@dataclass
class FakeIntake:
    """The intake's contract over the real case service: one case per
    submission, the first result again for a known idempotency key."""

    cases: CaseService
    submissions: list[Submission] = field(default_factory=list)
    seen: dict[str, IntakeResult] = field(default_factory=dict)

    def submit(self, submission: Submission) -> IntakeResult:
        self.submissions.append(submission)
        key = submission.idempotency_key
        if key and key in self.seen:
            first = self.seen[key]
            return IntakeResult(first.case_code, first.case_id, first.message_id, False, True)
        if "database down" in submission.text:  # stands for a failure of the server
            raise RuntimeError("database down")
        if "<script" in submission.text:  # stands for any refusal of the intake
            raise IntakeRefused("the description holds markup", "description")
        phone = next((v for k, v in submission.contacts if k == ContactKind.PHONE), None)
        case = self.cases.open_case(
            channel=submission.channel, hotline_id=submission.hotline_id, caller_number=phone,
            caller_name=submission.name, topic=submission.topic, summary=submission.text,
        )  # fmt: skip
        with self.cases._sessions.begin() as session:  # what the real intake keeps too
            row = session.get(Case, case.id)
            assert row is not None
            row.address, row.latitude, row.longitude = (
                submission.address,
                submission.latitude,
                submission.longitude,
            )
        result = IntakeResult(case.code, case.id, len(self.submissions), True)
        if key:
            self.seen[key] = result
        return result

    def status(self, case_code: str, contact: Any) -> None:
        return None


@dataclass
class Api:
    client: TestClient
    intake: FakeIntake
    sessions: Any
    key: str
    config: HotlineConfig

    async def post(self, fmt: str = "json", headers: Any = None, **fields: Any) -> Any:
        data = {"api_key": self.key, "service_code": "hien-truong", "lat": "21.07",
                "long": "105.76", "description": "Đèn đường hỏng ở ngõ 12", **fields}  # fmt: skip
        data = {k: v for k, v in data.items() if v is not None}
        return await self.client.post(f"{BASE}/requests.{fmt}", data=data, headers=headers)

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Any]:
    config = _config(tmp_path)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


async def _api(config: HotlineConfig, sessions: Any) -> tuple[TestClient, FakeIntake]:
    app = create_app(config, sessions, secret=b"s" * 32)
    intake = FakeIntake(CaseService(sessions, config))
    app[INTAKE] = intake
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, intake


@pytest_asyncio.fixture(loop_scope="session")
async def api(tmp_path: Path, sessions: Any) -> AsyncIterator[Api]:
    config = _config(tmp_path)
    _, key = ApiKeyStore(sessions).create(HOTLINE, "iHanoi", "quantri")
    client, intake = await _api(config, sessions)
    try:
        yield Api(client, intake, sessions, key, config)
    finally:
        await client.close()


def _xml_errors(body: str) -> list[tuple[str | None, str | None]]:
    root = ET.fromstring(body)
    assert root.tag == "errors", body
    return [(e.findtext("code"), e.findtext("description")) for e in root.findall("error")]


# --- services -------------------------------------------------------------------------


async def test_services_are_the_hotline_topics_in_json_and_xml(api: Api) -> None:
    answer = await api.client.get(f"{BASE}/services.json")
    assert answer.status == 200
    services = await answer.json()
    assert [s["service_code"] for s in services] == [t.code for t in api.config.cases.topics]
    scene = next(s for s in services if s["service_code"] == "hien-truong")
    assert scene["metadata"] is False and scene["type"] == "realtime"
    assert scene["keywords"] == "rác, đèn" and scene["group"] == "Đô thị"

    answer = await api.client.get(f"{BASE}/services.xml", params={"jurisdiction_id": HOTLINE})
    assert answer.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(await answer.text())
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.findall("service")] == [
        t.code for t in api.config.cases.topics
    ]
    definition = await api.client.get(f"{BASE}/services/hien-truong.json")
    assert (await definition.json())["service_code"] == "hien-truong"
    missing = await api.client.get(f"{BASE}/services/khong-co.xml")
    assert missing.status == 404
    assert _xml_errors(await missing.text())[0][0] == "404"


async def test_discovery_names_this_endpoint_and_both_formats(api: Api) -> None:
    answer = await (await api.client.get(f"{BASE}/discovery.json")).json()
    (endpoint,) = answer["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith(BASE) and endpoint["formats"] == [
        "application/json", "text/xml"
    ]  # fmt: skip
    forged = await api.client.get(f"{BASE}/discovery.json", headers={"Host": "evil.example"})
    assert (await forged.json())["endpoints"][0]["url"] == "http://evil.example" + BASE
    root = ET.fromstring(await (await api.client.get(f"{BASE}/discovery.xml")).text())
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "application/json", "text/xml"
    ]  # fmt: skip


async def test_unknown_jurisdiction_and_format_answer_in_the_spec_format(api: Api) -> None:
    answer = await api.client.get(f"{BASE}/services.json", params={"jurisdiction_id": "hue"})
    assert answer.status == 404
    assert (await answer.json())[0]["code"] == 404
    answer = await api.client.get(f"{BASE}/services.html")
    assert answer.status == 404
    assert (await answer.json())[0]["description"].startswith("unknown format")


async def test_several_hotlines_need_a_jurisdiction(tmp_path: Path, sessions: Any) -> None:
    config = _config(tmp_path)
    second = config.hotlines[0].model_copy(update={"id": "hotline-b", "numbers": ["19001234"]})
    config = config.model_copy(update={"hotlines": [*config.hotlines, second]})
    client, _ = await _api(config, sessions)
    try:
        answer = await client.get(f"{BASE}/services.json")
        assert answer.status == 400
        assert "jurisdiction_id is required" in (await answer.json())[0]["description"]
        answer = await client.get(f"{BASE}/services.json", params={"jurisdiction_id": "hotline-b"})
        assert answer.status == 200
    finally:
        await client.close()


async def test_a_disabled_channel_answers_404_in_the_spec_format(
    tmp_path: Path, sessions: Any
) -> None:
    client, _ = await _api(_config(tmp_path, enabled=False), sessions)
    try:
        answer = await client.get(f"{BASE}/services.xml")
        assert answer.status == 404
        assert _xml_errors(await answer.text())[0][0] == "404"
    finally:
        await client.close()


# --- POST requests -----------------------------------------------------------------


async def test_a_post_opens_an_open311_case_through_the_intake(api: Api) -> None:
    answer = await api.post(
        first_name="Văn An", last_name="Nguyễn", phone="0912 345 678",
        email="An.Nguyen@Example.VN", account_id="acc-7", address_string="Ngõ 12 Phú Diễn",
        device_id="iphone-42", address_id="so-nha-12",
    )  # fmt: skip
    assert answer.status == 200, await answer.text()
    (created,) = await answer.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["account_id"] == "acc-7"
    (submission,) = api.intake.submissions
    assert submission.channel == Channel.OPEN311
    assert submission.hotline_id == HOTLINE and submission.topic == "hien-truong"
    assert submission.name == "Nguyễn Văn An"
    assert set(submission.contacts) == {
        (ContactKind.PHONE, "+84912345678"), (ContactKind.EMAIL, "an.nguyen@example.vn")
    }  # fmt: skip
    assert (submission.latitude, submission.longitude) == (21.07, 105.76)
    key = ApiKeyStore(api.sessions).check(api.key)
    assert key is not None and (submission.external_id or "").startswith(f"open311:{key.id}:")
    with api.sessions() as session:
        case = session.scalars(select(Case)).one()
        row = session.scalars(select(Open311Request)).one()
    assert case.code == created["service_request_id"] and case.channel == "open311"
    assert case.address == "Ngõ 12 Phú Diễn"
    assert (row.case_id, row.api_key_id, row.address_id) == (case.id, key.id, "so-nha-12")
    # The app's ids of the citizen are not kept (data minimisation).
    assert not {"device_id", "account_id"} & set(Open311Request.__table__.columns.keys())


async def test_the_xml_answer_of_a_post_is_the_spec_request_list(api: Api) -> None:
    answer = await api.post("xml")
    root = ET.fromstring(await answer.text())
    assert root.tag == "service_requests"
    request = root.find("request")
    assert request is not None and request.findtext("service_request_id")


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"api_key": None}, 403, "api_key is required"),
        ({"api_key": "o311_not-a-key"}, 403, "api_key is not valid"),
        ({"service_code": None}, 400, "service_code is required"),
        ({"service_code": "khong-co"}, 400, "not a service"),
        ({"long": None}, 400, "lat and long go together"),
        ({"lat": None, "long": None}, 400, "a location is required"),
        ({"lat": "91"}, 400, "out of range"),
        ({"lat": "nan"}, 400, "out of range"),
        ({"first_name": "An\r\nX-Injected: 1"}, 400, "line breaks"),
        ({"email": "not-an-address"}, 400, "email"),
        ({"phone": "abc"}, 400, "phone"),
        ({"media_url": "file:///etc/passwd"}, 400, "media_url"),
        ({"jurisdiction_id": "hue"}, 404, "unknown jurisdiction_id"),
        ({"description": "<script>alert(1)</script>"}, 400, "description: "),
        ({"description": "x" * 4001}, 400, "longer than 4000"),
    ],
)
async def test_malformed_posts_get_the_spec_error_and_write_nothing(
    api: Api, fields: dict[str, Any], status: int, words: str
) -> None:
    answer = await api.post(**fields)
    assert answer.status == status, await answer.text()
    (error,) = await answer.json()
    assert error["code"] == status and words in error["description"]
    assert api.count(Case) == 0 and api.count(Open311Request) == 0


async def test_a_failure_of_the_server_is_a_500_in_the_spec_format(api: Api) -> None:
    answer = await api.post("xml", description="database down")
    assert answer.status == 500
    assert _xml_errors(await answer.text()) == [("500", "the server failed; nothing was saved")]
    assert api.count(Open311Request) == 0


async def test_a_bad_key_in_xml_is_an_xml_error(api: Api) -> None:
    answer = await api.post("xml", api_key="o311_wrong")
    assert answer.status == 403
    assert _xml_errors(await answer.text()) == [("403", "api_key is not valid")]


async def test_a_revoked_key_and_another_hotlines_key_are_refused(api: Api) -> None:
    keys = ApiKeyStore(api.sessions)
    view = keys.check(api.key)
    assert view is not None
    keys.revoke(view.id, "quantri")
    assert (await api.post()).status == 403
    _, other = keys.create("hotline-khac", "Other app", "quantri")
    answer = await api.post(api_key=other)
    assert answer.status == 403
    assert "jurisdiction" in (await answer.json())[0]["description"]
    assert api.count(Case) == 0


async def test_an_oversized_body_is_413_before_anything_is_written(api: Api) -> None:
    answer = await api.post(description="x" * (70 * 1024))
    assert answer.status == 413
    assert (await answer.json())[0]["code"] == 413
    form = FormData({"api_key": api.key, "service_code": "hien-truong", "lat": "21", "long": "105"})
    form.add_field("media", b"\xff\xd8" + b"0" * (70 * 1024), filename="a.jpg",
                   content_type="image/jpeg")  # fmt: skip
    answer = await api.client.post(f"{BASE}/requests.xml", data=form)
    assert answer.status == 413
    assert _xml_errors(await answer.text())[0][0] == "413"
    assert api.count(Case) == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=zzz", b"not a multipart body at all"),
        ("multipart/form-data", b"--\r\n"),  # no boundary
        ("application/json", b'{"api_key": "x"}'),
    ],
)
async def test_a_malformed_body_is_a_400_in_the_spec_format(
    api: Api, content_type: str, body: bytes
) -> None:
    answer = await api.client.post(
        f"{BASE}/requests.xml", data=body, headers={"Content-Type": content_type}
    )
    assert answer.status == 400, await answer.text()
    assert _xml_errors(await answer.text())[0][0] == "400"
    assert api.count(Case) == 0


async def test_a_multipart_post_hands_the_media_file_to_the_intake(api: Api) -> None:
    form = FormData({"api_key": api.key, "service_code": "hien-truong",
                     "address_string": "Phú Diễn", "description": "Ảnh rác"})  # fmt: skip
    form.add_field("media", b"\x89PNG\r\n\x1a\nfake", filename="rac.png", content_type="image/png")
    answer = await api.client.post(f"{BASE}/requests.json", data=form)
    assert answer.status == 200, await answer.text()
    (submission,) = api.intake.submissions
    (attachment,) = submission.attachments
    assert attachment.filename == "rac.png" and attachment.content.startswith(b"\x89PNG")
    assert submission.latitude is None and submission.address == "Phú Diễn"


async def test_media_url_is_stored_as_a_link_and_never_fetched(api: Api) -> None:
    hits: list[str] = []

    async def photo(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"\xff\xd8\xff")

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/photo.jpg"))
        answer = await api.post(media_url=url)
        code = (await answer.json())[0]["service_request_id"]
        shown = await api.client.get(f"{BASE}/requests/{code}.json")
        assert (await shown.json())[0]["media_url"] == url
    finally:
        await server.close()
    assert hits == []
    assert url in api.intake.submissions[0].text  # the agents see the link


async def test_retries_with_one_idempotency_key_make_one_case(api: Api) -> None:
    headers = {"Idempotency-Key": "app-request-42"}
    first = await (await api.post(headers=headers)).json()
    again = await (await api.post(headers=headers)).json()
    assert first[0]["service_request_id"] == again[0]["service_request_id"]
    by_device = [await (await api.post(device_id="phone-1")).json() for _ in range(2)]
    assert by_device[0] == by_device[1]
    other = await (await api.post(device_id="phone-1", description="Một việc khác")).json()
    assert other != by_device[0]
    assert api.count(Case) == 3
    assert api.count(Open311Request) == 0  # no media link, no address_id: no row


async def test_a_device_posting_two_photos_with_the_same_words_makes_two_cases(
    api: Api,
) -> None:
    codes = []
    for photo in (b"\xff\xd8first", b"\xff\xd8second", b"\xff\xd8second"):
        form = FormData({"api_key": api.key, "service_code": "hien-truong", "lat": "21",
                         "long": "105", "description": "Rác", "device_id": "phone-9"})  # fmt: skip
        form.add_field("media", photo, filename="a.jpg", content_type="image/jpeg")
        answer = await api.client.post(f"{BASE}/requests.json", data=form)
        codes.append((await answer.json())[0]["service_request_id"])
    assert codes[0] != codes[1] and codes[1] == codes[2]  # the same photo again: a retry
    assert api.count(Case) == 2


async def test_a_burst_with_one_key_looks_it_up_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests arriving while the key's lookup waits share it (under a backlog
    each would otherwise queue a lookup of its own)."""
    looked_up: list[str] = []
    real_check = ApiKeyStore.check

    def slow_check(self: ApiKeyStore, key: str) -> Any:
        looked_up.append(key)
        time.sleep(0.3)
        return real_check(self, key)

    monkeypatch.setattr(ApiKeyStore, "check", slow_check)
    answers = await asyncio.gather(*(api.post() for _ in range(5)))
    assert [a.status for a in answers] == [200] * 5
    assert looked_up == [api.key]
    assert (await api.post()).status == 200 and looked_up == [api.key]  # then trusted


async def test_posts_per_key_have_a_budget(api: Api) -> None:
    statuses = [(await api.post()).status for _ in range(POSTS_PER_MINUTE + 1)]
    assert statuses == [200] * POSTS_PER_MINUTE + [429]
    refused = await api.post()
    assert "Retry-After" in refused.headers
    assert api.count(Case) == POSTS_PER_MINUTE


async def test_discovery_names_the_configured_address_not_the_host_header(
    tmp_path: Path, sessions: Any
) -> None:
    config = _config(tmp_path, public_url="https://hotline.example.gov.vn")
    client, _ = await _api(config, sessions)
    try:
        answer = await client.get(f"{BASE}/discovery.json", headers={"Host": "evil.example"})
        url = (await answer.json())["endpoints"][0]["url"]
        assert url == "https://hotline.example.gov.vn/open311/v2"
    finally:
        await client.close()


async def test_reads_per_client_address_have_a_budget(tmp_path: Path, sessions: Any) -> None:
    client, _ = await _api(_config(tmp_path, reads_per_minute=3), sessions)
    try:
        statuses = [(await client.get(f"{BASE}/services.xml")).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get(f"{BASE}/requests.xml")
        assert _xml_errors(await refused.text())[0][0] == "429"
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        await client.close()


# --- GET requests ------------------------------------------------------------------


async def test_a_request_shows_only_what_a_public_page_may(api: Api) -> None:
    answer = await api.post(
        first_name="Văn An", last_name="Nguyễn", phone="0912345678", email="an@example.vn",
        description="Nguyễn Văn An báo: đèn hỏng, gọi 0912 345 678 hoặc an@example.vn",
        address_string="Ngõ 12",
    )  # fmt: skip
    code = (await answer.json())[0]["service_request_id"]
    (shown,) = await (await api.client.get(f"{BASE}/requests/{code}.json")).json()
    text = json.dumps(shown, ensure_ascii=False)
    for personal in ("0912", "an@example.vn", "Nguyễn Văn An", "+8491"):
        assert personal not in text
    assert shown["status"] == "open" and shown["service_code"] == "hien-truong"
    topics = {t.code: t.name for t in api.config.cases.topics}
    assert shown["service_name"] == topics["hien-truong"]
    assert shown["address"] == "Ngõ 12" and shown["lat"] == 21.07
    assert shown["requested_datetime"].endswith("+07:00")
    assert shown["expected_datetime"].endswith("T23:59:59+07:00")
    assert shown["status_notes"] is None

    cases = CaseService(api.sessions, api.config)
    cases.change_status(code, "in_progress", "dtv1")
    cases.change_status(code, "answered", "dtv1", note="Đã sửa đèn, cảm ơn Nguyễn Văn An")
    (shown,) = await (await api.client.get(f"{BASE}/requests/{code}.json")).json()
    assert shown["status"] == "closed"
    assert shown["status_notes"].startswith("Đã sửa đèn") and "Nguyễn Văn An" not in shown[
        "status_notes"]  # fmt: skip
    missing = await api.client.get(f"{BASE}/requests/99999999.xml")
    assert missing.status == 404 and _xml_errors(await missing.text())[0][0] == "404"


async def test_request_lists_by_ids_service_status_and_window(api: Api) -> None:
    codes = [(await (await api.post()).json())[0]["service_request_id"] for _ in range(3)]
    other = await (await api.post(service_code="khac")).json()
    CaseService(api.sessions, api.config).change_status(codes[0], "rejected", "gs",
                                                        note="Không thuộc thẩm quyền")  # fmt: skip
    listed = await (await api.client.get(f"{BASE}/requests.json")).json()
    assert {r["service_request_id"] for r in listed} == {*codes, other[0]["service_request_id"]}
    by_ids = await api.client.get(
        f"{BASE}/requests.xml", params={"service_request_id": f"{codes[1]},{codes[2]},abc"}
    )
    root = ET.fromstring(await by_ids.text())
    assert root.tag == "service_requests"
    assert {r.findtext("service_request_id") for r in root.findall("request")} == {*codes[1:]}
    open_scene = await (
        await api.client.get(f"{BASE}/requests.json",
                             params={"service_code": "hien-truong", "status": "open"})
    ).json()  # fmt: skip
    assert {r["service_request_id"] for r in open_scene} == set(codes[1:])
    closed = await (
        await api.client.get(f"{BASE}/requests.json", params={"status": "closed"})
    ).json()
    assert [r["service_request_id"] for r in closed] == [codes[0]]
    assert closed[0]["status_notes"] == "Không thuộc thẩm quyền"
    old = await (
        await api.client.get(f"{BASE}/requests.json",
                             params={"start_date": "2020-01-01T00:00:00Z",
                                     "end_date": "2020-02-01T00:00:00Z"})
    ).json()  # fmt: skip
    assert old == []
    too_long = await api.client.get(
        f"{BASE}/requests.json",
        params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
    )
    assert too_long.status == 400
    bad_status = await api.client.get(f"{BASE}/requests.json", params={"status": "pending"})
    assert bad_status.status == 400


async def test_a_case_whose_open311_row_is_missing_is_still_listed(api: Api) -> None:
    code = (await (await api.post(media_url="https://example.vn/a.jpg")).json())[0][
        "service_request_id"
    ]
    assert api.count(Open311Request) == 1
    with api.sessions.begin() as session:  # as if the second write had failed
        session.execute(delete(Open311Request))
    (shown,) = await (await api.client.get(f"{BASE}/requests.json")).json()
    assert shown["service_request_id"] == code and shown["media_url"] is None


async def test_cases_of_other_channels_are_never_listed(api: Api) -> None:
    CaseService(api.sessions, api.config).open_case(
        channel="phone", hotline_id=HOTLINE, caller_number="+84912345678", summary="Qua điện thoại"
    )
    assert await (await api.client.get(f"{BASE}/requests.json")).json() == []


# --- keys ----------------------------------------------------------------------------


def test_keys_are_stored_hashed_shown_once_and_audited(sessions: Any) -> None:
    keys = ApiKeyStore(sessions)
    view, key = keys.create(HOTLINE, "  iHanoi  app ", "quantri", contact="so-tttt@hanoi.gov.vn")
    assert view.app_name == "iHanoi app" and key.startswith("o311_") and len(key) > 40
    with sessions() as session:
        row = session.get(Open311ApiKey, view.id)
        assert row is not None and key not in (row.key_hash, row.key_prefix)
    assert keys.check(key) == view
    assert keys.check(key + "x") is None
    keys.revoke(view.id, "quantri")
    keys.revoke(view.id, "quantri")  # twice: one audit row
    assert keys.check(key) is None
    with sessions() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["open311_key_add", "open311_key_revoke"]


def test_the_keys_command_adds_lists_and_revokes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)

    def run(*argv: str) -> tuple[int, str]:
        from ivr.cli import build_parser

        args: argparse.Namespace = build_parser().parse_args(["open311-keys", *argv])
        code = run_open311_keys_command(config, args)
        return code, capsys.readouterr().out

    code, out = run("add", "--hotline", HOTLINE, "--app", "iHanoi")
    assert code == 0
    key = out.splitlines()[1]
    code, listed = run("list")
    assert key not in listed and key[:11] in listed and "active" in listed
    assert run("revoke", "1")[0] == 0
    assert "revoked" in run("list")[1]
    assert run("add", "--hotline", "hue", "--app", "x")[0] == 2
    assert run("revoke", "99")[0] == 2


def test_a_checked_key_is_trusted_for_two_seconds_only() -> None:
    """The console asks the database again after CHECKED_SECONDS, so a key
    revoked from the command line is refused within that time."""
    from ivr.web.api_keys import ApiKeyView, CheckedKeys

    view = ApiKeyView(1, HOTLINE, "app", "", "o311_abcdef", None, "x", None)  # type: ignore[arg-type]
    checked = CheckedKeys(seconds=2.0, size=2)
    checked.put("o311_key", view, now=100.0)
    assert checked.get("o311_key", now=101.9) == view
    assert checked.get("o311_key", now=102.0) is None
    assert checked.get("o311_other", now=100.0) is None
    checked.put("o311_b", view, now=100.0)
    checked.put("o311_c", view, now=100.0)  # full: the oldest go, never more than size
    assert len(checked._found) <= 2
