"""Config of the written channels into the case store (issue 14).

One section, ``channels:``, one sub-section per channel, each off by default so
a config without it stays valid. Each channel's engineer owns its class here;
the classes hold only what the file says (validated, file:line:field errors by
the loader like every other section).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebFormChannel(_Section):
    """The public web form ``/report`` and the status page."""

    enabled: bool = False


class EmailChannel(_Section):
    """The SMTP receiver started by ``hotline serve``; replies by SMTP."""

    enabled: bool = False


class SmsInboundChannel(_Section):
    """Inbound texts POSTed by the SMS gateway's bridge (JSON, shared secret)."""

    enabled: bool = False


class ZaloChannel(_Section):
    """The Zalo official account's webhook and message API."""

    enabled: bool = False


class Open311Channel(_Section):
    """GeoReport v2 under ``/open311/v2/``."""

    enabled: bool = False


class ChannelsSection(_Section):
    web_form: WebFormChannel = WebFormChannel()
    email: EmailChannel = EmailChannel()
    sms: SmsInboundChannel = SmsInboundChannel()
    zalo: ZaloChannel = ZaloChannel()
    open311: Open311Channel = Open311Channel()
