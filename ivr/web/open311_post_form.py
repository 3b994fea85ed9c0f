"""What a ``POST requests`` carries (:mod:`ivr.web.open311`): the form
(form-encoded as the spec says, or multipart with one ``media`` file, counted
against a size limit while it streams in), its fields checked one by one, and
the :class:`Submission` for the intake it becomes, with the request's own
details (address id, media URL) and its idempotency key.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import uuid
from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from ivr.config.channels import Open311Channel
from ivr.config.email import check_email_address
from ivr.config.schema import HotlineConfig
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IncomingAttachment, Submission
from ivr.phone import normalise_caller
from ivr.web import open311_store
from ivr.web.api_keys import ApiKeyView
from ivr.web.open311_format import DESCRIPTION_MAX, Open311Error
from ivr.web.open311_http import hotline_id_of
from ivr.web.open311_services import service_of

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Control characters (line breaks excepted in the description) have no place in
# a field that ends up in a case, a log line or an XML answer.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Posted:
    """A checked POST: the intake's submission, the Open311 details kept
    beside the case, and the ``account_id`` echoed in the answer."""

    submission: Submission
    details: open311_store.RequestDetails
    account_id: str


async def read_form(
    request: web.Request, limit: int
) -> tuple[MultiDict[str], IncomingAttachment | None]:
    """The POST's fields, and the ``media`` file of a multipart body; 413 past
    ``limit`` bytes (counted while it streams in, not after)."""
    length = request.content_length
    if length is not None and length > limit:
        raise Open311Error(413, f"the request is larger than {limit} bytes")
    if request.content_type == "multipart/form-data":
        fields: MultiDict[str] = MultiDict()
        media: IncomingAttachment | None = None
        total = 0
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise Open311Error(400, "a nested multipart body is not accepted")
                chunks = []
                while chunk := await part.read_chunk(64 * 1024):
                    total += len(chunk)
                    if total > limit:
                        raise Open311Error(413, f"the request is larger than {limit} bytes")
                    chunks.append(chunk)
                content = b"".join(chunks)
                if part.filename is not None or part.name == "media":
                    if part.name != "media" or media is not None:
                        raise Open311Error(400, "only one file, named media, is accepted")
                    media = IncomingAttachment(
                        filename=(part.filename or "media")[:255],
                        content=content,
                        declared_type=part.headers.get("Content-Type", "")[:100],
                    )
                else:
                    fields.add(part.name, content.decode("utf-8", "replace"))
        except (ValueError, AssertionError) as exc:  # a malformed multipart body
            raise Open311Error(400, f"malformed multipart body: {exc}"[:200]) from None
        return fields, media
    if request.content_type not in ("application/x-www-form-urlencoded", ""):
        raise Open311Error(
            400, "post the fields form-encoded (or multipart/form-data with a media file)"
        )
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise Open311Error(400, "malformed form body") from None
    return MultiDict((k, v) for k, v in form.items() if isinstance(v, str)), None


def form_field(form: MultiDict[str], name: str, max_length: int, *, lines: bool = False) -> str:
    """One field, stripped: given at most once, at most ``max_length``
    characters, no control characters (nor line breaks unless ``lines``)."""
    values = form.getall(name, [])
    if len(values) > 1:
        raise Open311Error(400, f"{name} is given more than once")
    text = values[0].strip() if values else ""
    if len(text) > max_length:
        raise Open311Error(400, f"{name} is longer than {max_length} characters")
    if _CONTROL.search(text) or (not lines and ("\n" in text or "\r" in text)):
        raise Open311Error(400, f"{name} holds control characters or line breaks")
    return text


def _coordinate(form: MultiDict[str], name: str, bound: float) -> float | None:
    text = form_field(form, name, 32)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Open311Error(400, f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise Open311Error(400, f"{name} is out of range (±{bound:g})")
    return value


def _media_url(text: str) -> str:
    if not text:
        return ""
    if not re.fullmatch(r"https?://[^\s<>\"']+", text):
        raise Open311Error(400, "media_url must be an http(s) URL")
    return text


def _idempotency_key(
    request: web.Request, key: ApiKeyView, form: MultiDict[str], media: IncomingAttachment | None
) -> str | None:
    """The dedup key of this POST (see :mod:`ivr.web.open311`), scoped to the
    API key so two apps never collide; a device's key covers every field and
    the media file's bytes (two photos with the same words are two reports)."""
    given = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if given:
        if len(given) > 128 or _CONTROL.search(given):
            raise Open311Error(400, f"{IDEMPOTENCY_HEADER} is at most 128 printable characters")
        return f"open311:{key.id}:h:{given}"
    device = form.get("device_id", "").strip()
    if not device:
        return None
    fields = sorted((k, v) for k, v in form.items() if k != "api_key")
    content = hashlib.sha256(media.content).hexdigest() if media else ""
    digest = hashlib.sha256(repr((fields, content)).encode("utf-8")).hexdigest()[:40]
    return f"open311:{key.id}:d:{digest}"


def parse_post(
    request: web.Request,
    config: HotlineConfig,
    channel: Open311Channel,
    key: ApiKeyView,
    form: MultiDict[str],
    media: IncomingAttachment | None,
) -> Posted:
    """The POST's fields checked (400, or 403 for another hotline's key) and
    turned into the intake's :class:`Submission`."""
    hotline_id = hotline_id_of(config, form.get("jurisdiction_id"))
    if hotline_id != key.hotline_id:
        raise Open311Error(403, "this api_key is not valid for that jurisdiction_id")
    code = form_field(form, "service_code", 64)
    if not code:
        raise Open311Error(400, "service_code is required")
    if service_of(config, channel, code) is None:
        raise Open311Error(400, f"service_code {code!r} is not a service of this jurisdiction")
    latitude = _coordinate(form, "lat", 90)
    longitude = _coordinate(form, "long", 180)
    if (latitude is None) != (longitude is None):
        raise Open311Error(400, "lat and long go together")
    address = form_field(form, "address_string", 500)
    address_id = form_field(form, "address_id", 128)
    if latitude is None and not address and not address_id:
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    description = form_field(form, "description", DESCRIPTION_MAX, lines=True)
    media_url = _media_url(form_field(form, "media_url", 1000))
    if not description and media is None and not media_url:
        raise Open311Error(400, "description is required (or a media file)")
    contacts: list[tuple[ContactKind, str]] = []
    email = form_field(form, "email", 255).lower()
    if email:
        try:
            # The same check as every address the hotline may write to.
            check_email_address(email)
        except ValueError:
            raise Open311Error(400, "email is not an e-mail address") from None
        contacts.append((ContactKind.EMAIL, email))
    phone_text = form_field(form, "phone", 32)
    if phone_text:
        phone = normalise_caller(phone_text).e164
        if phone is None:
            raise Open311Error(400, "phone is not a phone number")
        contacts.append((ContactKind.PHONE, phone))
    # Vietnamese order: family name (the spec's last_name) first, as the
    # hotline writes and redacts names ("Nguyễn" + "Văn An").
    name = " ".join(
        part
        for part in (form_field(form, "last_name", 64), form_field(form, "first_name", 64))
        if part
    )
    form_field(form, "device_id", 128)  # checked; used only to recognise a retry
    account_id = form_field(form, "account_id", 128)  # echoed in the answer, not kept
    text = description
    if media_url:
        # Agents see the link; the server never fetches it.
        text = f"{text}\n\nmedia_url (not fetched): {media_url}".strip()
    idempotency_key = _idempotency_key(request, key, form, media)
    submission = Submission(
        hotline_id=hotline_id, channel=Channel.OPEN311, text=text, contacts=tuple(contacts),
        name=name, topic=code, address=address,
        latitude=latitude, longitude=longitude, attachments=(media,) if media else (),
        idempotency_key=idempotency_key,
        # Which app sent it, on the case's thread: the key's id, and the
        # request's own id when the app gave one.
        external_id=idempotency_key or f"open311:{key.id}:{uuid.uuid4().hex}",
    )  # fmt: skip
    details = open311_store.RequestDetails(
        api_key_id=key.id, address_id=address_id, media_url=media_url,
    )  # fmt: skip
    return Posted(submission, details, account_id)
