"""SIPp phones for the end-to-end rig: a caller that dials, presses keys and hangs
up, and answerers that play the agents', chairmen's and carrier's phones.

Each SIPp process runs a scenario generated here (XML written next to its logs)
and reports what happened through ``<log>`` actions: one ``HL|``-prefixed line
per event, stamped by SIPp itself with ``<gettimeofday>`` when it handled the
message, so ring and key times are accurate to about a millisecond however
slowly Python polls the file (SIPp flushes each line).

SIPp 3.6.1 (Debian ``sip-tester``) facts this relies on:

- Every instance binds its SIP port (``-p``), its media port and media port + 2
  (``-mp``) and a UDP control port (``-cp``, default 8888 on all interfaces):
  all are chosen here, from 12000-19999, so that many instances coexist.
- A message arriving while the scenario sits in ``<pause>`` aborts the call.
  So every wait is a ``<recv>`` of BYE (after an optional re-INVITE) with
  ``timeout``/``ontimeout``: the far end may hang up or refresh the session in
  the middle of the keys.  Each timeout is noted in the error log (harmless).
- ``play_pcap_audio`` plays in a thread and a new play cancels the previous one,
  so keys are spaced by at least a key's pcap (140 ms).  The pcaps are replayed
  verbatim: pressing ``1`` twice would repeat sequence numbers and the event
  timestamp and the PBX would drop the second key, so each press plays a
  renumbered copy (see :func:`ivr.sim.sipp.pcap.key_pcap`).  They carry payload type 101, which
  the SDP offers as telephone-event.
- ``<assignstr>`` does not expand ``[last_Via:]``-style keywords; ``<ereg>`` on
  the header does.  Actions on a ``<send>`` run a little after the send.
  Unused variables make SIPp refuse a scenario unless listed in ``<Reference>``.
- ``-oocsf`` is refused in server mode; ``-aa`` answers out-of-dialog OPTIONS
  (a PBX's qualify) and in-dialog INFO/UPDATE/NOTIFY instead.
- ``-r 1 -m 1`` waits a second before the first call; a high rate does not.

Checked against a private Asterisk 22.10.1: ``asterisk -C <file> -f -n`` with
``[directories]`` in a temp dir, ``modules.conf`` ``autoload=yes``, ``rtp.conf``
20000-30000, a PJSIP UDP transport on 127.0.0.1, an endpoint ``caller``
(``type=identify``, ``match=127.0.0.1``, ``dtmf_mode=rfc4733``, alaw/ulaw) and
endpoints with a static AOR contact at an answerer.  ``Answer(); Read(d,,1,,,10);
Dial(PJSIP/chair,10)`` got the key and rang the chair ~143 ms after the key
started (Asterisk acts on the end of the 140 ms event); ``Read`` of ``1155`` got
all four keys; a ``no_answer`` phone gave DIALSTATUS=NOANSWER via CANCEL, a
``busy`` one BUSY, passed on to the caller as 486 when not yet answered.
``Answer()`` sends no 180.  With ``send_pai=yes`` Asterisk re-INVITEs the
caller on bridging (connected line), with ``direct_media=yes`` twice more;
both are answered, but ``direct_media=no`` is the sensible setting.

Modules: ``ports`` (UDP ports), ``pcap`` (RTP pcaps, renumbered keys),
``steps`` (what a caller does), ``scenario`` (the XML), ``process`` (start,
stop), ``logs`` (event lines), ``results`` (a call as the caller saw it),
``caller`` and ``answerer`` (the phones).
"""

from __future__ import annotations

from ivr.sim.sipp.answerer import AnsweredCall, SippAnswerer
from ivr.sim.sipp.caller import SippCaller
from ivr.sim.sipp.pcap import (
    AUDIO_PCAP,
    PCAP_DIR,
    dtmf_end_offset_ms,
    dtmf_payload_type,
    dtmf_pcap,
    pcap_duration_ms,
)
from ivr.sim.sipp.ports import free_port
from ivr.sim.sipp.results import CallResult, HangupBy, KeyPress, LoadResult
from ivr.sim.sipp.scenario import AnswerMode
from ivr.sim.sipp.steps import CallStep, Dtmf, Pause, PlayAudio

__all__ = [
    "AUDIO_PCAP",
    "PCAP_DIR",
    "AnswerMode",
    "AnsweredCall",
    "CallResult",
    "CallStep",
    "Dtmf",
    "HangupBy",
    "KeyPress",
    "LoadResult",
    "Pause",
    "PlayAudio",
    "SippAnswerer",
    "SippCaller",
    "dtmf_end_offset_ms",
    "dtmf_payload_type",
    "dtmf_pcap",
    "free_port",
    "pcap_duration_ms",
]
