"""Speech for end-to-end tests: espeak-ng text → 8 kHz WAV → an RTP pcap SIPp plays.

SIPp's ``play_pcap_audio`` replays the RTP payloads of a pcap at the pace of
its capture times, so the pcap holds one G.711 A-law packet (payload type 8,
160 bytes) every 20 ms in Ethernet/IPv4/UDP frames (SIPp rewrites addresses).
"""

from __future__ import annotations

import logging
import random
import struct
import subprocess
import tempfile
import warnings
import wave
from pathlib import Path

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import audioop

logger = logging.getLogger(__name__)

RATE = 8000
PACKET_SAMPLES = 160  # 20 ms
PCMA = 8


def synthesize_wav(text: str, out: Path, voice: str = "vi", lead_silence_s: float = 0.0) -> Path:
    """espeak-ng speech as 8 kHz 16-bit mono WAV (sox resamples), with optional
    leading silence so the speech starts at a known moment."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        command = ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)]
        if lead_silence_s > 0:
            command += ["pad", f"{lead_silence_s}", "0"]
        subprocess.run(command, check=True)
    return out


def wav_to_rtp_pcap(wav_path: Path, pcap_path: Path, start: float = 1_700_000_000.0) -> Path:
    """Write ``wav_path`` (8 kHz 16-bit mono) as an RTP/PCMA pcap."""
    with wave.open(str(wav_path), "rb") as reader:
        if (reader.getframerate(), reader.getsampwidth(), reader.getnchannels()) != (RATE, 2, 1):
            raise ValueError(f"{wav_path}: need 8 kHz 16-bit mono")
        pcm = reader.readframes(reader.getnframes())
    step = PACKET_SAMPLES * 2
    if len(pcm) % step:
        pcm += b"\0" * (step - len(pcm) % step)
    ssrc = random.getrandbits(32)
    seq = random.getrandbits(15)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for index in range(len(pcm) // step):
        payload = audioop.lin2alaw(pcm[index * step : (index + 1) * step], 2)
        rtp = struct.pack("!BBHII", 0x80, PCMA, (seq + index) & 0xFFFF,
                          index * PACKET_SAMPLES, ssrc) + payload  # fmt: skip
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        loopback = bytes([127, 0, 0, 1])
        ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index & 0xFFFF, 0,
                                64, 17, 0, loopback, loopback)  # fmt: skip
        ip_header = ip_header[:10] + struct.pack("!H", _checksum(ip_header)) + ip_header[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip_header + udp
        at = start + index * PACKET_SAMPLES / RATE
        sec = int(at)
        usec = round((at - sec) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    pcap_path.write_bytes(bytes(out))
    return pcap_path


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
