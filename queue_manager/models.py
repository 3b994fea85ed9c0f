"""Tables of queue and agent statistics (see issue 4)."""

from __future__ import annotations
