"""/metrics (ivr/web/metrics.py): each family read back with prometheus_client's
own parser, from a real live model, real FastAGI counters and real job rows;
and who may read it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ivr.cases.models import SmsMessage, TranscriptionJob
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.intake.models import CaseMessage
from ivr.web.metrics import (
    MetricsSources,
    QueueOutcomes,
    ScrapeCollector,
    email_outbox_size,
    may_read,
    wait_buckets,
)
from ivr.web.metrics_store import count_backlogs
from queue_manager.model import Change, LiveModel
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE

T0 = 1_800_000_000.0
ALLOWED_LABELS = {"node", "hotline", "queue", "outcome", "state", "script", "status", "outbox"}


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


def ev(kind: str, at: float, **fields: Any) -> dict[str, str]:
    return {"Event": kind, "Timestamp": f"{at:.6f}", **{k: str(v) for k, v in fields.items()}}


def member(interface: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Queue": "operator",
        "Interface": interface,
        "MemberName": name,
        "Membership": "dynamic",
        "Status": 1,
        "Paused": 0,
        "InCall": 0,
        **extra,
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeLink:
    def __init__(self, up: bool, logins: int) -> None:
        self.connected = asyncio.Event()
        if up:
            self.connected.set()
        self.logins = logins


class FakeQueueManager:
    """What the collector reads of the queue manager: its models and links."""

    def __init__(self, models: dict[str, LiveModel], links: dict[str, FakeLink]) -> None:
        self.models, self.links = models, links

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        undo = [model.subscribe(callback) for model in self.models.values()]

        def unsubscribe() -> None:
            for step in undo:
                step()

        return unsubscribe


def scrape(
    sources: MetricsSources, backlogs: dict[str, int] | None = None, outbox: int | None = None
) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(sources, backlogs, outbox))
    text = generate_latest(registry).decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    family_name = sample.removesuffix("_total").removesuffix("_bucket").removesuffix("_count")
    family_name = family_name.removesuffix("_sum")
    found = [
        s.value
        for s in families[family_name].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (sample, labels, families[family_name].samples)
    return float(found[0])


def queue_rig(config: HotlineConfig) -> tuple[LiveModel, Clock, MetricsSources]:
    clock = Clock()
    model = LiveModel("node-a", clock=clock, queue_settings={"operator": (30, 0)})
    manager = FakeQueueManager({"node-a": model}, {"node-a": FakeLink(True, 3)})
    sources = MetricsSources(ConfigSource(config), sessions=None)  # type: ignore[arg-type]
    sources.follow_queues(manager)
    return model, clock, sources


def test_waiting_callers_oldest_wait_and_members_by_state_per_queue(
    config: HotlineConfig,
) -> None:
    model, clock, sources = queue_rig(config)
    model.apply(ev("QueueMemberAdded", T0, **member("PJSIP/a1", "Nguyễn Văn An")))
    model.apply(ev("QueueMemberAdded", T0, **member("PJSIP/a2", "Trần Bình", InCall=1, Status=2)))
    model.apply(ev("QueueMemberAdded", T0, **member("PJSIP/a3", "Lê Chi", Paused=1)))
    model.apply(ev("QueueMemberAdded", T0, **member("PJSIP/a4", "Phạm Dũng", Status=5)))
    model.apply(
        ev(
            "QueueCallerJoin",
            T0,
            Queue="operator",
            Uniqueid="1.1",
            Position=1,
            CallerIDNum="0912345678",
            Channel="PJSIP/pstn-1",
        )
    )
    model.apply(
        ev(
            "QueueCallerJoin",
            T0 + 30,
            Queue="operator",
            Uniqueid="1.2",
            Position=2,
            CallerIDNum="0987654321",
            Channel="PJSIP/pstn-2",
        )
    )
    clock.now = T0 + 42
    families = scrape(sources)
    where = {"node": "node-a", "hotline": "bac-tu-liem", "queue": "operator"}
    assert value(families, "hotline_queue_callers_waiting", **where) == 2
    assert value(families, "hotline_queue_oldest_wait_seconds", **where) == pytest.approx(42)
    for state, count in (("available", 1), ("in_call", 1), ("paused", 1), ("unavailable", 1)):
        assert value(families, "hotline_queue_members", state=state, **where) == count
    # Nothing personal, and only the bounded label names.
    text = generate_text(sources)
    for private in ("0912345678", "0987654321", "Nguyễn", "PJSIP/a1", "pstn"):
        assert private not in text
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, sample


def generate_text(sources: MetricsSources) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(sources, None, None))
    return generate_latest(registry).decode("utf-8")


def test_outcomes_counted_once_with_wait_and_talk_histograms_at_the_service_level(
    config: HotlineConfig,
) -> None:
    model, _clock, sources = queue_rig(config)
    received = Clock()  # when the queue metrics received each change
    assert sources.outcomes is not None
    sources.outcomes.clock = received
    model.apply(ev("QueueMemberAdded", T0, **member("PJSIP/a1", "An")))
    q = {"Queue": "operator"}
    # Answered after 25 s (inside the 30 s service level), talks 75 s. Asterisk
    # sends the caller's leave a few milliseconds BEFORE the AgentConnect (as
    # bench/fixtures/ami_events.jsonl shows): not a "left" call.
    model.apply(ev("QueueCallerJoin", T0, Uniqueid="1.1", Position=1, **q))
    model.apply(ev("QueueCallerLeave", T0 + 25, Uniqueid="1.1", Position=1, **q))
    model.apply(
        ev(
            "AgentConnect",
            T0 + 25,
            Uniqueid="1.1",
            Interface="PJSIP/a1",
            MemberName="An",
            HoldTime=25,
            RingTime=2,
            **q,
        )
    )
    model.apply(
        ev(
            "AgentComplete",
            T0 + 100,
            Uniqueid="1.1",
            Interface="PJSIP/a1",
            MemberName="An",
            HoldTime=25,
            TalkTime=75,
            Reason="caller",
            **q,
        )
    )
    # Abandoned after 40 s (abandon, then its leave).
    model.apply(ev("QueueCallerJoin", T0, Uniqueid="1.2", Position=1, **q))
    model.apply(
        ev(
            "QueueCallerAbandon",
            T0 + 40,
            Uniqueid="1.2",
            Position=1,
            OriginalPosition=1,
            HoldTime=40,
            **q,
        )
    )
    model.apply(ev("QueueCallerLeave", T0 + 40, Uniqueid="1.2", Position=1, **q))
    # Timed out after 300 s.
    model.apply(ev("QueueCallerJoin", T0, Uniqueid="1.3", Position=1, **q))
    model.apply(ev("QueueCallerLeave", T0 + 300, Uniqueid="1.3", Position=1, **q))
    where = {"node": "node-a", "hotline": "bac-tu-liem", "queue": "operator"}
    # A leave with no answer yet is not counted until the grace has passed.
    families = scrape(sources)
    assert value(families, "hotline_queue_calls_total", outcome="answered", **where) == 1
    assert "left" not in {s.labels.get("outcome") for s in families["hotline_queue_calls"].samples}
    received.now += 3
    families = scrape(sources)
    for outcome in ("answered", "abandoned", "left"):
        assert value(families, "hotline_queue_calls_total", outcome=outcome, **where) == 1
    assert (
        value(families, "hotline_queue_wait_seconds_bucket", le="30.0", outcome="answered", **where)
        == 1
    )
    assert (
        value(
            families, "hotline_queue_wait_seconds_bucket", le="30.0", outcome="abandoned", **where
        )
        == 0
    )
    assert value(families, "hotline_queue_wait_seconds_sum", outcome="left", **where) == 300
    assert value(families, "hotline_queue_talk_seconds_bucket", le="60.0", **where) == 0
    assert value(families, "hotline_queue_talk_seconds_bucket", le="120.0", **where) == 1
    assert value(families, "hotline_queue_talk_seconds_sum", **where) == 75


def test_wait_buckets_include_each_queues_service_level(config: HotlineConfig) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["queues"][0]["service_level_seconds"] = 45
    tweaked = HotlineConfig.model_validate(data)
    assert 45.0 in wait_buckets(tweaked) and 30.0 in wait_buckets(tweaked)
    outcomes = QueueOutcomes(ConfigSource(tweaked))
    assert 45.0 in outcomes.wait._upper_bounds


def test_ami_link_up_and_reconnects_per_node(config: HotlineConfig) -> None:
    manager = FakeQueueManager(
        {"a": LiveModel("a"), "b": LiveModel("b")},
        {"a": FakeLink(True, 1), "b": FakeLink(False, 4)},
    )
    sources = MetricsSources(ConfigSource(config), sessions=None)  # type: ignore[arg-type]
    sources.follow_queues(manager)
    families = scrape(sources)
    assert value(families, "hotline_ami_link_up", node="a") == 1
    assert value(families, "hotline_ami_link_up", node="b") == 0
    assert families["hotline_ami_reconnects"].type == "counter"
    assert value(families, "hotline_ami_reconnects_total", node="a") == 0
    assert value(families, "hotline_ami_reconnects_total", node="b") == 3


async def test_fastagi_requests_and_latency_by_script(config: HotlineConfig) -> None:
    from ivr.agi.server import HotlineAgi

    agi = HotlineAgi(config, call_log=None)  # type: ignore[arg-type]

    async def fine(_request: Any) -> None:
        return None

    async def broken(_request: Any) -> None:
        raise RuntimeError("bug")

    await agi._measured("call_ended", fine)(None)  # type: ignore[arg-type]
    await agi._measured("call_ended", fine)(None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await agi._measured("survey", broken)(None)  # type: ignore[arg-type]
    sources = MetricsSources(ConfigSource(config), sessions=None)  # type: ignore[arg-type]
    sources.agi = agi
    families = scrape(sources)
    assert value(families, "hotline_agi_requests_total", script="call_ended", outcome="ok") == 2
    assert value(families, "hotline_agi_requests_total", script="survey", outcome="error") == 1
    assert value(families, "hotline_agi_request_seconds_count", script="call_ended") == 2
    assert value(families, "hotline_agi_request_seconds_bucket", script="survey", le="+Inf") == 1
    # Every script the dialplan calls is measured (application() wraps them all).
    app = agi.application()
    assert all(h.__qualname__.endswith("measured") for h in app._route.values())
    await agi.close()


def test_call_log_backlog_and_job_backlogs(config: HotlineConfig, tmp_path: Path) -> None:
    class Writer:
        pending = 7

    sources = MetricsSources(ConfigSource(config), sessions=None)  # type: ignore[arg-type]
    sources.call_log = Writer()
    families = scrape(
        sources,
        {
            "transcription_queued": 4,
            "transcription_running": 1,
            "sms_pending": 2,
            "case_messages_pending": 3,
        },
        outbox=5,
    )
    assert value(families, "hotline_call_log_backlog") == 7
    assert value(families, "hotline_transcription_jobs", status="queued") == 4
    assert value(families, "hotline_transcription_jobs", status="running") == 1
    assert value(families, "hotline_notifications_pending", outbox="sms_outbox") == 2
    assert value(families, "hotline_notifications_pending", outbox="case_messages") == 3
    assert value(families, "hotline_notifications_pending", outbox="email_outbox") == 5
    assert value(families, "hotline_metrics_database_up") == 1
    # The database did not answer: the backlogs are left out, and it says so.
    families = scrape(sources, None)
    assert value(families, "hotline_metrics_database_up") == 0
    assert "hotline_transcription_jobs" not in families


def test_email_outbox_counts_its_lines(tmp_path: Path) -> None:
    outbox = tmp_path / "email-outbox.jsonl"
    assert email_outbox_size(outbox) == 0
    outbox.write_text('{"a": 1}\n{"b": 2}\n\n', encoding="utf-8")
    assert email_outbox_size(outbox) == 2


@pytest.mark.db
def test_backlogs_count_only_unfinished_jobs_and_pending_outbound_rows(
    config: HotlineConfig, tmp_path: Path
) -> None:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        case = CaseService(sessions, config).open_case(
            channel="phone", hotline_id="bac-tu-liem", caller_number="+84912000111"
        )
        # Opening the case may have queued its own acknowledgement: these rows
        # are what was pending before ours.
        before = count_backlogs(sessions)
        with sessions() as session, session.begin():
            for n, status in enumerate(("queued", "queued", "running", "done", "failed")):
                session.add(TranscriptionJob(call_uniqueid=f"c{n}", status=status))
            for status in ("pending", "sent", "failed"):
                session.add(
                    SmsMessage(
                        to_number="+84912000111", purpose="case_opened", text="x", status=status
                    )
                )
            for direction, status in (("out", "pending"), ("out", "sent"), ("in", None)):
                session.add(
                    CaseMessage(
                        case_id=case.id, direction=direction, channel="email", status=status
                    )
                )
        found = count_backlogs(sessions)
    finally:
        engine.dispose()
    assert found["transcription_queued"] == 2 and found["transcription_running"] == 1
    assert found["sms_pending"] == before["sms_pending"] + 1
    assert found["case_messages_pending"] == before["case_messages_pending"] + 1


# --- who may read ------------------------------------------------------------------


class Peer:
    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 40000) if name == "peername" else default


def request(address: str, headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", "/metrics", headers=headers or {}, transport=Peer(address))


def test_without_a_token_only_direct_loopback_requests_may_read(
    config: HotlineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_METRICS_TOKEN", raising=False)
    assert may_read(request("127.0.0.1"), config) is None
    assert may_read(request("::1"), config) is None
    assert may_read(request("10.1.2.3"), config) == 403
    assert may_read(request("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}), config) == 403


def test_with_a_token_every_reader_must_send_it(
    config: HotlineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", "s3cret-token")
    assert may_read(request("127.0.0.1"), config) == 401
    assert may_read(request("10.1.2.3", {"Authorization": "Bearer wrong"}), config) == 401
    assert may_read(request("10.1.2.3", {"Authorization": "Basic s3cret-token"}), config) == 401
    assert may_read(request("10.1.2.3", {"Authorization": "Bearer s3cret-token"}), config) is None


@pytest_asyncio.fixture(loop_scope="session")
async def console(tmp_path: Path) -> AsyncIterator[tuple[TestClient, HotlineConfig]]:
    from ivr.web.app import create_app

    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    model = LiveModel("local", queue_settings={"operator": (30, 0)})
    manager = FakeQueueManager({"local": model}, {"local": FakeLink(True, 1)})
    app = create_app(config, make_session_factory(engine), secret=b"s" * 32, queue_manager=manager)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, config
    finally:
        await client.close()
        engine.dispose()


@pytest.mark.db
async def test_the_console_serves_metrics_to_loopback_and_refuses_a_missing_token(
    console: tuple[TestClient, HotlineConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _config = console
    monkeypatch.delenv("HOTLINE_METRICS_TOKEN", raising=False)
    answer = await client.get("/metrics")
    assert answer.status == 200, await answer.text()
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(await answer.text())}
    assert value(families, "hotline_ami_link_up", node="local") == 1
    assert value(families, "hotline_metrics_database_up") == 1
    assert value(families, "hotline_transcription_jobs", status="queued") == 0
    forwarded = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status == 403
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", "s3cret-token")
    assert (await client.get("/metrics")).status == 401
    ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status == 200


@pytest.mark.db
async def test_a_fastagi_only_process_serves_metrics_and_health_on_its_monitor_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hotline serve --only agi --monitor-port N``: no console, yet its
    FastAGI counters and health are served (the cluster runs several)."""
    from ivr.service import start_services
    from ivr.web.app import bound_port

    monkeypatch.delenv("HOTLINE_METRICS_TOKEN", raising=False)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["paths"] = {
        "prompts": str(tmp_path / "prompts"),
        "recordings": str(tmp_path / "recordings"),
        "routing_table": str(tmp_path / "routing.json"),
        "phone_secrets": str(tmp_path / "phone-secrets.json"),
    }
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    services = await start_services(config, agi_port=0, parts=frozenset({"agi"}), monitor_port=0)
    try:
        assert services.web_runner is None and services.monitor is not None
        base = f"http://127.0.0.1:{bound_port(services.monitor)}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as answer:
                assert answer.status == 200
                families = {f.name: f for f in text_string_to_metric_families(await answer.text())}
            async with http.get(f"{base}/healthz") as answer:
                assert answer.status == 200
                body = await answer.json()
            async with http.get(
                f"{base}/metrics", headers={"X-Forwarded-For": "10.0.0.1"}
            ) as answer:
                assert answer.status == 403
        assert families["hotline_agi_requests"].type == "counter"
        assert families["hotline_call_log_backlog"].type == "gauge"  # its startup writes vary
        assert "hotline_queue_callers_waiting" not in families  # no queue manager here
        assert body["checks"] == {"database": {"ok": True}, "fastagi": {"ok": True}}
    finally:
        await services.close()
