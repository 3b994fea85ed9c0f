"""Open311 end to end: the real ``hotline serve --only web`` (tests/rig/serve.py)
with the real intake; the API key issued by the real ``hotline open311-keys``
command; ``GET services`` and ``GET requests`` read by the ``georeport``
package from PyPI (a client no one here wrote, in JSON and in XML through its
own xmltodict parsing); a ``POST requests`` over plain HTTP (georeport has no
POST) whose case an agent then sees in the console's case API.

Marked ``db``: it runs on SQLite, and on the rig's PostgreSQL with
HOTLINE_TEST_DB=postgresql.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import requests
from georeport import GeoReport
from PIL import Image

from ivr.cases.service import CaseService
from ivr.config import load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.intake.service import IntakeService
from ivr.sim.polling import wait_for
from ivr.web.api_keys import CHECKED_SECONDS
from ivr.web.intake_state import attachments_root
from tests.rig.serve import Served, running_serve, write_serve_config
from tests.rig.stack import REPO

pytestmark = [pytest.mark.db, pytest.mark.integration]

PASSWORD = "mat-khau-dai-12345"


def _hotline(*argv: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", *argv], cwd=REPO, input=stdin, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def serve_config(tmp_path: Path) -> Path:
    def tweak(data: dict[str, Any]) -> None:
        data["channels"] = {"open311": {"enabled": True}}

    return write_serve_config(tmp_path, tweak=tweak)


@pytest_asyncio.fixture(loop_scope="session")
async def served(serve_config: Path) -> AsyncIterator[tuple[Served, str]]:
    config = load_config(serve_config)
    hotline_id = config.hotlines[0].id
    # Before serve: the command migrates the database itself.
    out = await asyncio.to_thread(
        _hotline, "--config", str(serve_config), "open311-keys", "add", "--hotline", hotline_id,
        "--app", "Ứng dụng phản ánh",
    )  # fmt: skip
    key = out.splitlines()[1]
    await asyncio.to_thread(
        _hotline, "--config", str(serve_config), "users", "add", "dtv1", "--role", "agent",
        "--agent", config.agents[0].id, "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    async with running_serve(serve_config) as running:
        yield running, key


async def _signed_in(http: aiohttp.ClientSession, base: str) -> None:
    page = await (await http.get(base + "/login")).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    answer = await http.post(
        base + "/login",
        data={"username": "dtv1", "password": PASSWORD, "csrf_token": match.group(1), "next": "/"},
        allow_redirects=False,
    )
    assert answer.status == 302, await answer.text()


async def test_georeport_reads_services_and_a_posted_request_reaches_the_console(
    served: tuple[Served, str], serve_config: Path
) -> None:
    running, key = served
    config = load_config(serve_config)
    root = running.base_url + "/open311/v2"
    topics = [t.code for t in config.cases.topics]

    as_json = GeoReport(root)  # one hotline: no jurisdiction needed
    as_xml = GeoReport(root, jurisdiction=config.hotlines[0].id, output_format="xml")
    services = await asyncio.to_thread(as_json.get_service_list)
    assert [s["service_code"] for s in services] == topics
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)
    xml_services = await asyncio.to_thread(as_xml.get_service_list)
    assert [s["service_code"] for s in xml_services] == topics
    assert xml_services[0]["metadata"] == "false"
    definition = await asyncio.to_thread(as_xml.get_service_definition, topics[2])
    assert definition["service_code"] == topics[2]

    fields = {
        "api_key": key, "service_code": topics[2], "lat": "21.0705", "long": "105.7601",
        "address_string": "Ngõ 12 Phú Diễn", "description": "Cột đèn đổ chắn ngõ 12",
        "first_name": "Văn An", "last_name": "Nguyễn", "phone": "0912345678",
    }  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(root + "/requests.xml", data=fields) as answer,
    ):
        body = await answer.text()
    assert answer.status == 200, body + running.log
    posted = ET.fromstring(body)
    assert posted.tag == "service_requests"
    code = posted.findtext("request/service_request_id")
    assert code and code.isdigit()

    listed = await asyncio.to_thread(as_json.get_service_requests)
    assert [r["service_request_id"] for r in listed] == [code]
    one = await asyncio.to_thread(as_json.get_service_request, code)
    assert one["status"] == "open" and one["description"] == "Cột đèn đổ chắn ngõ 12"
    assert one["address"] == "Ngõ 12 Phú Diễn" and one["lat"] == 21.0705
    assert "0912345678" not in str(one) and "Nguyễn" not in str(one)
    # xmltodict gives one <request> as a dict, not a list.
    xml_one = await asyncio.to_thread(as_xml.get_service_requests, service_request_id=code)
    assert xml_one["service_request_id"] == code and xml_one["status"] == "open"

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _signed_in(http, running.base_url)
        cases = await (await http.get(running.base_url + "/api/v1/cases")).json()
    (case,) = [c for c in cases if c["code"] == code]
    assert case["channel"] == "open311" and case["topic"] == topics[2]


async def test_bad_keys_and_malformed_posts_get_spec_errors_from_the_server(
    served: tuple[Served, str],
) -> None:
    running, key = served
    root = running.base_url + "/open311/v2"

    def post(fmt: str, **fields: str) -> requests.Response:
        return requests.post(f"{root}/requests.{fmt}", data=fields, timeout=30)

    bad_key = await asyncio.to_thread(post, "xml", api_key="o311_wrong", service_code="khac",
                                      address_string="x", description="y")  # fmt: skip
    assert bad_key.status_code == 403
    error = ET.fromstring(bad_key.content)
    assert error.tag == "errors" and error.findtext("error/code") == "403"
    missing = await asyncio.to_thread(post, "json", api_key=key, service_code="khac",
                                      description="không có địa điểm")  # fmt: skip
    assert missing.status_code == 400
    assert missing.json()[0]["description"].startswith("a location is required")
    none = await asyncio.to_thread(requests.get, f"{root}/requests/12345678.json", timeout=30)
    assert none.status_code == 404 and none.json()[0]["code"] == 404


async def test_a_photo_posted_as_media_is_stored_without_its_location(
    served: tuple[Served, str], serve_config: Path
) -> None:
    running, key = served
    config = load_config(serve_config)
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {2: (21.0, 4.0, 13.0), 1: "N"}  # GPS: where the phone was
    Image.new("RGB", (80, 60), (10, 120, 30)).save(photo, "JPEG", exif=exif)
    with Image.open(io.BytesIO(photo.getvalue())) as sent:
        assert sent.getexif().get_ifd(0x8825)  # the photo as sent has its location
    form = aiohttp.FormData()
    for name, value in (
        ("api_key", key),
        ("service_code", config.cases.topics[2].code),
        ("address_string", "Chợ Phú Diễn"),
        ("description", "Rác tràn"),
    ):
        form.add_field(name, value)
    form.add_field("media", photo.getvalue(), filename="rac.jpg", content_type="image/jpeg")
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.base_url + "/open311/v2/requests.json", data=form) as answer,
    ):
        body = await answer.json()
    assert answer.status == 200, str(body) + running.log
    code = body[0]["service_request_id"]
    engine = make_engine(config.database_url)
    try:
        sessions = make_session_factory(engine)
        folder = attachments_root(config.resolve_path(config.paths.recordings))
        intake = IntakeService(sessions, config, CaseService(sessions, config), folder)
        case = CaseService(sessions, config).find_by_code(code)
        assert case is not None and case.channel == "open311"
        (row,) = intake.attachments_of(case.id)
        stored = intake.attachment_for(case.id, row.id)
    finally:
        engine.dispose()
    assert row.kind == "image" and stored is not None and stored.path is not None
    with Image.open(stored.path) as image:
        assert image.size == (80, 60)
        assert 0x8825 not in image.getexif()  # the GPS block is gone


async def test_a_key_revoked_by_the_command_is_refused_by_the_running_server(
    served: tuple[Served, str], serve_config: Path
) -> None:
    running, key = served
    url = running.base_url + "/open311/v2/requests.json"
    fields = {"api_key": key, "service_code": "khac", "address_string": "Phú Diễn",
              "description": "Đèn hỏng"}  # fmt: skip

    async def post() -> int:
        async with aiohttp.ClientSession() as http, http.post(url, data=fields) as answer:
            return answer.status

    assert await post() == 200  # checked and trusted for CHECKED_SECONDS from now
    listed = await asyncio.to_thread(
        _hotline, "--config", str(serve_config), "open311-keys", "list"
    )
    key_id = listed.split("\t", 1)[0]
    await asyncio.to_thread(
        _hotline, "--config", str(serve_config), "open311-keys", "revoke", key_id
    )

    async def refused() -> bool:
        return await post() == 403

    # Another process revoked it: the server sees it once its trust ends.
    await wait_for(refused, CHECKED_SECONDS + 5, "the revoked key to be refused", interval=0.5)
