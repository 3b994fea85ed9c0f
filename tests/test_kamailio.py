"""The proxy's config (issue 15): ``hotline kamailio-config`` renders a
kamailio.cfg that Kamailio 5.6 itself accepts (``kamailio -c``), sends each
hotline's numbers to its owner then the standby, and keeps the phones'
secrets to its owner's eyes; ``asterisk-config --node`` renders one node's
files for a place behind that proxy."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ivr.asterisk.kamailio import (
    OWNER_PRIORITY,
    STANDBY_PRIORITY,
    render_dispatcher_list,
    render_kamailio,
    write_kamailio,
)
from ivr.asterisk.render import RenderOptions, render_node
from ivr.cli import main
from ivr.config import load_config
from ivr.config.safe_text import UnsafeValue
from tests.test_tenancy import B_NUMBER, A, B, write_config

OWNER_IP, STANDBY_IP, CARRIER_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def cluster(data: dict[str, Any]) -> None:
    """Node ``node-a`` (127.0.0.2) owns both hotlines; ``standby`` (127.0.0.3)."""
    data["trunks"][0]["host"] = CARRIER_IP
    data["cluster"] = {
        "nodes": [
            {"id": "node-a", "role": "owner", "hotlines": [A],
             "sip": {"host": OWNER_IP, "port": 5080}, "ami": {"host": OWNER_IP, "port": 5039}},
            {"id": "node-b", "role": "owner", "hotlines": [B],
             "sip": {"host": "127.0.0.5", "port": 5080},
             "ami": {"host": "127.0.0.5", "port": 5039}},
            {"id": "standby", "role": "standby",
             "sip": {"host": STANDBY_IP, "port": 5080}, "ami": {"host": STANDBY_IP, "port": 5039}},
        ],
        "proxy": {"host": "127.0.0.1", "port": 5090, "probe_interval_seconds": 3,
                  "probe_threshold": 2},
    }  # fmt: skip


def _config(tmp_path: Path) -> Any:
    return load_config(write_config(tmp_path, cluster))


def test_each_hotline_goes_to_its_owner_first_then_the_standby(tmp_path: Path) -> None:
    config = _config(tmp_path)
    lines = render_dispatcher_list(config).splitlines()[1:]
    assert lines == [
        f"1 sip:{OWNER_IP}:5080 0 {OWNER_PRIORITY} node=node-a",
        f"1 sip:{STANDBY_IP}:5080 0 {STANDBY_PRIORITY} node=standby",
        f"2 sip:127.0.0.5:5080 0 {OWNER_PRIORITY} node=node-b",
        f"2 sip:{STANDBY_IP}:5080 0 {STANDBY_PRIORITY} node=standby",
    ]
    text = render_kamailio(config, {}, tmp_path / "d.list")
    assert 'if ($rU == "02437655555") { $var(set) = 1; }' in text
    assert f'if ($rU == "{B_NUMBER}") {{ $var(set) = 2; }}' in text
    # Probing as configured, by OPTIONS, of every node all the time.
    assert 'modparam("dispatcher", "ds_ping_interval", 3)' in text
    assert 'modparam("dispatcher", "ds_probing_threshold", 2)' in text
    assert 'modparam("dispatcher", "ds_probing_mode", 1)' in text
    # Only the carrier's address sends citizens' calls in.
    assert f'if ($si == "{CARRIER_IP}")' in text
    assert "listen=udp:127.0.0.1:5090" in text


@pytest.mark.integration  # runs kamailio -c
def test_kamailio_accepts_the_rendered_config(tmp_path: Path) -> None:
    """The real parser: every module, parameter and function exists in 5.6."""
    binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
    assert Path(binary).exists(), "kamailio is not installed (./hotline.sh installs it)"
    config = _config(tmp_path)
    secrets = {p.id: f"secret-{p.id}" for p in config.phones}
    out = tmp_path / "etc" / "kamailio.cfg"
    written = write_kamailio(config, secrets, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # the phones' secrets
    assert written[1].read_text().startswith("# Generated")
    checked = subprocess.run(
        [binary, "-c", "-f", str(out)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert '$sht(secrets=>hcc-01) = "secret-hcc-01";' in out.read_text()


def test_the_command_renders_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, cluster)
    out = tmp_path / "proxy" / "kamailio.cfg"
    assert main(["-c", str(path), "kamailio-config", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(out.parent.resolve() / "kamailio.dispatcher.list")]
    # Without cluster.nodes there is nothing to proxy: a clear refusal.
    single = write_config(tmp_path / "single")
    assert main(["-c", str(single), "kamailio-config", "--out", str(out)]) == 2
    assert "cluster.nodes" in capsys.readouterr().err


def test_a_carrier_known_only_by_name_is_refused(tmp_path: Path) -> None:
    def by_name(data: dict[str, Any]) -> None:
        cluster(data)
        data["trunks"][0]["host"] = "sip.carrier.example"

    config = load_config(write_config(tmp_path, by_name))
    with pytest.raises(
        UnsafeValue, match=r"trunks\.pstn\.host: 'sip\.carrier\.example' is not an IP"
    ):
        render_kamailio(config, {}, tmp_path / "d.list")


# --- asterisk-config --node ---------------------------------------------------------------


def _options(tmp_path: Path) -> RenderOptions:
    return RenderOptions(tmp_path / "p", tmp_path / "m", tmp_path / "r", {})


def test_an_owner_node_carries_its_own_hotlines_and_the_standby_every_one(tmp_path: Path) -> None:
    config = _config(tmp_path)
    secrets = {p.id: "s3cret-" + p.id for p in config.phones}
    options = RenderOptions(tmp_path / "p", tmp_path / "m", tmp_path / "r", secrets)
    owner = render_node(config, options, "node-a")
    standby = render_node(config, options, "standby")
    assert "exten => 02437655555,1" in owner["extensions.conf"]
    assert f"exten => {B_NUMBER},1" not in owner["extensions.conf"]
    assert "[hcc-tu-van]" not in owner["queues.conf"] and "[operator]" in owner["queues.conf"]
    for number in ("02437655555", B_NUMBER):
        assert f"exten => {number},1" in standby["extensions.conf"]
    assert "[hcc-tu-van]" in standby["queues.conf"] and "[operator]" in standby["queues.conf"]
    # Static members ride along to the standby (the roster adds the others).
    assert "member => PJSIP/hcc-01" in standby["queues.conf"]
    pjsip = owner["pjsip.conf"]
    assert f"bind={OWNER_IP}:5080" in pjsip
    assert f"media_address={OWNER_IP}\nbind_rtp_to_media_address=yes" in pjsip
    # The carrier's calls come through the proxy; the phones are rung there.
    assert "type=identify\nendpoint=pstn\nmatch=127.0.0.1\n" in pjsip
    assert f"match={CARRIER_IP}" not in pjsip
    assert "[hcc-01]\ntype=aor\ncontact=sip:hcc-01@127.0.0.1:5090\n" in pjsip
    manager = standby["manager.conf"]
    assert f"bindaddr={STANDBY_IP}\nport=5039\n" in manager
    assert "permit=127.0.0.1/255.255.255.255" in manager


def test_an_unknown_node_is_named(tmp_path: Path) -> None:
    # (Without cluster.nodes the files are unchanged: tests/test_render.py.)
    with pytest.raises(ValueError, match="no node 'node-x' \\(known: node-a, node-b, standby\\)"):
        render_node(_config(tmp_path), _options(tmp_path), "node-x")


def test_the_node_command_writes_one_nodes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, cluster)
    out = tmp_path / "node-a"
    assert main(["-c", str(path), "asterisk-config", "--node", "node-a", "--out", str(out)]) == 0
    assert f"bind={OWNER_IP}:5080" in (out / "pjsip.conf").read_text()
    assert stat.S_IMODE((out / "pjsip.conf").stat().st_mode) == 0o600
    assert main(["-c", str(path), "asterisk-config", "--node", "nope", "--out", str(out)]) == 2
    assert "no node 'nope'" in capsys.readouterr().err


def test_a_secret_that_would_break_out_of_its_string_is_refused(tmp_path: Path) -> None:
    """phone-secrets.json is a file an administrator may edit by hand: a quote
    or a pseudo-variable in it must not become kamailio.cfg script."""
    config = _config(tmp_path)
    for hostile in ('abc"; exit; "', "abc$(hdr(X))", "abc\\", "abc\ndef"):
        with pytest.raises(UnsafeValue, match=r"phones\.hcc-01"):
            render_kamailio(config, {"hcc-01": hostile}, tmp_path / "d.list")
