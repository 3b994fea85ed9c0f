"""The validating gate for config text that reaches Asterisk.

Every string of the config lands somewhere with its own syntax: a line of
``pjsip.conf`` or ``manager.conf`` (``key=value``, ``;`` starts a comment, a
newline starts a new setting), a ``member =>`` line of ``queues.conf`` (fields
split at ``,``), a dialplan line of ``extensions.conf`` (``,`` splits an
application's arguments, ``${...}`` and ``$[...]`` are expanded), an AMI header
(a CR or LF ends it and may start a new action), a quoted ``callerid``. A value
that carries a newline or one of those delimiters changes what the file says:
a newline in ``asterisk.agi.host`` adds a dialplan line (``System()`` is a
shell), a newline in an AMI secret adds ``permit=0.0.0.0/0``.

So each kind of value has one type here, checked when the config is loaded
(errors name file, line and field like every other config error):

- :data:`Host`: a host name or an IPv4/IPv6 literal, nothing else;
- :data:`SafeName`: a person's or a phone's name that lands in a delimited
  position (``member =>`` fields, ``callerid="..."``, AMI ``MemberName``);
- :data:`SafeTitle`: a title or place name shown to people and at most
  written into a comment (commas allowed);
- :data:`Secret`: a secret from an alphabet that is inert in every target;
- :data:`SipUser`, :data:`SipUri`, :data:`DialPrefix`, :data:`SafePath`.

:func:`refuse_line_breaks` is the renderer's own last check (defence in depth:
even a value that bypassed the schema cannot add a line).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

# C0 controls (CR, LF, NUL, TAB…), DEL and the C1 controls, and the Unicode line
# and paragraph separators, which some parsers also take as line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Delimiters of pjsip/queues/manager/extensions.conf and of a quoted callerid.
_NAME_DELIMITERS = frozenset(',;"<>[]|^\\${}')
_TITLE_DELIMITERS = _NAME_DELIMITERS - {","}
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
SECRET_ALPHABET = "A-Za-z0-9._~+/=@%!-"
_SECRET = re.compile(rf"[{SECRET_ALPHABET}]+")
_SIP_USER = re.compile(r"[A-Za-z0-9._~+-]{1,64}")
_SIP_URI = re.compile(r"sips?:(?:(?P<user>[A-Za-z0-9._~+-]{1,64})@)?(?P<host>[^@:\[\]]+|\[[^\]]+\])"
                      r"(?::(?P<port>[0-9]{1,5}))?")  # fmt: skip
_PATH_DELIMITERS = frozenset(',;"<>[]|^\\${}`')

NAME_MAX = 80
TITLE_MAX = 200
SECRET_MIN = 12
SECRET_MAX = 128


class UnsafeValue(ValueError):
    """A rendered value would change the syntax of the file it lands in."""


def _printable(text: str) -> None:
    found = _CONTROL.search(text)
    if found:
        raise ValueError(
            f"control character {found.group()!r} not allowed (no line breaks, tabs or NUL)"
        )


def check_host(text: str) -> str:
    """A host name (RFC 1123) or an IP literal; IPv6 without brackets."""
    _printable(text)
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if (
        len(text) > 253
        or not text
        or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels)
        # All-numeric labels would be a malformed IPv4 address, not a name.
        or labels[-1].isdigit()
    ):
        raise ValueError("expected a host name or an IPv4/IPv6 address")
    return text


def check_name(text: str) -> str:
    """A name that lands in a delimited position of an Asterisk file or header."""
    _refuse_characters(text, _NAME_DELIMITERS, "in a name")
    if text != text.strip():
        raise ValueError("no leading or trailing spaces")
    return text


def _refuse_characters(text: str, delimiters: frozenset[str], where: str) -> None:
    """Printable, and none of the target syntax's delimiters (named in the error)."""
    _printable(text)
    bad = sorted(set(text) & delimiters)
    if bad:
        raise ValueError(f"characters not allowed {where}: {' '.join(bad)}")


def check_title(text: str) -> str:
    """A title or place name: shown to people, at most written into a comment."""
    _refuse_characters(text, _TITLE_DELIMITERS, "here")
    return text


def check_secret(text: str) -> str:
    # The value itself is never repeated in a message (see is_secret_field).
    if not _SECRET.fullmatch(text):
        raise ValueError(f"a secret may only hold the characters {SECRET_ALPHABET}")
    return text


def check_token(text: str) -> str:
    """An opaque credential sent in an HTTP header: printable, no spaces."""
    if _CONTROL.search(text) or " " in text:
        raise ValueError("no spaces or control characters allowed")
    return text


def check_sip_uri(text: str) -> str:
    _printable(text)
    match = _SIP_URI.fullmatch(text)
    if match is None:
        raise ValueError("expected sip:[user@]host[:port] (no parameters, spaces or delimiters)")
    host = match.group("host")
    check_host(host[1:-1] if host.startswith("[") else host)
    if match.group("port") and not 1 <= int(match.group("port")) <= 65535:
        raise ValueError("port out of range")
    return text


def check_path_text(text: str) -> str:
    """A file or folder name written into the dialplan or an Asterisk file."""
    _refuse_characters(text, _PATH_DELIMITERS, "in a path")
    return text


Host = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(check_host)]
SafeName = Annotated[str, Field(max_length=NAME_MAX), AfterValidator(check_name)]
SafeTitle = Annotated[str, Field(max_length=TITLE_MAX), AfterValidator(check_title)]
Secret = Annotated[
    str, Field(min_length=SECRET_MIN, max_length=SECRET_MAX), AfterValidator(check_secret)
]
Token = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(check_token)]
SipUser = Annotated[str, Field(pattern=_SIP_USER.pattern)]
SipUri = Annotated[str, Field(max_length=300), AfterValidator(check_sip_uri)]
DialPrefix = Annotated[str, Field(pattern=r"^[0-9+*#]{0,8}$")]


def _check_path(value: Path) -> Path:
    check_path_text(str(value))
    return value


SafePath = Annotated[Path, AfterValidator(_check_path)]


# Field names whose values are secrets: never shown in an error, the console
# editor or a log.
SECRET_FIELDS = frozenset({"secret", "reload_secret", "token", "password"})


def is_secret_field(path: tuple[str | int, ...]) -> bool:
    """Whether the config field at ``path`` holds a secret (or may embed one)."""
    names = [part for part in path if isinstance(part, str)]
    if not names:
        return False
    return names[-1] in SECRET_FIELDS or tuple(names[-2:]) == ("database", "url")


def refuse_line_breaks(text: str, where: str) -> str:
    """The renderer's last check on one value: no CR, LF or NUL, whatever
    the schema let through. Raises :class:`UnsafeValue` naming ``where``."""
    for bad in ("\r", "\n", "\x00"):
        if bad in text:
            raise UnsafeValue(f"{where}: a line break or NUL would add lines to an Asterisk file")
    return text
