"""The ``cluster:`` section (issue 15): nodes that own hotlines, one standby,
the proxy; mistakes named by file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivr.config import load_config
from ivr.config.cluster import NodeRole
from tests.config_checks import config_problems, line_of
from tests.test_tenancy import A, B, write_config


def _cluster(**changes: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["cluster"] = {
            "nodes": [
                {"id": "node-a", "role": "owner", "hotlines": [A],
                 "sip": {"host": "127.0.0.2", "port": 5060},
                 "ami": {"host": "127.0.0.2", "port": 5038}},
                {"id": "node-b", "role": "owner", "hotlines": [B],
                 "sip": {"host": "127.0.0.3", "port": 5060},
                 "ami": {"host": "127.0.0.3", "port": 5038}},
                {"id": "standby", "role": "standby",
                 "sip": {"host": "127.0.0.4", "port": 5060},
                 "ami": {"host": "127.0.0.4", "port": 5038}},
            ],
            "proxy": {"host": "127.0.0.1", "port": 5060, "probe_interval_seconds": 2},
        }  # fmt: skip
        for index, node_changes in changes.items():
            data["cluster"]["nodes"][int(index[1:])].update(node_changes)

    return edit


def test_each_hotline_is_served_by_its_owner_then_the_standby(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, _cluster()))
    cluster = config.cluster
    assert cluster.owner_of(A).id == "node-a" and cluster.owner_of(B).id == "node-b"
    assert [n.id for n in cluster.serving(A)] == ["node-a", "standby"]
    assert cluster.standby().role is NodeRole.STANDBY
    # Without the section the deployment is the one node of asterisk: as before.
    assert load_config(write_config(tmp_path / "one")).cluster.nodes == []


def test_a_hotline_owned_twice_or_by_nobody_is_named_with_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, _cluster(n1={"hotlines": [A]}))
    error = config_problems(path)
    line = line_of(path, f"- {A}", after="id: node-b")
    assert f"{path}:{line}: cluster.nodes[1].hotlines[0]: hotline {A!r} is already owned" in error
    assert f"hotline {B!r} has no owner node" in error


def test_a_standby_lists_no_hotlines_and_unknown_hotlines_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, _cluster(n2={"hotlines": [A]}, n0={"hotlines": [A, "ha-noi"]}))
    error = config_problems(path)
    assert "cluster.nodes[2].hotlines: a standby stands by for every owner" in error
    line = line_of(path, "- ha-noi", after="id: node-a")
    assert f"{path}:{line}: cluster.nodes[0].hotlines[1]: unknown hotline 'ha-noi'" in error
