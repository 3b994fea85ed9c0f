"""Replace a file in one step, with the mode it must have from its first byte.

Readers (Asterisk reloading, a second ``hotline`` process) see the old file or
the new one, never half of one; a file holding secrets is never readable by
others, not even for the moment between writing and ``chmod``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o600, *, sync: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same
    folder (created 0600 by :func:`tempfile.mkstemp`), set ``mode``, and rename
    it over ``path``. ``sync`` flushes it to disk first (config and secrets)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        if mode != 0o600:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
