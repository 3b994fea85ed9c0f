"""A private Kamailio: a rendered kamailio.cfg run in the foreground.

Used by the cluster test rig and the throughput bench (the counterpart of
:mod:`ivr.asterisk.instance`); nothing touches a system-wide Kamailio
(Debian's package ships one under /etc/kamailio, left alone).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)


class KamailioNotFound(RuntimeError):
    pass


def find_kamailio() -> Path:
    found = os.environ.get("HOTLINE_KAMAILIO") or shutil.which("kamailio")
    for candidate in (found, "/usr/sbin/kamailio"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise KamailioNotFound("no kamailio found: apt-get install kamailio (./hotline.sh setup)")


def sip_options(host: str, port: int, timeout: float = 1.0) -> int | None:
    """Send one SIP OPTIONS to ``host:port`` over UDP; the answer's status
    code, or None when nothing answered in ``timeout``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        request = (
            f"OPTIONS sip:{where} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport\r\n"
            "Max-Forwards: 5\r\n"
            f"From: <sip:probe@127.0.0.1:{local_port}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{where}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode("ascii"), (host, port))
            answer = sock.recv(65535).decode("utf-8", errors="replace")
        except OSError:  # timeout, or ICMP port unreachable
            return None
    first = answer.split("\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else None


class KamailioInstance:
    """Runs ``config_file`` with its runtime files under ``base``."""

    def __init__(self, base: Path, config_file: Path, binary: Path | None = None) -> None:
        self.base = base
        self.config_file = config_file
        self.binary = binary or find_kamailio()
        self.log_file = base / "kamailio.log"
        self.process: subprocess.Popen[bytes] | None = None

    def check(self) -> str:
        """``kamailio -c``: the config parses and every module loads."""
        done = subprocess.run(
            [str(self.binary), "-c", "-f", str(self.config_file)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"kamailio -c refused {self.config_file}:\n{done.stderr}")
        return done.stderr

    def start(self, host: str, port: int, timeout: float = 30) -> None:
        """Start in the foreground (-DD, logging to stderr into the log file);
        returns once it answers OPTIONS on ``host:port``."""
        run_dir = self.base / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [str(self.binary), "-DD", "-E", "-f", str(self.config_file), "-Y", str(run_dir),
             "-P", str(run_dir / "kamailio.pid"), "-w", str(self.base), "-m", "64", "-M", "8"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while sip_options(host, port, 0.5) != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kamailio did not start:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 200) -> str:
        if not self.log_file.exists():
            return ""
        text = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- {self.log_file} ---\n" + "\n".join(text[-lines:])
