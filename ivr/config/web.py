"""Config section for the web console (issue 6).

Every field has a default, so a config without a ``web`` section stays valid.
The signing key is never written in the config file itself: it comes from an
environment variable or a key file (created with mode 0600 on first start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork

from ivr.config.safe_text import Host, SafePath


class WebSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bind: Host = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)  # 0: any free port (tests)
    # The key that signs session cookies: $secret_env if set, else secret_file.
    secret_env: str = Field("HOTLINE_WEB_SECRET", pattern=r"^[A-Z_][A-Z0-9_]*$")
    secret_file: SafePath = Path("../var/web-secret")
    # /metrics (ivr/web/metrics.py): with this variable set, a scraper must send
    # "Authorization: Bearer <its value>" (from any address, loopback included:
    # a reverse proxy on this machine would otherwise make everyone local);
    # unset, /metrics answers direct loopback requests only.
    metrics_token_env: str = Field("HOTLINE_METRICS_TOKEN", pattern=r"^[A-Z_][A-Z0-9_]*$")
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    # Secure cookies are only sent over HTTPS (browsers also allow them on localhost).
    cookie_secure: bool = True
    login_attempts: int = Field(5, ge=1, le=100)  # failed logins per window…
    login_window_seconds: int = Field(300, ge=10, le=86400)  # …per user name and address
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed:
    # behind one, every request comes from the proxy, and the client address
    # in the audit log and the login limiter must be the real one.
    trusted_proxies: list[IPvAnyNetwork] = []
    default_language: Literal["vi", "en"] = "vi"
    # Wallboard alerts.
    alert_longest_wait_seconds: int = Field(120, ge=5, le=7200)
    alert_abandon_percent: float = Field(10.0, ge=0, le=100)
    # Agents hear only the recordings of calls they answered unless this is on.
    agents_hear_all_recordings: bool = False
