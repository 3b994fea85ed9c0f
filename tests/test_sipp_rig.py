"""The SIPp rig checked against itself: SIPp callers dialling SIPp answerers on
127.0.0.1, no PBX in between."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.sim.sipp import (
    AnswerMode,
    CallResult,
    Dtmf,
    Pause,
    PlayAudio,
    SippAnswerer,
    SippCaller,
    dtmf_payload_type,
    free_port,
)

CALLER = "0912345678"
Phone = Callable[..., SippAnswerer]
TERMINATED_INVITE = re.compile(r"SIP/2.0 487 .*\nVia: .*branch=.*\n(.+\n)*CSeq: 1 INVITE")


def _target(phone: SippAnswerer) -> str:
    return f"127.0.0.1:{phone.port}"


def _explain(result: CallResult) -> str:
    return f"{result}\n{result.log_text}"


@pytest.fixture
def caller(tmp_path: Path, sipp_binary: str) -> SippCaller:
    return SippCaller(tmp_path / "caller", sipp_binary)


@pytest.fixture
def phone(tmp_path: Path, sipp_binary: str) -> Phone:
    """``phone(name, mode, **options)``: an answerer under the test's tmp_path."""

    def make(name: str, mode: AnswerMode, **options: Any) -> SippAnswerer:
        return SippAnswerer(tmp_path / "phones", name, mode, sipp_bin=sipp_binary, **options)

    return make


@pytest.fixture
def rtp_sink() -> Iterator[socket.socket]:
    """A UDP socket standing in for a phone's RTP port, to see what the caller sends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", free_port(2)))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def _received_keys(sock: socket.socket) -> list[tuple[int, int, int]]:
    """(event code, RTP timestamp, SSRC) of each distinct RFC 4733 event received."""
    events: list[tuple[int, int, int]] = []
    while True:
        try:
            packet = sock.recv(2048)
        except BlockingIOError:
            return events
        if packet[1] & 0x7F != dtmf_payload_type():
            continue
        _seq, stamp, ssrc = struct.unpack("!HII", packet[2:12])
        key = (packet[12], stamp, ssrc)
        if key not in events:
            events.append(key)


async def test_answered_call_completes(phone: Phone, caller: SippCaller) -> None:
    async with phone("chair", "answer", hold_ms=800) as chair:
        assert chair.contact == f"sip:chair@127.0.0.1:{chair.port}"
        result = await caller.call(
            target=_target(chair), number="100", caller_id=CALLER, steps=[Pause(100)], timeout_s=15
        )
        assert result.answered, _explain(result)
        assert result.final_status == 200
        assert result.hung_up_by == "remote"
        assert result.exit_code == 0
        assert result.call_id and result.call_id.startswith("hotline-")
        assert result.answered_at is not None and result.started_at is not None
        await chair.wait_rung(1)
        await chair.wait_ended(1)
        assert chair.rung_count == 1
        assert chair.answered_count == 1
        assert chair.caller_ids == [CALLER]
        [call] = chair.calls
        assert call.call_id == result.call_id
        assert call.ended_by == "answerer"
        assert result.started_at <= chair.ring_times[0] <= result.answered_at
        # The answerer held the call for hold_ms before its BYE.
        assert call.ended_at is not None and call.answered_at is not None
        assert 0.75 < call.ended_at - call.answered_at < 1.5


async def test_caller_hangs_up_and_phone_serves_many_calls(
    phone: Phone, caller: SippCaller
) -> None:
    async with phone("agent", "answer", hold_ms=0) as agent:
        for n in range(3):
            result = await caller.call(
                target=_target(agent),
                number="200",
                caller_id=f"091200000{n}",
                steps=[],
                hangup_after_ms=200,
                timeout_s=10,
            )
            assert result.answered and result.hung_up_by == "caller", _explain(result)
        await agent.wait_ended(3)
        assert agent.caller_ids == ["0912000000", "0912000001", "0912000002"]
        assert [c.ended_by for c in agent.calls] == ["remote"] * 3
        agent.reset()
        assert agent.rung_count == 0


async def test_concurrent_callers(phone: Phone, caller: SippCaller) -> None:
    async with phone("agent", "answer", hold_ms=500) as agent:
        results = await asyncio.gather(
            *(
                caller.call(
                    target=_target(agent), number="100", caller_id=f"091100000{n}", timeout_s=10
                )
                for n in range(3)
            )
        )
        assert all(r.answered and r.hung_up_by == "remote" for r in results), results
        await agent.wait_ended(3)
        assert sorted(agent.caller_ids) == ["0911000000", "0911000001", "0911000002"]
        # All three were up at once.
        assert max(agent.ring_times) < min(c.ended_at or 0 for c in agent.calls)


async def test_no_answer_phone_rings_until_cancelled(phone: Phone, caller: SippCaller) -> None:
    async with phone("silent", "no_answer") as silent:
        for _ in range(2):
            result = await caller.call(
                target=_target(silent),
                number="300",
                caller_id=CALLER,
                steps=[Dtmf("1")],
                ring_timeout_ms=700,
                timeout_s=10,
            )
            assert not result.answered, _explain(result)
            assert result.final_status == 487
            assert result.hung_up_by == "caller"
            assert result.ringing_at is not None
            assert result.dtmf_sent_at == []
            # The 487 answers the INVITE transaction (SIPp would match it anyway).
            assert TERMINATED_INVITE.search(result.log_text), _explain(result)
        await silent.wait_rung(2)
        await silent.wait_ended(2)
        assert silent.answered_count == 0
        assert [c.ended_by for c in silent.calls] == ["cancel", "cancel"]


async def test_phone_rings_before_answering_and_can_be_cancelled(
    phone: Phone, caller: SippCaller
) -> None:
    async with phone("slow", "answer", hold_ms=0, ring_ms=400) as slow:
        answered = await caller.call(
            target=_target(slow),
            number="0987654321",
            caller_id=CALLER,
            hangup_after_ms=100,
            timeout_s=10,
        )
        assert answered.answered and answered.ringing_at is not None, _explain(answered)
        assert 0.38 < answered.answered_at - answered.ringing_at < 0.5  # type: ignore[operator]
        given_up = await caller.call(
            target=_target(slow), number="100", caller_id=CALLER, ring_timeout_ms=150, timeout_s=10
        )
        assert not given_up.answered and given_up.final_status == 487, _explain(given_up)
        await slow.wait_ended(2)
        first, second = slow.calls
        assert first.dialed == "0987654321"
        assert first.answered_at is not None and 0.38 < first.answered_at - first.rung_at < 0.5
        assert second.ended_by == "cancel" and second.answered_at is None


async def test_busy_phone_rejects(phone: Phone, caller: SippCaller) -> None:
    async with phone("busy", "busy") as busy:
        result = await caller.call(
            target=_target(busy), number="400", caller_id=CALLER, steps=[], timeout_s=10
        )
        assert not result.answered, _explain(result)
        assert result.final_status == 486
        assert result.hung_up_by is None
        await busy.wait_ended(1)
        assert busy.rung_count == 1 and busy.calls[0].ended_by == "busy"


async def test_anonymous_caller(phone: Phone, caller: SippCaller) -> None:
    async with phone("chair", "answer", hold_ms=0) as chair:
        result = await caller.call(
            target=_target(chair), number="100", caller_id=None, hangup_after_ms=100, timeout_s=10
        )
        assert result.answered, _explain(result)
        await chair.wait_rung(1)
        assert chair.caller_ids == ["anonymous"]


async def test_dtmf_keys_are_sent_as_rfc4733_events(
    phone: Phone, caller: SippCaller, rtp_sink: socket.socket
) -> None:
    sink_port = rtp_sink.getsockname()[1]
    async with phone("ivr", "answer", hold_ms=0, advertise_media_port=sink_port) as ivr:
        result = await caller.call(
            target=_target(ivr),
            number="100",
            caller_id=CALLER,
            steps=[Pause(200), Dtmf("11*", gap_ms=250), Pause(100), Dtmf("#0")],
            hangup_after_ms=300,
            timeout_s=15,
        )
    assert result.answered and result.hung_up_by == "caller", _explain(result)
    assert result.keys == "11*#0"
    assert result.answered_at is not None
    times = [k.at for k in result.dtmf_sent_at]
    assert 0.18 < times[0] - result.answered_at < 0.35
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.24 < g < 0.32 for g in gaps[:2]), gaps
    assert 0.34 < gaps[2] < 0.45, gaps  # 250 ms after '*', then the 100 ms pause
    events = _received_keys(rtp_sink)
    assert [code for code, _, _ in events] == [1, 1, 10, 11, 0]
    # Repeated keys must look distinct to the PBX: new timestamp, same stream.
    assert len({stamp for _, stamp, _ in events}) == 5
    assert len({ssrc for _, _, ssrc in events}) == 1


async def test_play_audio_waits_for_the_recording(phone: Phone, caller: SippCaller) -> None:
    audio = Path("/usr/share/sip-tester/g711a.pcap")
    async with phone("chair", "answer", hold_ms=0) as chair:
        result = await caller.call(
            target=_target(chair),
            number="100",
            caller_id=CALLER,
            steps=[PlayAudio(audio), Dtmf("5")],
            hangup_after_ms=100,
            timeout_s=20,
        )
    assert result.answered, _explain(result)
    assert result.answered_at is not None
    assert result.dtmf_sent_at[0].at - result.answered_at > 7.0  # g711a.pcap lasts ~7 s


async def test_wait_rung_times_out_with_logs(phone: Phone) -> None:
    async with phone("idle", "answer") as idle:
        with pytest.raises(TimeoutError, match="idle"):
            await idle.wait_rung(1, timeout=0.2)


async def test_load_mode(phone: Phone, caller: SippCaller) -> None:
    async with phone("agent", "answer", hold_ms=600) as agent:
        load = await caller.run_load(
            target=_target(agent),
            number="100",
            calls=8,
            rate_cps=8,
            steps=[Dtmf("2")],
            caller_ids=[f"09000000{n:02d}" for n in range(8)],
            timeout_s=30,
        )
        assert load.successful == 8, load.log_text
        assert load.failed == 0
        assert load.exit_code == 0
        assert 0.5 < load.elapsed_s < 10
        assert all(c.keys == "2" and c.hung_up_by == "remote" for c in load.calls)
        await agent.wait_ended(8)
        assert sorted(agent.caller_ids) == [f"09000000{n:02d}" for n in range(8)]
        # Calls overlapped: each was held 600 ms, all 8 started within ~1 s.
        assert max(agent.ring_times) - min(agent.ring_times) < 1.5
