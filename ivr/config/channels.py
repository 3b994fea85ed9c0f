"""Config of the written channels into the case store (issue 14).

One section, ``channels:``, one sub-section per channel, each off by default so
a config without it stays valid. Each channel's engineer owns its class here;
the classes hold only what the file says (validated, file:line:field errors by
the loader like every other section).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ivr.config.email import EmailAddress
from ivr.config.records import TopicId
from ivr.config.safe_text import Host, SafeTitle, Secret, Token
from ivr.config.yaml_lines import FieldPath

# A hotline id as ivr.config.schema spells it (not imported: schema imports this module).
_HotlineId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=64)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebFormChannel(_Section):
    """The public web form ``/report`` and the status page (ivr/web/citizen_form.py).

    Budgets are per client address (behind a trusted proxy, the address it
    saw). Every form post counts, accepted or not; every status lookup counts,
    found or not, so codes cannot be tried in bulk. The per-kind limits of
    photos and videos are the intake's; ``max_upload_bytes`` bounds a whole
    post, refused (413) while it streams in, before it is all read."""

    enabled: bool = False
    submissions_per_window: int = Field(10, ge=1, le=10_000)
    status_lookups_per_window: int = Field(30, ge=1, le=10_000)
    window_seconds: int = Field(3600, ge=10, le=86_400)
    max_upload_bytes: int = Field(60 * 1024 * 1024, ge=64 * 1024, le=500 * 1024 * 1024)
    max_files: int = Field(5, ge=0, le=20)
    # How long a form page stays good to send (its signed token); past it the
    # form comes back with the citizen's input and a fresh token.
    form_hours: float = Field(24.0, gt=0, le=24 * 7)


class EmailChannel(_Section):
    """The SMTP receiver started by ``hotline serve``; replies by SMTP.

    ``addresses`` maps each inbound address (what citizens write to) to the
    hotline whose case store it feeds; the receiver takes mail for these
    addresses only (it is not a relay). The hotline's first address is the
    From of its replies. SPF, DKIM and DMARC are not checked here: the MTA in
    front of the receiver (the one the MX record names) should.
    """

    enabled: bool = False
    # Loopback by default: the organisation's MTA relays to it on this machine.
    listen_host: Host = "127.0.0.1"
    listen_port: int = Field(2525, ge=1, le=65535)
    addresses: dict[EmailAddress, _HotlineId] = {}
    # A whole message as sent (headers, attachments in base64): 552 beyond it.
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # The domain of our replies' Message-IDs; None: the hotline address's domain.
    message_id_domain: Host | None = None

    @field_validator("addresses", mode="before")
    @classmethod
    def _lower_case_and_once(cls, value: Any) -> Any:
        # Mailboxes are matched without regard to case; the same address
        # written twice with other letters would belong to two hotlines.
        if not isinstance(value, dict):
            return value
        seen: dict[str, Any] = {}
        for address, hotline in value.items():
            key = address.lower() if isinstance(address, str) else address
            if key in seen and seen[key] != hotline:
                raise ValueError(f"{address!r} is given twice for different hotlines")
            seen[key] = hotline
        return seen

    def hotline_of(self, address: str) -> str | None:
        """The hotline an inbound address belongs to (any letter case), or None."""
        return self.addresses.get(address.lower())

    def address_of(self, hotline_id: str) -> str | None:
        """The hotline's first inbound address: the From of its replies."""
        return next((a for a, h in self.addresses.items() if h == hotline_id), None)


class SmsInboundChannel(_Section):
    """Inbound texts POSTed by the SMS gateway's bridge to
    ``/channels/sms/inbound`` (JSON, signed with ``secret``: docs/channels.md).

    ``numbers`` maps each of the hotlines' SMS numbers (the ``to`` of a text,
    E.164 or national form) to its hotline.
    """

    enabled: bool = False
    # HMAC-SHA256 key shared with the bridge (masked where the config is shown).
    secret: Secret | None = None
    numbers: dict[Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")], _HotlineId] = {}
    # A request signed longer ago (or later) than this is refused as a replay;
    # inside it, the message id makes a second copy a no-op.
    window_seconds: int = Field(300, ge=30, le=3600)
    max_body_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)

    def hotline_of(self, number: str) -> str | None:
        """The hotline whose SMS number ``number`` is (any usual spelling), or None."""
        wanted = _digits(number)
        return next((h for n, h in self.numbers.items() if _digits(n) == wanted), None)


class ZaloAccount(_Section):
    """One Zalo official account (OA) of a hotline, linked to ``channels.zalo.app_id``."""

    oa_id: Annotated[str, Field(pattern=r"^[0-9]{1,32}$")]
    hotline: _HotlineId
    # The OA secret key (not the app's secret): it signs the webhook's events.
    secret: Secret
    # The OA access token the message API wants in its ``access_token`` header.
    token: Token


class ZaloChannel(_Section):
    """The Zalo official account's webhook ``/channels/zalo/webhook`` and the OA
    message API (docs/channels.md cites Zalo's documentation)."""

    enabled: bool = False
    app_id: Annotated[str, Field(pattern=r"^[0-9]{1,32}$")] | None = None
    accounts: list[ZaloAccount] = []
    # Where the OA message API lives; a test points it at its local stand-in.
    api_base_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] = (
        "https://openapi.zalo.me"
    )
    # Hosts the webhook may download a citizen's image from (exact names): a URL
    # in an event naming any other host is never fetched (no SSRF through us).
    media_hosts: list[Host] = []
    window_seconds: int = Field(300, ge=30, le=3600)
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    timeout_seconds: float = Field(10.0, gt=0, le=60)

    def account_of_oa(self, oa_id: str) -> ZaloAccount | None:
        return next((a for a in self.accounts if a.oa_id == oa_id), None)

    def account_of_hotline(self, hotline_id: str) -> ZaloAccount | None:
        return next((a for a in self.accounts if a.hotline == hotline_id), None)


class Open311Service(_Section):
    """How one case topic is offered as a GeoReport service: what an app shows
    next to the topic's name (all optional)."""

    description: SafeTitle = ""
    keywords: list[SafeTitle] = []
    group: SafeTitle = ""


class Open311Channel(_Section):
    """GeoReport v2 under ``/open311/v2/`` (docs/channels.md, "Open311"). Apps
    post with an API key an administrator issued (``hotline open311-keys``)."""

    enabled: bool = False
    # The case topics offered as services; None: every topic of ``cases.topics``.
    topics: list[TopicId] | None = None
    services: dict[TopicId, Open311Service] = {}
    # POST requests per API key per minute (an app's whole user base shares it).
    requests_per_minute: int = Field(60, ge=1, le=1_000_000)
    # GETs per client address per minute (no key: the lists are public).
    reads_per_minute: int = Field(600, ge=1, le=1_000_000)
    # A request's body at most (a photo or short video posted as ``media``).
    max_request_bytes: int = Field(20 * 1024 * 1024, ge=4096, le=200 * 1024 * 1024)
    # Returned as ``service_notice`` with every new request.
    service_notice: SafeTitle = "Đường dây nóng đã tiếp nhận phản ánh; theo dõi bằng mã phản ánh."
    # The address apps reach the server at, for discovery's endpoint URL
    # ("https://hotline.example.gov.vn"); None: the Host the request named.
    public_url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+$")] | None = None


class AttachmentLimits(_Section):
    """What the intake accepts as photos, videos and PDFs, whatever the channel
    (ivr/intake/attachments.py). Sizes are of the file as sent."""

    image_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    video_max_bytes: int = Field(50 * 1024 * 1024, ge=1024, le=2 * 1024 * 1024 * 1024)
    pdf_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    max_per_message: int = Field(5, ge=0, le=50)
    # Pixels an image may decode to: a small file that expands to gigabytes of
    # pixels (a decompression bomb) is refused before it is decoded.
    max_image_pixels: int = Field(40_000_000, ge=10_000, le=400_000_000)
    thumbnail_pixels: int = Field(320, ge=32, le=2048)  # the longer side


class ChannelsSection(_Section):
    attachments: AttachmentLimits = AttachmentLimits()
    web_form: WebFormChannel = WebFormChannel()
    email: EmailChannel = EmailChannel()
    sms: SmsInboundChannel = SmsInboundChannel()
    zalo: ZaloChannel = ZaloChannel()
    open311: Open311Channel = Open311Channel()


def open311_channel_problems(config: Any) -> list[tuple[FieldPath, str]]:
    """Cross-section checks of ``channels.open311`` (called by
    :func:`ivr.config.references.find_reference_problems`): the topics it offers
    and describes are topics of ``cases.topics``."""
    section: Open311Channel = config.channels.open311
    topics = {topic.code for topic in config.cases.topics}
    known = ", ".join(sorted(topics))
    problems: list[tuple[FieldPath, str]] = []
    for index, code in enumerate(section.topics or ()):
        if code not in topics:
            problems.append(
                (("channels", "open311", "topics", index),
                 f"unknown topic {code!r} (known: {known})")
            )  # fmt: skip
    for code in section.services:
        if code not in topics:
            problems.append(
                (("channels", "open311", "services", code),
                 f"unknown topic {code!r} (known: {known})")
            )  # fmt: skip
    return problems


def email_channel_problems(config: Any) -> list[tuple[FieldPath, str]]:
    """Cross-section checks of ``channels.email`` (called by
    :func:`ivr.config.references.find_reference_problems`): each address names a
    known hotline, and replies need outgoing email."""
    section: EmailChannel = config.channels.email
    hotline_ids = {hotline.id for hotline in config.hotlines}
    problems: list[tuple[FieldPath, str]] = []
    for address, hotline_id in section.addresses.items():
        if hotline_id not in hotline_ids:
            known = ", ".join(sorted(hotline_ids))
            problems.append(
                (("channels", "email", "addresses", address),
                 f"unknown hotline {hotline_id!r} (known: {known})")
            )  # fmt: skip
    if section.enabled and not section.addresses:
        problems.append(
            (("channels", "email", "addresses"), "give the hotlines' inbound addresses")
        )
    if section.enabled and not config.email.enabled:
        problems.append(
            (("channels", "email", "enabled"),
             "answers to mail go out by SMTP: set email.enabled and its server too")
        )  # fmt: skip
    return problems


def _digits(number: str) -> str:
    """A number's national digits: ``+84912…``, ``84912…`` and ``0912…`` alike."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if digits.startswith("84") and len(digits) >= 11:
        return digits[2:]
    return digits.removeprefix("0")


def sms_zalo_channel_problems(config: Any) -> list[tuple[FieldPath, str]]:
    """Cross-section checks of ``channels.sms`` and ``channels.zalo`` (called by
    :func:`ivr.config.references.find_reference_problems`): known hotlines, and
    what an enabled channel cannot work without."""
    hotline_ids = {hotline.id for hotline in config.hotlines}
    known = ", ".join(sorted(hotline_ids))
    problems: list[tuple[FieldPath, str]] = []
    sms: SmsInboundChannel = config.channels.sms
    for number, hotline_id in sms.numbers.items():
        if hotline_id not in hotline_ids:
            problems.append(
                (("channels", "sms", "numbers", number),
                 f"unknown hotline {hotline_id!r} (known: {known})")
            )  # fmt: skip
    if sms.enabled and sms.secret is None:
        problems.append((("channels", "sms", "secret"), "the bridge's shared secret is needed"))
    if sms.enabled and not sms.numbers:
        problems.append((("channels", "sms", "numbers"), "give the hotlines' SMS numbers"))
    zalo: ZaloChannel = config.channels.zalo
    seen: set[str] = set()
    for index, account in enumerate(zalo.accounts):
        if account.hotline not in hotline_ids:
            problems.append(
                (("channels", "zalo", "accounts", index, "hotline"),
                 f"unknown hotline {account.hotline!r} (known: {known})")
            )  # fmt: skip
        if account.oa_id in seen:
            problems.append(
                (("channels", "zalo", "accounts", index, "oa_id"), "this OA is listed twice")
            )
        seen.add(account.oa_id)
    if zalo.enabled and zalo.app_id is None:
        problems.append((("channels", "zalo", "app_id"), "the Zalo app's id is needed"))
    if zalo.enabled and not zalo.accounts:
        problems.append((("channels", "zalo", "accounts"), "give the hotlines' official accounts"))
    return problems
