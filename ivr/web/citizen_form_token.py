"""The public web form's token: signed, dated, bound to a hotline; its random
part is the submission's idempotency key (see ivr/web/citizen_form.py for why a
token and not the console's CSRF check)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time


class FormTokens:
    """``nonce.issued.mac``: the nonce is the idempotency key, the MAC (keyed by
    the app's secret, bound to the hotline) says we issued it, ``issued``
    dates the page."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"hotline report form\0" + key).digest()

    def _mac(self, hotline_id: str, nonce: str, issued: int) -> str:
        payload = f"{hotline_id}\0{nonce}\0{issued}".encode()
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode("ascii")

    def issue(self, hotline_id: str, now: float | None = None) -> str:
        nonce = secrets.token_urlsafe(18)
        issued = int(time.time() if now is None else now)
        return f"{nonce}.{issued}.{self._mac(hotline_id, nonce, issued)}"

    def check(
        self, token: str, hotline_id: str, max_age: float, now: float | None = None
    ) -> str | None:
        """The nonce of a good, fresh token for this hotline; None otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        nonce, issued_text, mac = parts
        issued = int(issued_text)
        if not hmac.compare_digest(mac.encode(), self._mac(hotline_id, nonce, issued).encode()):
            return None
        age = (time.time() if now is None else now) - issued
        if age > max_age or age < -300:  # a little clock skew between processes
            return None
        return nonce
