"""A private Asterisk: its own asterisk.conf and directories, in the foreground.

Used by the test rig, the demo and ``hotline asterisk-run``; nothing touches a
system-wide Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = Path.home() / ".cache" / "hotline" / "asterisk-22"
PROVISION_SCRIPT = Path(__file__).resolve().parents[2] / "asterisk-docker" / "provision-asterisk.sh"


class AsteriskNotFound(RuntimeError):
    pass


def find_asterisk() -> Path:
    """The provisioned or system Asterisk binary; never builds (see provision script)."""
    env = os.environ.get("HOTLINE_ASTERISK")
    candidates = [Path(env)] if env else []
    prefix = Path(os.environ.get("HOTLINE_ASTERISK_PREFIX", DEFAULT_PREFIX))
    candidates.append(prefix / "sbin" / "asterisk")
    system = shutil.which("asterisk")
    if system:
        candidates.append(Path(system))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AsteriskNotFound(
        "no Asterisk found: run asterisk-docker/provision-asterisk.sh "
        "(or `hotline asterisk-install`) first"
    )


def modules_dir_for(binary: Path) -> Path:
    """Where the modules of ``binary`` live (prefix/lib/asterisk/modules)."""
    for candidate in (
        binary.parent.parent / "lib" / "asterisk" / "modules",
        binary.parent.parent / "lib64" / "asterisk" / "modules",
        Path("/usr/lib/asterisk/modules"),
        Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
    ):
        if candidate.is_dir():
            return candidate
    raise AsteriskNotFound(f"no modules folder next to {binary}")


class AsteriskInstance:
    """Owns ``base``: etc/ (config), run/, log/, spool/, lib/ under it."""

    def __init__(
        self,
        base: Path,
        binary: Path | None = None,
        agi_dir: Path | None = None,
        system_name: str | None = None,
    ):
        self.base = base
        # Several nodes: each one's name prefixes its channels' uniqueids, so two
        # nodes never hand the call log the same one (and a record names its node).
        self.system_name = system_name
        self.binary = binary or find_asterisk()
        self.etc = base / "etc"
        self.log_dir = base / "log"
        self.agi_dir = agi_dir or base / "agi-bin"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf_file(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def messages_log(self) -> Path:
        return self.log_dir / "messages.log"

    def write_asterisk_conf(self) -> None:
        data_dir = self.base / "data"
        for folder in (
            self.etc,
            self.log_dir,
            data_dir,
            self.base / "run",
            self.base / "spool",
            self.base / "lib",
            self.base / "keys",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(
            "[directories]\n"
            f"astetcdir => {self.etc}\n"
            f"astmoddir => {modules_dir_for(self.binary)}\n"
            f"astvarlibdir => {self.base / 'lib'}\n"
            f"astdbdir => {self.base / 'lib'}\n"
            f"astkeydir => {self.base / 'keys'}\n"
            f"astdatadir => {data_dir}\n"
            f"astagidir => {self.agi_dir}\n"
            f"astspooldir => {self.base / 'spool'}\n"
            f"astrundir => {self.base / 'run'}\n"
            f"astlogdir => {self.log_dir}\n"
            f"astsbindir => {self.binary.parent}\n"
            "\n[options]\nverbose=3\ndebug=0\nnocolor=yes\ntransmit_silence=yes\n"
            "maxfiles=8192\nhideconnect=yes\n"
            + (f"systemname={self.system_name}\n" if self.system_name else ""),
            encoding="utf-8",
        )

    def start(self) -> None:
        """Start in the foreground (-f) as a child; returns once fully booted."""
        self.write_asterisk_conf()
        console_log = (self.log_dir / "console.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.binary), "-C", str(self.conf_file), "-f", "-n", "-q"],
            stdin=subprocess.DEVNULL,
            stdout=console_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.rx("core waitfullybooted", timeout=60, retries=100)
        except Exception:
            self.stop()
            raise

    def rx(self, command: str, timeout: float = 10, retries: int = 0) -> str:
        """Run a CLI command through the control socket and return its output."""
        last_error = ""
        for attempt in range(retries + 1):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"asterisk exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            done = subprocess.run(
                [str(self.binary), "-C", str(self.conf_file), "-rx", command],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode == 0 and "Unable to connect" not in done.stdout:
                return done.stdout
            last_error = done.stdout + done.stderr
            if attempt < retries:
                import time

                time.sleep(0.2)
        raise RuntimeError(f"asterisk -rx {command!r} failed: {last_error.strip()}")

    async def arx(self, command: str, timeout: float = 10) -> str:
        return await asyncio.to_thread(self.rx, command, timeout)

    def reload(self) -> None:
        self.rx("core reload")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.rx("core stop now", timeout=5)
            except Exception:
                logger.debug("core stop now failed", exc_info=True)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 200) -> str:
        texts = []
        for path in (self.messages_log, self.log_dir / "console.log"):
            if path.exists():
                content = path.read_text(encoding="utf-8", errors="replace").splitlines()
                texts.append(f"--- {path} ---\n" + "\n".join(content[-lines:]))
        return "\n".join(texts)
