"""Listen, whisper and barge: Asterisk rings a supervisor's phone and runs
ChanSpy on the agent's live channel (context ``hotline-spy`` of the rendered
dialplan). The channel is found by exact endpoint, never by prefix."""

from __future__ import annotations

import re

from ivr.contracts import channel_variables as v
from queue_manager.ami import AmiLink

# Listen-in modes and the ChanSpy options each one runs with.
SPY_OPTIONS = {"listen": "", "whisper": "w", "barge": "B"}


async def live_channel_of(link: AmiLink, phone: str) -> str | None:
    """The phone's channel that is up now, by exact endpoint: Asterisk names
    PJSIP channels ``PJSIP/<endpoint>-<8 hex digits>``, so ``dtv-1`` never
    matches ``PJSIP/dtv-10-…``."""
    answer = await link.send({"Action": "CoreShowChannels"}, as_list=True)
    pattern = re.compile(rf"^PJSIP/{re.escape(phone)}-[0-9a-f]{{8}}$")
    channels = [
        (m.get("ChannelState") == "6", str(m.get("Channel", "")))
        for m in answer
        if m.get("Event") == "CoreShowChannel" and pattern.match(str(m.get("Channel", "")))
    ]
    # An answered channel (state 6, Up) first.
    return max(channels)[1] if channels else None


async def originate_spy(link: AmiLink, agent_phone: str, phone: str, mode: str) -> str | None:
    """Ring ``phone`` into ChanSpy on ``agent_phone``'s live channel with the
    mode's options; the channel, or None when the agent is on no call (then
    nothing is originated). ``phone`` and ``mode`` are checked by the caller."""
    channel = await live_channel_of(link, agent_phone)
    if channel is None:
        return None
    await link.send(
        {
            "Action": "Originate",
            "Channel": f"PJSIP/{phone}",
            "Context": "hotline-spy",
            "Exten": agent_phone,
            "Priority": "1",
            "CallerID": f"{mode} <{agent_phone}>",
            # One header line per variable (panoramisk writes a list that way).
            "Variable": [f"{v.SPY_OPTS}={SPY_OPTIONS[mode]}", f"{v.SPY_CHANNEL}={channel}"],
            "Async": "true",
        }
    )
    return channel
