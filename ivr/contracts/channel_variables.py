"""Names of the channel variables shared by the dialplan, the AGI handlers, the
fallback AGI script and the queue manager's call backs.

The one place an ``HL_*`` name is spelled: :mod:`ivr.asterisk.render` writes
them into the dialplan, :mod:`ivr.agi.server` sets and reads them,
:mod:`queue_manager.callbacks` passes them to Originate, and
``agi_scripts/hotline_fallback.py`` repeats the few it needs (it runs
standalone; ``tests/test_contracts.py`` keeps its copies equal to these).
"""

from __future__ import annotations

ROUTE = "HL_ROUTE"  # dial | queue | voicemail | hangup | failure | callback
QUEUE = "HL_QUEUE"
# The dial plan of a "dial" route in one variable (one AGI round trip):
# "<dial string>|<ring seconds>|<label>" per target, targets joined by "^".
TARGETS = "HL_TARGETS"
TARGET = "HL_TARGET"  # set by the dialplan: the target being rung now
TARGET_SEPARATOR = "^"
FIELD_SEPARATOR = "|"
FINAL = "HL_FINAL"  # where a dial route ends when nobody answers
ANSWERED = "HL_ANSWERED"  # set by the dialplan: label of the target that answered
ANSWER_EPOCH = "HL_ANSWER_EPOCH"  # set on answer by [hotline-answered]: epoch seconds.ms
STEP = "HL_STEP"
REC_BASE = "HL_REC_BASE"  # recordings path prefix: <dir>/<date>/<uniqueid>
CASE_CODE = "HL_CASE_CODE"  # set by voicemail-saved: the case opened for the message
# Set by the console's Originate into [hotline-spy]: ChanSpy's options (w, B)
# and the exact channel to spy on (a prefix match on PJSIP/<phone> would also
# catch PJSIP/<phone>0…, e.g. dtv-1 inside dtv-10).
SPY_OPTS = "HL_SPY_OPTS"
SPY_CHANNEL = "HL_SPY_CHANNEL"
CALLBACK = "HL_CALLBACK"  # "1" once a call back was promised
QUEUE_JOINED = "HL_QUEUE_JOINED"  # epoch when the caller joined the queue

# Set by the dialplan itself ([hotline-inbound] or [globals]).
AGI_URL = "HL_AGI"  # global: agi://host:port of the FastAGI server
MAXWAIT_PREFIX = "HL_MAXWAIT_"  # global per queue: HL_MAXWAIT_<queue id>
DIALED = "HL_DIALED"  # the hotline number the citizen dialled
HOTLINE = "HL_HOTLINE"  # the hotline's id
FAILURE_QUEUE = "HL_FAILURE_QUEUE"  # the queue of the "failure" branch
TARGET_INDEX = "HL_I"  # [hotline-route] dial: the target being tried, from 1
# "1" once the classic fallback script routed the call: its hangup goes to the
# call spool (the server never saw the call), see agi_scripts/hotline_fallback.py.
FALLBACK = "HL_FALLBACK"

# Set by the queue manager's Originate of a call back into [hotline-callback].
CALLBACK_ID = "HL_CALLBACK_ID"
CALLBACK_NUMBER = "HL_CALLBACK_NUMBER"

# HL_ROUTE values besides the flow's route kinds (ivr.contracts.statuses.RouteKind).
FAILURE_ROUTE = "failure"  # the one "something broke" branch of the dialplan
CALLBACK_ROUTE = "callback"  # a call back was promised; the caller left the queue
