"""Names of the channel variables shared by the AGI handlers and the dialplan.

The dialplan renderer (:mod:`ivr.asterisk.render`) and the fallback AGI script
use these same constants; no variable name is spelled anywhere else.
"""

from __future__ import annotations

ROUTE = "HL_ROUTE"  # dial | queue | voicemail | hangup | failure
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

FAILURE_ROUTE = "failure"  # the one "something broke" branch of the dialplan

# FastAGI script names (agi://host:port/<name>)
ENTRY_SCRIPT = "hotline-entry"
ENDED_SCRIPT = "call-ended"
SURVEY_SCRIPT = "survey"
CALLBACK_REQUESTED_SCRIPT = "callback-requested"
CALLBACK_ANSWERED_SCRIPT = "callback-answered"
CALLBACK = "HL_CALLBACK"  # "1" once a call back was promised
QUEUE_JOINED = "HL_QUEUE_JOINED"  # epoch when the caller joined the queue
VOICEMAIL_SAVED_SCRIPT = "voicemail-saved"
