"""Tables of case records, recordings and transcription jobs (see issue 5)."""

from __future__ import annotations
