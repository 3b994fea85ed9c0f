"""What a :class:`Submission` must be before the intake writes anything: known
hotline, channel, topic and area; bounded text without control characters;
contacts in their stored spelling. A refusal is :class:`IntakeRefused` with the
field it concerns, in words a citizen or a client developer understands.

Pure: no database, no files (the attachments' bytes are checked by
:mod:`ivr.intake.attachments`, after the idempotency key).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from ivr.config.schema import HotlineConfig
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake import attachments as files
from ivr.intake.types import IntakeRefused, Submission

logger = logging.getLogger(__name__)

TEXT_LIMIT = 10_000
SUBJECT_LIMIT = 255
NAME_LIMIT = 128
ADDRESS_LIMIT = 500
KEY_LIMIT = 255
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
_ZALO = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


@dataclass
class CheckedSubmission:
    """A submission after validation: what the transaction writes."""

    submission: Submission
    text: str
    subject: str
    name: str
    address: str
    contacts: list[tuple[ContactKind, str]]
    key: str | None
    external_id: str | None
    # Filled by the intake once the idempotency key is known not to be a retry
    # (decoding photos again for a retried copy would be wasted work).
    attachments: list[files.ProcessedAttachment]


def _control_free(value: str, field_name: str, *, multiline: bool) -> str:
    """Refuse control characters (newline and tab allowed in multi-line text,
    where CRLF and CR are read as a newline); NFC so Vietnamese compares."""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    allowed = {"\n", "\t"} if multiline else set()
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) == "Cc":
            raise IntakeRefused(
                f"trường {field_name} chứa ký tự điều khiển không hợp lệ "
                f"(control character U+{ord(ch):04X} refused)",
                field_name,
            )
    return unicodedata.normalize("NFC", value)


def _bounded(value: str, field_name: str, limit: int, *, multiline: bool = False) -> str:
    value = _control_free(value or "", field_name, multiline=multiline).strip()
    if len(value) > limit:
        raise IntakeRefused(
            f"trường {field_name} quá dài: {len(value)} ký tự, tối đa {limit} "
            f"(at most {limit} characters)",
            field_name,
        )
    return value


def normalise_contact(kind: ContactKind, value: str) -> str:
    """The stored spelling of a contact, or :class:`IntakeRefused`."""
    value = _control_free(value or "", "contacts", multiline=False).strip()
    if kind == ContactKind.EMAIL:
        value = value.lower()
        ok = bool(_EMAIL.match(value)) and len(value) <= 254
    elif kind == ContactKind.PHONE:
        ok = bool(_PHONE.match(value))
    else:
        ok = bool(_ZALO.match(value))
    if not ok:
        raise IntakeRefused(f"liên hệ {kind.value} không hợp lệ (invalid {kind.value})", "contacts")
    return value


def check_submission(config: HotlineConfig, s: Submission) -> CheckedSubmission:
    """The submission validated against ``config``, its attachments not yet
    decoded; or :class:`IntakeRefused`."""
    if config.hotline(s.hotline_id) is None:
        raise IntakeRefused(f"không có đường dây {s.hotline_id!r} (unknown hotline)", "hotline")
    try:
        Channel(s.channel)
    except ValueError:
        raise IntakeRefused(f"unknown channel {s.channel!r}", "channel") from None
    text = _bounded(s.text, "text", TEXT_LIMIT, multiline=True)
    subject = _bounded(s.subject, "subject", SUBJECT_LIMIT)
    name = _bounded(s.name, "name", NAME_LIMIT)
    address = _bounded(s.address, "address", ADDRESS_LIMIT, multiline=True)
    address = " ".join(address.split())
    if s.topic is not None and s.topic not in {t.code for t in config.cases.topics}:
        raise IntakeRefused(f"lĩnh vực {s.topic!r} không có (unknown topic)", "topic")
    if s.area_code is not None and config.area(s.area_code) is None:
        raise IntakeRefused(f"địa bàn {s.area_code!r} không có (unknown area)", "area_code")
    if (s.latitude is None) != (s.longitude is None):
        raise IntakeRefused("cần cả vĩ độ và kinh độ (latitude and longitude)", "latitude")
    if (
        s.latitude is not None
        and s.longitude is not None
        and not (-90 <= s.latitude <= 90 and -180 <= s.longitude <= 180)
    ):
        raise IntakeRefused("tọa độ không hợp lệ (coordinates out of range)", "latitude")
    contacts: list[tuple[ContactKind, str]] = []
    for kind, value in s.contacts:
        try:
            contact_kind = ContactKind(kind)
        except ValueError:
            raise IntakeRefused(f"unknown contact kind {kind!r}", "contacts") from None
        pair = (contact_kind, normalise_contact(contact_kind, value))
        if pair not in contacts:
            contacts.append(pair)
    key = _bounded(s.idempotency_key or "", "idempotency_key", KEY_LIMIT) or None
    external_id = _bounded(s.external_id or "", "external_id", KEY_LIMIT) or None
    limits = config.channels.attachments
    if len(s.attachments) > limits.max_per_message:
        raise IntakeRefused(
            f"tối đa {limits.max_per_message} tệp đính kèm "
            f"(at most {limits.max_per_message} attachments)",
            "attachments",
        )
    if not text and not s.attachments:
        raise IntakeRefused("xin nhập nội dung phản ánh (the text is empty)", "text")
    return CheckedSubmission(s, text, subject, name, address, contacts, key, external_id, [])
