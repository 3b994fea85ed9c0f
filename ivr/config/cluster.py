"""Config of a deployment past one machine (issue 15; docs/design "Scale-out").

Each hotline's queues live on one **owner** node; a **standby** node has the
same rendered config for every hotline and takes their calls when an owner
stops answering the proxy's SIP OPTIONS probes. Kamailio (``hotline
kamailio-config``) sends each hotline's numbers to its owner, then to the
standby, and is the registrar of the agents' phones so either node can ring
them. Without ``cluster.nodes`` the deployment is the one Asterisk of
``asterisk:`` as before.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivr.config.safe_text import Host

FieldPath = tuple[str | int, ...]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeRole(StrEnum):
    OWNER = "owner"  # its hotlines' calls and queues live here
    STANDBY = "standby"  # same config for every hotline; takes calls when an owner is down


class NodeAddress(_Section):
    host: Host
    port: int = Field(ge=1, le=65535)


class ClusterNode(_Section):
    """One Asterisk node. AMI logs in with ``asterisk.ami``'s user and secret."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    role: NodeRole
    sip: NodeAddress
    ami: NodeAddress
    # Owner: the hotlines whose numbers and queues live here. Standby: empty
    # (it stands by for every owner).
    hotlines: list[str] = []


class ProxySection(_Section):
    """Kamailio in front of the nodes: where it listens and how it probes."""

    host: Host = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    # SIP OPTIONS to every node this often; a node failing ``probe_threshold``
    # probes in a row is inactive until it answers again.
    probe_interval_seconds: int = Field(2, ge=1, le=60)
    probe_threshold: int = Field(1, ge=1, le=10)


class ClusterSection(_Section):
    nodes: list[ClusterNode] = []
    proxy: ProxySection = ProxySection()

    def node(self, node_id: str) -> ClusterNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def owner_of(self, hotline_id: str) -> ClusterNode | None:
        return next(
            (n for n in self.nodes if n.role is NodeRole.OWNER and hotline_id in n.hotlines), None
        )

    def standby(self) -> ClusterNode | None:
        return next((n for n in self.nodes if n.role is NodeRole.STANDBY), None)

    def serving(self, hotline_id: str) -> list[ClusterNode]:
        """The nodes that may carry a hotline's calls, in the proxy's order."""
        return [n for n in (self.owner_of(hotline_id), self.standby()) if n is not None]


def cluster_problems(config: Any) -> list[tuple[FieldPath, str]]:
    """Cross-section checks of ``cluster`` (called by
    :func:`ivr.config.references.find_reference_problems`)."""
    section: ClusterSection = config.cluster
    if not section.nodes:
        return []
    problems: list[tuple[FieldPath, str]] = []
    hotline_ids = {h.id for h in config.hotlines}
    seen: dict[str, int] = {}
    owners: dict[str, str] = {}
    standbys = 0
    for index, node in enumerate(section.nodes):
        where: FieldPath = ("cluster", "nodes", index)
        if node.id in seen:
            problems.append(((*where, "id"), f"node {node.id!r} is listed twice"))
        seen[node.id] = index
        if node.role is NodeRole.STANDBY:
            standbys += 1
            if node.hotlines:
                problems.append(
                    ((*where, "hotlines"), "a standby stands by for every owner: list no hotlines")
                )
        for position, hotline_id in enumerate(node.hotlines):
            if hotline_id not in hotline_ids:
                known = ", ".join(sorted(hotline_ids))
                problems.append(
                    ((*where, "hotlines", position),
                     f"unknown hotline {hotline_id!r} (known: {known})")
                )  # fmt: skip
            elif hotline_id in owners:
                problems.append(
                    ((*where, "hotlines", position),
                     f"hotline {hotline_id!r} is already owned by node {owners[hotline_id]!r}")
                )  # fmt: skip
            else:
                owners[hotline_id] = node.id
    if standbys > 1:
        problems.append((("cluster", "nodes"), "at most one standby node"))
    for hotline_id in sorted(hotline_ids - owners.keys()):
        problems.append(
            (("cluster", "nodes"), f"hotline {hotline_id!r} has no owner node: name it in one")
        )
    if config.asterisk.ami.nodes:
        problems.append(
            (("asterisk", "ami", "nodes"),
             "the nodes are listed under cluster.nodes: remove asterisk.ami.nodes")
        )  # fmt: skip
    return problems
