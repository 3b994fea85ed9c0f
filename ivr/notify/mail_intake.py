"""A received mail (RFC 5322 bytes) → the :class:`~ivr.intake.types.Submission`
every channel hands to the intake (issue 14).

What is taken from the mail, and why:

- ``From``: the citizen's one mailbox, lower-cased (``ContactKind.EMAIL``); the
  display name is the citizen's name. Two mailboxes, none, or one that is not
  a plain ``local@domain`` is refused: the answer would go nowhere, or to
  someone else.
- ``Subject`` → ``subject``; the body → ``text``: the text/plain part when
  there is one, else the HTML part reduced to its text (no markup, no script,
  no style, entities decoded; nothing of it is ever rendered).
- Every other leaf part with content → an :class:`IncomingAttachment` (the
  intake sniffs the type from the bytes and applies its limits per kind).
- ``Message-ID`` → ``idempotency_key`` and ``external_id``: the same mail
  delivered twice makes one case. A mail without one is keyed by a digest of
  its sender, date, subject and body.
- A reply joins its case: ``In-Reply-To``/``References`` naming one of our
  Message-IDs (they carry the case code: ivr/notify/email_replies.py), or the
  code in brackets in the subject (``[Mã 12345678]``). The intake checks that
  the case belongs to the same hotline and citizen.

Header values holding CR, LF or other control characters once decoded (an
RFC 2047 encoded word can carry them), and mail the parser found malformed in
those headers, are refused with :class:`MailRefused` before anything is stored.

Facts this relies on (Python's standard library): ``email.policy.default``
decodes encoded words and parses address headers into ``.addresses``, recording
what it could not parse as ``.defects`` instead of raising;
``EmailMessage.get_body`` picks the preferred body part of a multipart message.
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

from ivr.config.email import check_email_address
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IncomingAttachment, Submission

logger = logging.getLogger(__name__)

# CR, LF, NUL, the other C0/C1 controls (TAB allowed: folded headers keep it) and
# the Unicode line separators.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# In text: keep line breaks and tabs, drop the other controls.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# "[Mã 12345678]", "[Mã số 12345678]", "[Ma: 12345678]", "[Case #12345678]" in a subject.
_SUBJECT_CODE = re.compile(
    r"\[\s*(?:mã|ma|case|code)(?:\s+s[ốo])?\s*[:#]?\s*#?(\d{4,16})\s*\]", re.IGNORECASE
)
# Our replies' Message-IDs: <hotline.<case code>.r<message id>@domain>.
_OUR_ID = re.compile(r"<hotline\.(\d{4,16})\.[A-Za-z0-9]+@([^<>@\s]+)>")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
SUBJECT_MAX = 400
NAME_MAX = 120
# Parts without a file name get one, so the console can offer a download.
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
}


# Parts mail software adds that are not what the citizen sends: signatures of
# signed mail, contact cards, calendar invitations, Outlook's TNEF wrapper.
# Passed on, the intake would refuse the whole mail for them.
_MACHINERY_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature",
     "application/pgp-signature", "application/pgp-keys", "application/pgp-encrypted",
     "text/vcard", "text/x-vcard", "text/calendar", "application/ms-tnef",
     "message/delivery-status", "message/disposition-notification"}
)  # fmt: skip


class MailRefused(ValueError):
    """A mail the receiver answers with a permanent refusal (5xx); the message
    is the reason the sender's server puts in its bounce."""


def parse_mail(raw: bytes, hotline_id: str, our_domains: Iterable[str]) -> Submission:
    """The submission for ``raw`` received for ``hotline_id``; raises
    :class:`MailRefused` naming the header or part that is not acceptable.
    ``our_domains`` are the domains of our Message-IDs (a reference to another
    domain's message does not name a case)."""
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)  # policy.default builds these
        return _submission(message, hotline_id, our_domains)
    except RecursionError:
        # Parts nested thousands deep: a bomb, not a citizen's mail.
        raise MailRefused("the message's parts are nested too deeply") from None


def _submission(message: EmailMessage, hotline_id: str, our_domains: Iterable[str]) -> Submission:
    name, sender = _sender(message)
    subject = _header_text(message, "Subject", SUBJECT_MAX)
    message_id = _message_id(message, "Message-ID")
    referenced = _referenced_ids(message)
    text = _body_text(message)
    attachments = tuple(_attachments(message))
    if not text.strip():
        # A photo sent with a subject only: the subject is what the citizen wrote.
        text = subject
    if not text.strip() and not attachments:
        raise MailRefused("the mail is empty: write what you report in its text")
    return Submission(
        hotline_id=hotline_id,
        channel=Channel.EMAIL,
        text=text,
        contacts=((ContactKind.EMAIL, sender),),
        name=name,
        subject=subject,
        attachments=attachments,
        idempotency_key=message_id or _digest_key(message, sender, subject, text),
        external_id=message_id,
        case_code=_case_code(subject, referenced, {d.lower() for d in our_domains}),
    )


def _get_all(message: EmailMessage, name: str) -> list[Any]:
    """The values of header ``name``, parsed; refused when the standard
    library's parser cannot read them (it raises, for instance, on an address
    whose encoded display name decodes to a line break)."""
    try:
        return list(message.get_all(name) or [])
    except Exception as exc:  # the parser's own errors vary: ValueError, IndexError…
        logger.info("header %s could not be parsed: %s", name, type(exc).__name__)
        raise MailRefused(f"{name}: malformed header") from None


def _header_text(message: EmailMessage, name: str, limit: int) -> str:
    values = _get_all(message, name)
    if len(values) > 1:
        raise MailRefused(f"{name}: given {len(values)} times")
    if not values:
        return ""
    value = str(values[0])
    if _HEADER_CONTROL.search(value):
        raise MailRefused(f"{name}: line breaks and control characters are not allowed")
    value = unicodedata.normalize("NFC", " ".join(value.split()))
    return value[:limit]


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, lower-cased address) of the one From mailbox."""
    values = _get_all(message, "From")
    if len(values) != 1:
        raise MailRefused("From: one sender address is needed")
    header = values[0]
    if _HEADER_CONTROL.search(str(header)):
        raise MailRefused("From: line breaks and control characters are not allowed")
    addresses: tuple[Any, ...] = tuple(getattr(header, "addresses", ()))
    if getattr(header, "defects", ()) or len(addresses) != 1:
        raise MailRefused("From: expected one address local@domain")
    address = addresses[0]
    spec = address.addr_spec.lower()
    try:
        check_email_address(spec)
    except ValueError as exc:
        raise MailRefused(f"From: {str(exc)[:200]}") from None
    name = " ".join(address.display_name.split())
    if _HEADER_CONTROL.search(name):
        raise MailRefused("From: line breaks and control characters are not allowed")
    return unicodedata.normalize("NFC", name)[:NAME_MAX], spec


def _message_id(message: EmailMessage, header: str) -> str | None:
    values = _get_all(message, header)
    if len(values) > 1:
        raise MailRefused(f"{header}: given {len(values)} times")
    if not values:
        return None
    text = str(values[0]).strip()
    if _HEADER_CONTROL.search(text):
        raise MailRefused(f"{header}: line breaks and control characters are not allowed")
    found = _MESSAGE_ID.fullmatch(text)
    if found is None:
        raise MailRefused(f"{header}: expected one <id@domain>")
    return found.group(0)


def _referenced_ids(message: EmailMessage) -> list[str]:
    """In-Reply-To's ids, then References' newest first (it lists oldest first)."""
    ids: list[str] = []
    for header in ("In-Reply-To", "References"):
        found: list[str] = []
        for value in _get_all(message, header):
            text = str(value)
            if _HEADER_CONTROL.search(text):
                raise MailRefused(f"{header}: line breaks and control characters are not allowed")
            found += _MESSAGE_ID.findall(text)
        ids += found if header == "In-Reply-To" else found[::-1]
    return ids


def _case_code(subject: str, referenced: list[str], our_domains: set[str]) -> str | None:
    for message_id in referenced:
        found = _OUR_ID.fullmatch(message_id)
        if found is not None and found.group(2).lower() in our_domains:
            return found.group(1)
    found = _SUBJECT_CODE.search(subject)
    return found.group(1) if found is not None else None


def _digest_key(message: EmailMessage, sender: str, subject: str, text: str) -> str:
    digest = hashlib.sha256()
    date = next((str(v) for k, v in message.raw_items() if k.lower() == "date"), "")
    for part in (sender, date, subject, text):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    return f"sha256:{digest.hexdigest()}"


def _body_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):
        # An unknown charset or a broken transfer encoding: decode what we can.
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if body.get_content_subtype() == "html":
        content = html_to_text(content)
    return _clean_text(content)


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TEXT_CONTROL.sub("", text).replace("\u2028", "\n").replace("\u2029", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return unicodedata.normalize("NFC", re.sub(r"\n{3,}", "\n\n", "\n".join(lines))).strip()


def _attachments(message: EmailMessage) -> Iterable[IncomingAttachment]:
    body = message.get_body(preferencelist=("plain", "html"))
    number = 0
    for part in message.walk():
        if part.is_multipart() or part is body:
            continue
        filename = _filename(part)
        is_text = part.get_content_maintype() == "text" and filename is None
        if is_text and part.get_content_disposition() != "attachment":
            continue  # the other alternative of the body (HTML beside plain)
        if part.get_content_type() in _MACHINERY_TYPES:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        number += 1
        declared = part.get_content_type()
        yield IncomingAttachment(
            filename=filename or f"attachment-{number}{_EXTENSIONS.get(declared, '')}",
            content=payload,
            declared_type=declared,
        )


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError):
        return None
    if not name:
        return None
    # Only the last path component, without controls: it is shown and stored.
    name = _HEADER_CONTROL.sub("", str(name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return unicodedata.normalize("NFC", name)[:200] or None


class _TextOfHtml(HTMLParser):
    """The text of an HTML body; markup, scripts and styles dropped."""

    _BREAKS = frozenset(
        {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
         "table", "ul", "ol", "hr", "section", "article", "header", "footer"}
    )  # fmt: skip
    _HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:  # <br/>: one break, not an opening and a closing one
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            # Spaces between inline elements separate words: keep one.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """The text a reader sees in ``markup``: no tag, attribute, script or style
    survives, entities are decoded (so ``&lt;b&gt;`` becomes the text ``<b>``,
    which is text again: nothing renders it as HTML)."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
