"""A SIPp phone that REGISTERs once, with or without credentials, and reports
the answers it got (401, 200, …).

SIPp 3.6.1 facts this relies on: a ``<recv response="401" auth="true">``
keeps the challenge, and ``[authentication]`` in the next request answers it
with the ``-au``/``-ap`` user and password (MD5 digest); ``<log>`` lines go to
``-log_file`` with ``-trace_logs``. The phone's Contact is
``sip:USER@127.0.0.1:PORT``, so a :class:`~ivr.sim.sipp.SippAnswerer` started
afterwards on the same port (``port=``) takes the calls sent to it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from ivr.sim.sipp import free_port

_STATUSES = (401, 403, 404, 407, 200)


def _register(user: str, cseq: int, authenticated: bool) -> str:
    auth = "[authentication]\n" if authenticated else ""
    return f"""<send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{user}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: 600
{auth}Content-Length: 0

]]></send>
<recv response="100" optional="true"/>
"""


def _answers(challenge_to: str | None) -> str:
    parts = []
    for status in _STATUSES:
        optional = ' optional="true"' if status != _STATUSES[-1] else ""
        goes = challenge_to if status == 401 and challenge_to else "end"
        auth = ' auth="true"' if status == 401 and challenge_to else ""
        parts.append(
            f'<recv response="{status}"{optional}{auth} next="{goes}">'
            f'<action><log message="REG|{status}"/></action></recv>'
        )
    return "\n".join(parts) + "\n"


def register_scenario(user: str, with_credentials: bool) -> str:
    body = _register(user, 1, False) + _answers("challenged" if with_credentials else None)
    body += '<label id="challenged"/>\n'
    if with_credentials:
        body += _register(user, 2, True) + _answers(None)
    body += '<label id="end"/>\n<nop><action><log message="REG|END"/></action></nop>\n'
    head = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="register">\n'
    return f"{head}{body}</scenario>\n"


@dataclass
class Registration:
    statuses: list[int]  # the final answers, in order
    exit_code: int | None
    log_text: str


async def register(
    workdir: Path,
    target: str,
    user: str,
    port: int,
    password: str | None = None,
    sipp_bin: str = "sipp",
    timeout_s: float = 20,
) -> Registration:
    """REGISTER ``user`` at ``target`` from 127.0.0.1:``port``; with
    ``password``, answer the challenge. Returns the statuses received."""
    run = workdir / f"register-{user}-{port}-{'auth' if password else 'none'}"
    run.mkdir(parents=True, exist_ok=True)
    (run / "register.xml").write_text(register_scenario(user, password is not None), "ascii")
    args = [
        target, "-sf", "register.xml", "-m", "1", "-r", "1000", "-l", "1",
        "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port(4)), "-cp", str(free_port()),
        "-nostdin", "-timeout", f"{int(timeout_s)}s",
        "-trace_logs", "-log_file", "events.log", "-trace_err", "-error_file", "errors.log",
        "-trace_msg", "-message_file", "messages.log",
    ]  # fmt: skip
    if password is not None:
        args += ["-au", user, "-ap", password]
    with (run / "stderr.txt").open("ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sipp_bin, *args, cwd=run, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        exit_code = await asyncio.wait_for(proc.wait(), timeout_s + 10)
    except TimeoutError:
        proc.kill()
        exit_code = await proc.wait()
    texts = []
    for name in ("stderr.txt", "errors.log", "events.log", "messages.log"):
        path = run / name
        if path.exists():
            texts.append(f"==== {name} ====\n" + path.read_text("utf-8", errors="replace"))
    events = run / "events.log"
    lines = events.read_text("utf-8", errors="replace").splitlines() if events.exists() else []
    statuses = [int(line[4:]) for line in lines if line.startswith("REG|") and line[4:].isdigit()]
    return Registration(statuses, exit_code, "\n".join(texts))
