"""The test database: SQLite files by default, or a private PostgreSQL server
that the rig starts itself when ``HOTLINE_TEST_DB=postgresql``.

The server is Debian's (``/usr/lib/postgresql/<ver>/bin``): ``initdb`` into a
temporary folder and ``pg_ctl start`` on a free loopback port, run as the
``postgres`` user when we are root (PostgreSQL refuses to run as root). Each
caller gets a fresh database on it, so tests never share state.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ENV = "HOTLINE_TEST_DB"
PG_ROOT = Path("/usr/lib/postgresql")
_counter = itertools.count(1)


def backend() -> str:
    value = os.environ.get(ENV, "sqlite").strip().lower() or "sqlite"
    if value not in ("sqlite", "postgresql"):
        raise RuntimeError(f"{ENV}={value!r}: use sqlite or postgresql")
    return value


def _pg_bin() -> Path:
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {PG_ROOT}: apt-get install postgresql"
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway cluster owned by this test session."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as_user: dict[str, object] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            uid, gid = entry.pw_uid, entry.pw_gid

            def demote() -> None:
                os.setgid(gid)
                os.setuid(uid)

            self._as_user = {"preexec_fn": demote}

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.root,
            **self._as_user,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories="
            f"{self.root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh empty database; its SQLAlchemy URL (psycopg 3)."""
        import psycopg

        name = f"hotline_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"


_server: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    """The session's server, started on first use and stopped at exit."""
    global _server
    if _server is None:
        server = PostgresServer()
        server.start()
        atexit.register(server.stop)
        _server = server
    return _server


def fresh_database_url(folder: Path, name: str = "hotline.db") -> str:
    """A fresh database for one test or fixture, on the selected backend."""
    if backend() == "postgresql":
        return postgres_server().new_database()
    return f"sqlite:///{folder / name}"
