"""Replies to citizens who wrote by SMS (issue 14): the
:class:`~ivr.intake.types.ReplySender` of :attr:`Channel.SMS`.

An agent's reply from the case page is an outbound row of the case's thread;
the reply dispatcher hands it here, and it leaves through the same SMS gateway
as every other text to citizens (``sms:`` in the config, read at each send so
a config applied while running is used at once), from the case's hotline's
sender name (``hotlines[].sms_sender``). One attempt per :meth:`send`: the
dispatcher keeps the row pending, retries it and records the gateway's error
on it, where staff see it in the thread.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.cases.service import SMS_TEXT_LIMIT
from ivr.cases.sms import OutgoingSms, SmsGateway, gateway_from_config
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel
from ivr.db.models import utc_now
from ivr.intake.types import OutgoingReply

logger = logging.getLogger(__name__)


class SmsReplySender:
    channel = Channel.SMS

    def __init__(self, source: ConfigSource, gateway: SmsGateway | None = None) -> None:
        self._source = source
        self._gateway = gateway  # a fixed gateway (tests); None: from the config at each send

    async def send(self, reply: OutgoingReply) -> str | None:
        """Deliver one reply or raise (the gateway's error); SMS gateways give no id."""
        config = self._source.current
        gateway = self._gateway or gateway_from_config(config)
        hotline = config.hotline(reply.hotline_id)
        message = OutgoingSms(
            to_number=reply.to,
            text=reply.text[:SMS_TEXT_LIMIT],
            purpose="reply",
            case_code=reply.case_code,
            created_at=utc_now(),
            sender=(hotline.sms_sender or "") if hotline is not None else "",
        )
        # The gateways are synchronous (an HTTP call or a file append).
        await asyncio.to_thread(gateway.send, message)
        logger.info("reply %s of case %s sent by SMS", reply.message_id, reply.case_code)
        return None
