"""SIPp scenario XML for the caller and the answerers."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

from ivr.sim.sipp.logs import log_event
from ivr.sim.sipp.pcap import dtmf_payload_type, key_pcap, pcap_duration_ms
from ivr.sim.sipp.steps import CallStep, Dtmf, Pause, PlayAudio

AnswerMode = Literal["answer", "no_answer", "busy"]

# Final responses to an INVITE the caller recognises (SIPp has no wildcard).
_FINAL_FAILURES = (
    300, 301, 302, 305, 380,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413, 414, 415, 416, 420, 421, 423,
    480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493,
    500, 501, 502, 503, 504, 505, 513, 580,
    600, 603, 604, 606,
)  # fmt: skip
_PROVISIONAL = (100, 180, 181, 182, 183, 199)


def _msg(head: str, body: str | None = None) -> str:
    """A SIP message in CDATA: header lines stripped (empty ones dropped), then a
    blank line and the body.  SIPp fills ``[len]`` from the body."""
    lines = [line.strip() for line in head.strip().splitlines() if line.strip()]
    if body is not None:
        lines += ["Content-Type: application/sdp", "Content-Length: [len]", ""]
        lines += [line.strip() for line in body.strip().splitlines()]
    else:
        lines += ["Content-Length: 0", ""]
    return "<![CDATA[\n" + "\n".join(lines) + "\n\n]]>"


def _sdp(media_port: str) -> str:
    """Offer/answer PCMA, PCMU and telephone-event with the pcaps' payload type."""
    pt = dtmf_payload_type()
    return "\n".join(
        [
            "v=0",
            "o=hotline 1 1 IN IP[local_ip_type] [local_ip]",
            "s=-",
            "c=IN IP[media_ip_type] [media_ip]",
            "t=0 0",
            f"m=audio {media_port} RTP/AVP 8 0 {pt}",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            f"a=rtpmap:{pt} telephone-event/8000",
            f"a=fmtp:{pt} 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ]
    )


_UAS_CONTACT = "<sip:[local_ip]:[local_port];transport=[transport]>"


def _reply(
    status: str, *, to_tag: bool = False, sdp: str | None = None, contact: str = _UAS_CONTACT
) -> str:
    """A response to the last received request, built from its headers."""
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if to_tag else "[last_To:]"
    return _msg(
        f"""
        SIP/2.0 {status}
        [last_Via:]
        [last_From:]
        {to}
        [last_Call-ID:]
        [last_CSeq:]
        Contact: {contact}
        """,
        sdp,
    )


class _Scenario:
    """Builds a SIPp scenario whose waits survive a BYE or re-INVITE from the far end."""

    def __init__(self, name: str, sdp: str, contact: str = _UAS_CONTACT) -> None:
        self.name = name
        self.sdp = sdp
        self.contact = contact  # ours, repeated in answers to re-INVITEs
        self.parts: list[str] = []
        self._labels = itertools.count()
        self.references: set[str] = {"ts", "tus"}

    def add(self, xml: str) -> None:
        self.parts.append(xml)

    def label(self, name: str) -> None:
        self.add(f'<label id="{name}"/>')

    def nop(self, actions: str = "", next_label: str | None = None) -> None:
        nxt = f' next="{next_label}"' if next_label else ""
        body = f"<action>{actions}</action>" if actions else ""
        self.add(f"<nop{nxt}>{body}</nop>")

    def new_label(self, stem: str) -> str:
        return f"{stem}{next(self._labels)}"

    def wait(self, ms: int | None, on_timeout: str | None = None, *, on_bye: str) -> None:
        """Wait ``ms`` (None: forever) for time to pass, answering re-INVITEs and
        jumping to ``on_bye`` after logging a BYE from the far end."""
        top = self.new_label("wait")
        reinvite = self.new_label("reinvite")
        done = on_timeout or self.new_label("waited")
        timeout = f' timeout="{max(ms, 1)}" ontimeout="{done}"' if ms is not None else ""
        self.label(top)
        self.add(f'<recv request="INVITE" optional="true"{timeout} next="{reinvite}"/>')
        bye_log = log_event("BYE_RX")
        self.add(f'<recv request="BYE" next="{on_bye}"><action>{bye_log}</action></recv>')
        self.label(reinvite)
        self.add(f"<send>{_reply('200 OK', sdp=self.sdp, contact=self.contact)}</send>")
        self.add(f'<recv request="ACK" next="{top}"/>')
        if on_timeout is None:
            self.label(done)

    def render(self) -> str:
        refs = f'<Reference variables="{",".join(sorted(self.references))}"/>'
        body = "\n".join(self.parts)
        return (
            '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
            f"<scenario name={quoteattr(self.name)}>\n{body}\n{refs}\n</scenario>\n"
        )


def _play(pcap: Path) -> str:
    return f"<exec play_pcap_audio={quoteattr(str(pcap))}/>"


def caller_scenario(
    *,
    from_user: str | None,
    steps: Sequence[CallStep],
    hangup_after_ms: int | None,
    bye_wait_ms: int,
    ring_timeout_ms: int,
    pcap_dir: Path,
) -> str:
    presses = itertools.count()
    ssrc, seq = random.getrandbits(32), random.randrange(1000, 30000)
    if from_user is None:
        from_hdr = '"Anonymous" <sip:anonymous@anonymous.invalid>'
        contact = "<sip:[local_ip]:[local_port]>"
        privacy = "Privacy: id"
    else:
        from_hdr = f'"{from_user}" <sip:{from_user}@[local_ip]:[local_port]>'
        contact = f"<sip:{from_user}@[local_ip]:[local_port]>"
        privacy = ""
    from_hdr += ";tag=[pid]SIPpTag00[call_number]"
    ruri = "sip:[service]@[remote_ip]:[remote_port]"
    sdp = _sdp("[media_port]")
    sc = _Scenario("hotline caller", sdp, contact)
    # Actions on a <send> run a little after it is sent: log first.
    sc.nop(log_event("INVITE_TX"))
    sc.add(
        '<send retrans="500" start_rtd="true">'
        + _msg(
            f"""
            INVITE {ruri} SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>
            Call-ID: [call_id]
            CSeq: 1 INVITE
            Contact: {contact}
            Max-Forwards: 70
            {privacy}
            Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY
            User-Agent: hotline-test-sipp
            """,
            sdp,
        )
        + "</send>"
    )
    # Ringing: provisional responses loop back here, restarting the ring timer.
    sc.label("ring")
    for i, code in enumerate(_PROVISIONAL):
        timeout = f' timeout="{ring_timeout_ms}" ontimeout="cancel"' if i == 0 else ""
        log = log_event("RINGING", str(code)) if code in (180, 183) else ""
        action = f"<action>{log}</action>" if log else ""
        sc.add(f'<recv response="{code}" optional="true" next="ring"{timeout}>{action}</recv>')
    for code in _FINAL_FAILURES:
        sc.add(
            f'<recv response="{code}" optional="true" next="rejected">'
            f"<action>{log_event('FINAL', str(code))}</action></recv>"
        )
    sc.add(
        '<recv response="200" rtd="true" rrs="true">'
        f"<action>{log_event('FINAL', '200')}{log_event('ANSWERED')}</action></recv>"
    )
    sc.add(
        "<send>"
        + _msg(
            f"""
            ACK [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 1 ACK
            [routes]
            Contact: {contact}
            Max-Forwards: 70
            """
        )
        + "</send>"
    )

    for step in steps:
        if isinstance(step, Pause):
            sc.wait(step.ms, on_bye="remote_bye")
        elif isinstance(step, Dtmf):
            for digit in step.digits:
                pcap, seq = key_pcap(digit, next(presses), seq, ssrc, pcap_dir)
                sc.nop(log_event("DTMF", digit) + _play(pcap))
                sc.wait(step.gap_ms, on_bye="remote_bye")
        elif isinstance(step, PlayAudio):
            name = re.sub(r"[^\w.-]", "_", step.pcap_path.name)
            sc.nop(log_event("PLAY", name) + _play(step.pcap_path))
            sc.wait(pcap_duration_ms(step.pcap_path), on_bye="remote_bye")
        else:
            raise TypeError(f"unknown call step {step!r}")

    if hangup_after_ms is None:
        sc.wait(bye_wait_ms, "bye_wait_over", on_bye="remote_bye")
        sc.label("bye_wait_over")
        sc.nop(log_event("BYE_WAIT_TIMEOUT"), "local_bye")
    else:
        sc.wait(hangup_after_ms, "local_bye", on_bye="remote_bye")

    sc.label("local_bye")
    sc.add(
        '<send retrans="500">'
        + _msg(
            f"""
            BYE [next_url] SIP/2.0
            Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
            From: {from_hdr}
            To: <{ruri}>[peer_tag_param]
            Call-ID: [call_id]
            CSeq: 2 BYE
            [routes]
            Contact: {contact}
            Max-Forwards: 70
            """
        )
        + f"<action>{log_event('BYE_TX')}</action></send>"
    )
    sc.add('<recv response="481" optional="true" next="end"/>')
    sc.add('<recv response="200" crlf="true" next="end"/>')

    sc.label("remote_bye")
    sc.add(f'<send next="end">{_reply("200 OK", contact=contact)}</send>')

    sc.label("rejected")
    sc.add(f'<send next="end">{_ack_non_2xx(ruri, from_hdr)}</send>')

    sc.label("cancel")
    sc.add(
        "<send>"
        + _msg(
            f"""
            CANCEL {ruri} SIP/2.0
            [last_Via:]
            From: {from_hdr}
            To: <{ruri}>
            Call-ID: [call_id]
            CSeq: 1 CANCEL
            Max-Forwards: 70
            """
        )
        + f"<action>{log_event('CANCEL_TX')}</action></send>"
    )
    sc.label("cancelling")
    sc.add('<recv response="200" optional="true" next="cancelling"/>')
    sc.add(
        '<recv response="487" timeout="5000" ontimeout="end">'
        f"<action>{log_event('FINAL', '487')}</action></recv>"
    )
    sc.add(f"<send>{_ack_non_2xx(ruri, from_hdr)}</send>")

    sc.label("end")
    sc.nop(log_event("END"))
    return sc.render()


def _ack_non_2xx(ruri: str, from_hdr: str) -> str:
    """ACK of a failure response: same branch as the INVITE, taken from its Via."""
    return _msg(
        f"""
        ACK {ruri} SIP/2.0
        [last_Via:]
        From: {from_hdr}
        [last_To:]
        Call-ID: [call_id]
        CSeq: 1 ACK
        Max-Forwards: 70
        """
    )


def answerer_scenario(
    mode: AnswerMode,
    hold_ms: int,
    ring_ms: int,
    sdp_media_port: str,
    play_audio: Path | None,
) -> str:
    sdp = _sdp(sdp_media_port)
    sc = _Scenario(f"hotline answerer ({mode})", sdp)
    sc.references |= {"whole", "remote", "local", "invite_via", "invite_cseq"}
    # Keep what later requests (CANCEL, our BYE) need from the INVITE.
    sc.add(
        '<recv request="INVITE" crlf="true" rrs="true"><action>'
        '<ereg regexp="sip:([^@;&gt;]*)@" search_in="hdr" header="From:"'
        ' assign_to="whole,from_user"/>'
        '<ereg regexp="^INVITE sips?:([^@;&gt; ]*)@" search_in="msg" assign_to="whole,dialed"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="From:" assign_to="whole,remote"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="To:" assign_to="whole,local"/>'
        '<ereg regexp="^ *(.*)$" search_in="hdr" header="Via:" assign_to="whole,invite_via"/>'
        '<ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="whole,invite_cseq"/>'
        + log_event("INVITE", "[$from_user]|[$dialed]")
        + "</action></recv>"
    )
    sc.add(f"<send>{_reply('100 Trying')}</send>")
    if mode == "busy":
        sc.add(f"<send>{_reply('486 Busy Here', to_tag=True)}</send>")
        sc.add(f'<recv request="ACK" next="end"><action>{log_event("BUSY")}</action></recv>')
    else:
        sc.add(f"<send>{_reply('180 Ringing', to_tag=True)}</send>")
        cancel_log = f"<action>{log_event('CANCEL_RX')}</action>"
        if mode == "no_answer":
            sc.add(f'<recv request="CANCEL" next="cancelled">{cancel_log}</recv>')
        else:
            if ring_ms > 0:
                sc.add(
                    f'<recv request="CANCEL" timeout="{ring_ms}" ontimeout="answer"'
                    f' next="cancelled">{cancel_log}</recv>'
                )
                sc.label("answer")
            sc.add(f'<send retrans="500">{_reply("200 OK", to_tag=True, sdp=sdp)}</send>')
            play = _play(play_audio) if play_audio else ""
            sc.add(
                '<recv request="ACK" rtd="true" crlf="true">'
                f"<action>{log_event('ANSWERED')}{play}</action></recv>"
            )
            sc.wait(hold_ms or None, "local_bye", on_bye="remote_bye")
            sc.label("local_bye")
            sc.add(
                '<send retrans="500">'
                + _msg(
                    """
                    BYE [next_url] SIP/2.0
                    Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
                    From: [$local];tag=[pid]SIPpTag01[call_number]
                    To: [$remote]
                    Call-ID: [call_id]
                    CSeq: 101 BYE
                    [routes]
                    Contact: <sip:[local_ip]:[local_port];transport=[transport]>
                    Max-Forwards: 70
                    """
                )
                + f"<action>{log_event('BYE_TX')}</action></send>"
            )
            sc.add('<recv response="481" optional="true" next="end"/>')
            sc.add('<recv response="200" next="end"/>')
            sc.label("remote_bye")
            sc.add(f'<send next="end">{_reply("200 OK")}</send>')
        sc.label("cancelled")
        sc.add(f"<send>{_reply('200 OK')}</send>")
        sc.add(
            "<send>"
            + _msg(
                """
                SIP/2.0 487 Request Terminated
                Via: [$invite_via]
                From: [$remote]
                To: [$local];tag=[pid]SIPpTag01[call_number]
                Call-ID: [call_id]
                CSeq: [$invite_cseq] INVITE
                """
            )
            + "</send>"
        )
        sc.add('<recv request="ACK" next="end"/>')
    sc.label("end")
    sc.nop(log_event("END"))
    return sc.render()
