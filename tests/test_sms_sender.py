"""Each hotline's texts carry its own SMS sender name (``Hotline.sms_sender``),
falling back to the deployment's ``sms.sender``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.cases.service import CaseService
from ivr.cases.sms import OutgoingSms, WebhookSmsGateway
from ivr.config import ConfigError, HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

RECEIVED = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # a Monday, 10:00 in Hà Nội


def _load(tmp_path: Path, edit: Any = None) -> HotlineConfig:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl"), "sender": "UBND"}
    if edit is not None:
        edit(data)
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@pytest.fixture
def two_hotlines(tmp_path: Path) -> HotlineConfig:
    """The example's hotline with its own sender, and a copy (another number)
    that has none; built past the config's cross-checks, which concern queues."""

    def own_sender(data: dict[str, Any]) -> None:
        data["hotlines"][0]["sms_sender"] = "BacTuLiem"

    config = _load(tmp_path, own_sender)
    first = config.hotlines[0]
    second = first.model_copy(
        update={"id": "thanh-xuan", "numbers": ["02438585858"], "sms_sender": None}
    )
    return config.model_copy(update={"hotlines": [first, second]})


@pytest.fixture
def sessions(two_hotlines: HotlineConfig) -> Iterator[Any]:
    upgrade(two_hotlines.database_url)
    engine = make_engine(two_hotlines.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def sent(config: HotlineConfig) -> list[dict[str, Any]]:
    path = Path(config.sms.path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.db
def test_each_case_sms_carries_its_hotlines_sender(
    two_hotlines: HotlineConfig, sessions: Any
) -> None:
    service = CaseService(sessions, two_hotlines, clock=lambda: RECEIVED)
    own = service.open_case(channel="phone", hotline_id="bac-tu-liem", caller_number="+84912345678")
    other = service.open_case(
        channel="phone", hotline_id="thanh-xuan", caller_number="+84912345679"
    )
    for case in (own, other):
        service.change_status(case.code, "in_progress", "agent:dtv-01")
        service.change_status(case.code, "answered", "agent:dtv-01", "Đã xử lý xong.")
    senders = {(line["case_code"], line["purpose"], line["from"]) for line in sent(two_hotlines)}
    assert senders == {
        (own.code, "case_opened", "BacTuLiem"),
        (own.code, "case_answered", "BacTuLiem"),
        # No sender of its own: the deployment's sms.sender, never the other hotline's.
        (other.code, "case_opened", "UBND"),
        (other.code, "case_answered", "UBND"),
    }


def test_the_webhook_sends_the_hotlines_sender() -> None:
    gateway = WebhookSmsGateway("http://127.0.0.1:9/sms", None, "UBND", 1.0)
    bodies: list[bytes] = []

    class Response:
        status = 200

        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            return None

    def capture(request: Any, timeout: float) -> Response:
        bodies.append(request.data)
        return Response()

    import urllib.request

    original = urllib.request.urlopen
    urllib.request.urlopen = capture  # type: ignore[assignment]
    try:
        message = OutgoingSms("+84912345678", "x", "case_opened", "26110001", RECEIVED)
        gateway.send(message)
        gateway.send(
            OutgoingSms("+84912345678", "x", "case_opened", "26110001", RECEIVED, "ThanhXuan")
        )
    finally:
        urllib.request.urlopen = original
    assert [json.loads(body)["from"] for body in bodies] == ["UBND", "ThanhXuan"]


def test_a_hotlines_sender_is_read_and_a_too_long_one_named_by_file_line_field(
    tmp_path: Path,
) -> None:
    def own(data: dict[str, Any]) -> None:
        data["hotlines"][0]["sms_sender"] = "BacTuLiem"

    assert _load(tmp_path, own).hotlines[0].sms_sender == "BacTuLiem"

    def too_long(data: dict[str, Any]) -> None:
        data["hotlines"][0]["sms_sender"] = "A" * 21

    with pytest.raises(ConfigError) as error:
        _load(tmp_path, too_long)
    assert re.search(r"hotline\.yaml:\d+: hotlines\[0\]\.sms_sender: .*20", str(error.value))
