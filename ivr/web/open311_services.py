"""What Open311 (:mod:`ivr.web.open311`) says of itself: the discovery
document, and the hotline's case topics as GeoReport services
(``service_code`` = topic code, ``metadata`` false, ``type`` realtime).
Pure: the handlers answer with these.
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.config.channels import Open311Channel
from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-30T00:00:00Z"  # when what this endpoint speaks last changed


def discovery_document(url: str) -> dict[str, Any]:
    """The spec's service discovery for the endpoint at ``url``."""
    return {
        "changeset": CHANGESET,
        "contact": "the hotline's administrators",
        "key_service": "API keys are issued by the hotline's administrators",
        "endpoints": [
            {
                "specification": SPEC,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


def services_of(config: HotlineConfig, channel: Open311Channel) -> list[dict[str, Any]]:
    """The topics offered as services (all, or the channel's ``topics``), in
    the spec's fields."""
    offered = None if channel.topics is None else set(channel.topics)
    out = []
    for topic in config.cases.topics:
        if offered is not None and topic.code not in offered:
            continue
        extra = channel.services.get(topic.code)
        out.append(
            {
                "service_code": topic.code,
                "service_name": topic.name,
                "description": (extra.description if extra else "") or topic.name,
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(extra.keywords) if extra else "",
                "group": extra.group if extra else "",
            }
        )
    return out


def service_of(config: HotlineConfig, channel: Open311Channel, code: str) -> dict[str, Any] | None:
    """The service ``code`` names, if offered."""
    return next((s for s in services_of(config, channel) if s["service_code"] == code), None)
