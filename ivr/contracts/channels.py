"""How a citizen reached the hotline, and how we reach them back (issue 14).

``cases.channel`` and ``case_messages.channel`` hold these values; the console,
the statistics and the reply dispatcher key on them. Spelled once, here.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"  # a call answered by an agent or routed by the IVR
    VOICEMAIL = "voicemail"  # a message left on the IVR
    SMS = "sms"  # inbound text through the SMS gateway's bridge
    EMAIL = "email"  # mail received by the SMTP receiver
    ZALO = "zalo"  # a message to the hotline's Zalo official account
    WEB = "web"  # the public web form
    OPEN311 = "open311"  # an app posting GeoReport v2 requests


# Channels whose cases the agents work from the console's queue of written
# work (not from a call).
WRITTEN_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.ZALO, Channel.WEB, Channel.OPEN311)


class ContactKind(StrEnum):
    """One way to reach a citizen (``citizen_contacts.kind``)."""

    PHONE = "phone"  # E.164, as ivr.phone normalises it
    EMAIL = "email"  # lower-cased address
    ZALO = "zalo"  # the Zalo user id the OA sees (user_id_by_app)


class MessageDirection(StrEnum):
    INBOUND = "in"  # from the citizen
    OUTBOUND = "out"  # to the citizen
