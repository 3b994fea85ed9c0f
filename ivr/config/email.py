"""Config section for outgoing email (issue 13): the SMTP server that carries
the notices to responsible units, the escalations to supervisors and, later,
answers to citizens.

Every field has a default and email is off by default, so a config without an
``email`` section stays valid. An address is one plain ``local@domain`` in
ASCII: it lands in an SMTP envelope and a mail header, where a line break, a
comma or angle brackets would add recipients or headers.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ivr.config.safe_text import Host, SafePath, SafeTitle, check_host

# RFC 5322 dot-atom local part (no quoted strings, no comments): the characters
# a real mailbox uses, none of which ends a header or separates addresses.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
ADDRESS_MAX = 254  # RFC 5321's limit on a forward path
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def check_email_address(text: str) -> str:
    """One mailbox ``local@domain`` (ASCII; an internationalised domain in its
    ``xn--`` form), nothing that could add a header or a recipient."""
    if _CONTROL.search(text):
        raise ValueError("an email address may not hold line breaks or control characters")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("expected an email address local@domain")
    if len(text) > ADDRESS_MAX or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise ValueError(f"{text!r} is not a plain email address local@domain")
    try:
        check_host(domain)
    except ValueError:
        raise ValueError(f"{text!r}: {domain!r} is not a mail domain") from None
    if "." not in domain.strip("."):
        raise ValueError(f"{text!r}: the domain needs a dot (example.gov.vn)")
    return text


def check_smtp_credential(text: str) -> str:
    """A user name or password for SMTP AUTH: printable ASCII (``smtplib``
    encodes both as ASCII), no line breaks, which would end the AUTH command."""
    if _CONTROL.search(text):
        raise ValueError("line breaks and control characters are not allowed")
    if not text.isascii():
        raise ValueError("only ASCII characters (letters without accents, digits, symbols)")
    return text


EmailAddress = Annotated[
    str, Field(min_length=3, max_length=ADDRESS_MAX), AfterValidator(check_email_address)
]
SmtpUser = Annotated[
    str, Field(min_length=1, max_length=256), AfterValidator(check_smtp_credential)
]
# Not the restricted :data:`~ivr.config.safe_text.Secret` alphabet: this one never
# reaches an Asterisk file, and SMTP providers hand out passwords with any
# printable ASCII character. The field name ``password`` is what masks it in the
# console's editor and hides it from error messages (safe_text.SECRET_FIELDS).
SmtpPassword = Annotated[
    str, Field(min_length=1, max_length=512), AfterValidator(check_smtp_credential)
]


class EmailSection(BaseModel):
    """The SMTP server mail goes through, and the outbox that keeps mail the
    server did not take (see ivr/notify/email.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: Host = "localhost"
    # None: the usual port for ``security`` (25, 587 for STARTTLS, 465 for TLS).
    port: int | None = Field(None, ge=1, le=65535)
    # ``tls``: TLS from the first byte (SMTPS); ``starttls``: plain, then upgraded
    # before anything else is said (refused if the server cannot); ``none``: a
    # relay on this machine or a trusted network.
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: SmtpUser | None = None
    password: SmtpPassword | None = Field(None, repr=False, validate_default=True)
    from_address: EmailAddress | None = Field(None, validate_default=True)
    from_name: SafeTitle = "Đường dây nóng"
    reply_to: EmailAddress | None = None
    timeout_seconds: float = Field(15.0, gt=0, le=300)
    # The server's certificate (starttls, tls) is checked against this CA file
    # (PEM; relative to the config file) or, when None, the system's CAs, and
    # must name ``host``. ``verify_certificate: false`` turns the check off: only
    # for a relay on this machine, whose certificate cannot name it.
    ca_file: SafePath | None = None
    verify_certificate: bool = True
    # Mail the server did not take waits here (JSON lines) and is retried with
    # back-off: the first retry after retry_first_seconds, then twice as long
    # each time up to retry_max_seconds, for give_up_hours.
    outbox_path: SafePath = Path("../var/email-outbox.jsonl")
    retry_first_seconds: float = Field(60.0, ge=1, le=86400)
    retry_max_seconds: float = Field(3600.0, ge=1, le=86400)
    give_up_hours: float = Field(72.0, gt=0, le=24 * 60)

    @field_validator("password")
    @classmethod
    def _credentials_in_pairs_and_not_in_clear(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        username = info.data.get("username")
        if (value is None) != (username is None):
            raise ValueError("username and password go together: give both or neither")
        if value is not None and info.data.get("security") == "none":
            host = info.data.get("host")
            if host is not None and not _is_loopback(host):
                # The password would cross the network in clear text.
                raise ValueError(
                    f"not sent in clear to {host}: use security: starttls or tls "
                    "(security: none with a password is only for a relay on this machine)"
                )
        return value

    @field_validator("from_address")
    @classmethod
    def _enabled_needs_a_sender(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("enabled"):
            raise ValueError("email is enabled: give the address mail is sent from")
        return value

    @field_validator("verify_certificate")
    @classmethod
    def _verified_beyond_this_machine(cls, value: bool, info: ValidationInfo) -> bool:
        host = info.data.get("host")
        if not value and host is not None and not _is_loopback(host):
            # Without the check anyone on the path may pose as the server and
            # read the citizens' mail and the login.
            raise ValueError(
                f"the certificate of {host} must be checked: give ca_file for a private CA "
                "(verify_certificate: false is only for a relay on this machine)"
            )
        return value

    @property
    def smtp_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
