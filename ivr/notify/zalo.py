"""Replies to citizens on Zalo: the OA message API's customer-service message.

:class:`ZaloReplySender` is the :class:`ivr.intake.types.ReplySender` of
:attr:`Channel.ZALO`: the intake's reply dispatcher hands it an outbound row
(the acknowledgement, an agent's answer) and records what it returns or
raises. The API's address is ``channels.zalo.api_base_url`` (a test points it
at ``tests/rig/zalo_api.py``); the OA is the one of the case's hotline, its
access token in the ``access_token`` header as Zalo's documentation says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp

from ivr.config.channels import ZaloChannel
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel
from ivr.intake.types import OutgoingReply
from ivr.notify.zalo_payloads import CS_MESSAGE_PATH, ZaloApiError, cs_message, sent_message_id

logger = logging.getLogger(__name__)


class ZaloReplySender:
    """Delivers a reply as an OA customer-service text; raises on any failure
    (no OA for the hotline, HTTP error, Zalo's error number) so the
    dispatcher records it on the row."""

    channel = Channel.ZALO

    def __init__(self, config: HotlineConfig | ConfigSource | Callable[[], ZaloChannel]) -> None:
        if callable(config) and not isinstance(config, ConfigSource):
            self._section = config
        else:
            source = ConfigSource.of(config)
            # Read at each send: a config applied while running is used at once.
            self._section = lambda: source.current.channels.zalo

    async def send(self, reply: OutgoingReply) -> str | None:
        section = self._section()
        account = section.account_of_hotline(reply.hotline_id)
        if account is None:
            raise ZaloApiError(-1, f"no Zalo official account for hotline {reply.hotline_id!r}")
        url = section.api_base_url.rstrip("/") + CS_MESSAGE_PATH
        # A chat has no subject line (the email's "[Mã số …] …"): the text says
        # which case it is about, once.
        text = reply.text
        if reply.case_code not in text:
            text = f"Phản ánh mã số {reply.case_code}: {text}"
        timeout = aiohttp.ClientTimeout(total=section.timeout_seconds)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(
                url,
                json=cs_message(reply.to, text),
                headers={"access_token": account.token},
                allow_redirects=False,
            ) as response,
        ):
            if response.status != 200:
                raise ZaloApiError(-1, f"HTTP {response.status} from the message API")
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                raise ZaloApiError(-1, "the message API's answer is not JSON") from None
        message_id = sent_message_id(answer)
        logger.info("Zalo reply %s of case %s sent (%s)", reply.message_id, reply.case_code,
                    message_id)  # fmt: skip
        return message_id
