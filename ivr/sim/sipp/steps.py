"""What a SIPp caller does once its call is answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.sim.sipp.pcap import dtmf_pcap, pcap_duration_ms


@dataclass(frozen=True)
class CallStep:
    """One thing the caller does once the call is answered."""


@dataclass(frozen=True)
class Pause(CallStep):
    ms: int


@dataclass(frozen=True)
class Dtmf(CallStep):
    """Press ``digits`` one by one, ``gap_ms`` from the start of one key to the next."""

    digits: str
    gap_ms: int = 300

    def __post_init__(self) -> None:
        for digit in self.digits:
            dtmf_pcap(digit)
        longest = max(pcap_duration_ms(dtmf_pcap(d)) for d in self.digits or "1")
        if self.gap_ms < longest:
            raise ValueError(f"gap_ms={self.gap_ms} is shorter than a key ({longest} ms)")


@dataclass(frozen=True)
class PlayAudio(CallStep):
    """Play an RTP pcap to the far end and wait until it has been played."""

    pcap_path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "pcap_path", Path(self.pcap_path))
        pcap_duration_ms(self.pcap_path)


def steps_ms(steps: Sequence[CallStep]) -> int:
    total = 0
    for step in steps:
        if isinstance(step, Pause):
            total += step.ms
        elif isinstance(step, Dtmf):
            total += step.gap_ms * len(step.digits)
        elif isinstance(step, PlayAudio):
            total += pcap_duration_ms(step.pcap_path)
    return total
