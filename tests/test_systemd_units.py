"""The systemd units of deploy/systemd: what they run, as whom, how they stop.

The unit tier reads the files (every service runs as the unprivileged
``hotline`` user in the same sandbox, the commands exist in ``hotline``'s
parser, the stop timeout covers the drain); the integration tier has
systemd's own checker read them: ``systemd-analyze verify`` (no warning at
all) and ``systemd-analyze security --offline=yes`` (exposure rated OK).

Facts of systemd 252 (Debian 12) this relies on:
- ``verify`` prints "Unknown key …", "Executable path is not absolute" or a
  missing executable to stderr and still exits 0 for some of them, so the test
  wants no output at all; it needs the executables to exist, so the test
  copies the units with the code's and Asterisk's paths pointed at this
  machine's (the venv's ``hotline``, the rig's Asterisk);
- a template's instance is verified by naming ``name@instance.service`` next
  to ``name@.service``;
- ``security --offline=yes FILE`` rates a unit file without a running
  manager and ends with "Overall exposure level for NAME: X.Y LEVEL".
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.asterisk.instance import find_asterisk
from ivr.cli import build_parser
from ivr.service import AGI_CLOSE_SECONDS, CALL_LOG_FLUSH_SECONDS
from tests.rig.stack import REPO

UNITS = REPO / "deploy" / "systemd"
ASTERISK_CONF = REPO / "deploy" / "asterisk" / "asterisk.conf"
HOTLINE_BIN = "/opt/hotline/.venv/bin/hotline"
ASTERISK_BIN = "/opt/asterisk/sbin/asterisk"
SERVE_UNITS = ("hotline.service", "hotline-agi.service", "hotline-ami.service",
               "hotline-web.service")  # fmt: skip
ALL_UNITS = (*SERVE_UNITS, "hotline-worker@.service", "hotline-asterisk.service")
MAX_EXPOSURE = 2.0  # systemd-analyze security: "OK" is below 4.0; ours are 1.4


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections → (key, value) in order; systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], key: str, section: str = "Service") -> list[str]:
    return [value for name, value in unit.get(section, []) if name == key]


def one(unit: dict[str, list[tuple[str, str]]], key: str, section: str = "Service") -> str:
    found = values(unit, key, section)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def test_every_unit_is_there() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(ALL_UNITS)


@pytest.mark.parametrize("name", ALL_UNITS)
def test_every_service_runs_unprivileged_in_the_same_sandbox(name: str) -> None:
    unit = read_unit(UNITS / name)
    assert one(unit, "User") == "hotline" and one(unit, "Group") == "hotline"
    for key, expected in {
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",  # nothing binds below 1024: no capability at all
        "AmbientCapabilities": "",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "Restart": "on-failure",
    }.items():
        assert one(unit, key) == expected, (name, key)
    families = set(one(unit, "RestrictAddressFamilies").split())
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}, families
    # ProtectSystem=strict: every path written to is listed, nothing under /usr or /opt.
    writable = values(unit, "ReadWritePaths") + [
        f"/var/lib/{d}" for d in values(unit, "StateDirectory")
    ]
    assert writable and not any(p.startswith(("/usr", "/opt", "/home")) for p in writable)


def _command(unit: dict[str, list[tuple[str, str]]], key: str = "ExecStart") -> list[str]:
    return shlex.split(one(unit, key))


@pytest.mark.parametrize("name", [*SERVE_UNITS, "hotline-worker@.service"])
def test_hotline_units_run_commands_the_hotline_parser_knows(name: str) -> None:
    unit = read_unit(UNITS / name)
    command = _command(unit)
    assert command[0] == HOTLINE_BIN
    arguments = [a.replace("%H-%i", "node1-1") for a in command[1:]]  # systemd specifiers
    parsed = build_parser().parse_args(arguments)
    assert parsed.command in ("serve", "worker")
    assert one(unit, "Environment") == "HOTLINE_CONFIG=/var/lib/hotline/etc/hotline.yaml"
    if parsed.command == "serve":
        expected_only = {"hotline.service": None, "hotline-agi.service": "agi",
                         "hotline-ami.service": "ami", "hotline-web.service": "web"}  # fmt: skip
        assert parsed.only == expected_only[name]
        # SIGHUP re-reads the config (ivr.service.reload_config).
        assert one(unit, "ExecReload") == "/bin/kill -HUP $MAINPID"


@pytest.mark.parametrize("name", SERVE_UNITS)
def test_stop_timeout_is_above_the_drain_and_the_flush(name: str) -> None:
    """systemd kills what is left at TimeoutStopSec: it must come after the
    drain of calls up, the listener's close and the call log's flush."""
    unit = read_unit(UNITS / name)
    parsed = build_parser().parse_args(_command(unit)[1:])
    drain = parsed.drain_seconds if parsed.only in (None, "agi") else 0.0
    bound = drain + AGI_CLOSE_SECONDS + CALL_LOG_FLUSH_SECONDS
    assert float(one(unit, "TimeoutStopSec")) > bound
    # Only the main process gets SIGTERM: it drains, then stops its workers.
    assert one(unit, "KillMode") == "mixed"


def test_asterisk_runs_on_the_rendered_folder_with_its_conf() -> None:
    unit = read_unit(UNITS / "hotline-asterisk.service")
    command = _command(unit)
    assert command[0] == ASTERISK_BIN and "-f" in command
    conf = Path(command[command.index("-C") + 1])
    directories = dict(
        re.findall(r"^(\w+)\s*=>\s*(\S+)$", ASTERISK_CONF.read_text(encoding="utf-8"), re.M)
    )
    assert conf.parent == Path(directories["astetcdir"])
    # Every folder Asterisk writes is one systemd creates for the hotline user.
    state = [f"/var/lib/{d}" for d in values(unit, "StateDirectory")]
    logs = [f"/var/log/{d}" for d in values(unit, "LogsDirectory")]
    run = [f"/run/{d}" for d in values(unit, "RuntimeDirectory")]
    for key in ("astvarlibdir", "astdbdir", "astkeydir", "astspooldir"):
        assert any(directories[key].startswith(s) for s in state), key
    assert directories["astlogdir"] in logs and directories["astrundir"] in run
    assert directories["astsbindir"] == str(Path(ASTERISK_BIN).parent)


# --- systemd's own checks -------------------------------------------------------


def _installed_here(tmp_path: Path) -> Path:
    """The units with /opt/hotline's and /opt/asterisk's binaries pointed at this
    machine's, so that verify finds every executable."""
    hotline = shutil.which("hotline", path=str(REPO / ".venv" / "bin"))
    assert hotline is not None, "the venv has no hotline script: pip install -e ."
    asterisk = str(find_asterisk())
    out = tmp_path / "units"
    out.mkdir()
    for path in UNITS.glob("*.service"):
        text = path.read_text(encoding="utf-8")
        text = text.replace(HOTLINE_BIN, hotline).replace(ASTERISK_BIN, asterisk)
        (out / path.name).write_text(text, encoding="utf-8")
    return out


def _verify(folder: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{n}" for n in names)],
        cwd=folder, capture_output=True, text=True, check=False,
        env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def _instances(names: tuple[str, ...]) -> list[str]:
    return [n.replace("@.service", "@1.service") for n in names]


@pytest.mark.integration
def test_systemd_analyze_verify_passes_with_no_warning(tmp_path: Path) -> None:
    folder = _installed_here(tmp_path)
    result = _verify(folder, *_instances(ALL_UNITS))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


@pytest.mark.integration
def test_systemd_analyze_verify_reports_a_misspelled_key(tmp_path: Path) -> None:
    """The check above can fail: the same call on a unit with a typo says so."""
    folder = _installed_here(tmp_path)
    unit = folder / "hotline.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSytem="))
    result = _verify(folder, "hotline.service")
    assert "Unknown key 'ProtectSytem'" in result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("name", ALL_UNITS)
def test_systemd_rates_the_sandbox_ok(tmp_path: Path, name: str) -> None:
    folder = _installed_here(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", f"./{name}"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    print(f"{name}: exposure {found.group(1)} {found.group(2)}")
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
