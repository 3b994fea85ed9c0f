"""SMS gateways: the case service hands texts to one of these.

``FileSmsGateway`` appends JSON lines to a file (the default: development, and an
audit trail); ``WebhookSmsGateway`` POSTs JSON to an SMS provider's bridge.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingSms:
    to_number: str  # E.164
    text: str
    purpose: str
    case_code: str | None
    created_at: datetime
    # The hotline's own sender name (Hotline.sms_sender); empty: the gateway's
    # default (sms.sender).
    sender: str = ""


class SmsGateway(Protocol):
    name: str

    def send(self, message: OutgoingSms) -> None:
        """Deliver or raise; the caller records the outcome."""


class FileSmsGateway:
    name = "file"

    def __init__(self, path: Path, sender: str) -> None:
        self.path = path
        self.sender = sender
        self._lock = threading.Lock()

    def send(self, message: OutgoingSms) -> None:
        line = json.dumps(
            {
                "from": message.sender or self.sender,
                "to": message.to_number,
                "text": message.text,
                "purpose": message.purpose,
                "case_code": message.case_code,
                "at": message.created_at.isoformat(),
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class WebhookSmsGateway:
    name = "webhook"

    def __init__(self, url: str, token: str | None, sender: str, timeout: float) -> None:
        self.url = url
        self.token = token
        self.sender = sender
        self.timeout = timeout

    def send(self, message: OutgoingSms) -> None:
        body = json.dumps(
            {
                "from": message.sender or self.sender,
                "to": message.to_number,
                "text": message.text,
                "reference": message.case_code,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise RuntimeError(f"SMS webhook answered HTTP {response.status}")


def gateway_from_config(config: HotlineConfig) -> SmsGateway:
    sms = config.sms
    if sms.kind == "webhook":
        assert sms.url is not None  # checked by the schema
        return WebhookSmsGateway(sms.url, sms.token, sms.sender, sms.timeout_seconds)
    return FileSmsGateway(config.resolve_path(sms.path), sms.sender)
