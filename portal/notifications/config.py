"""Reading the notification settings (portal/settings.py calls these; they read no model).

Every URL here may carry a secret (Slack's incoming webhook is one; a webhook URL may hold a
token), so no message names more than the setting: never the value.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from portal.env import SettingError

SMTP_SCHEMES = {"smtp": 25, "smtp+tls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    """EMAIL_URL, parsed. `smtp`: plain; `smtp+tls`: STARTTLS, required; `smtps`: TLS from the start."""

    scheme: str
    host: str
    port: int
    username: str
    password: str

    def __repr__(self) -> str:  # settings get printed (diffsettings, debug pages): not the password
        return f"SmtpServer({self.scheme}://{self.host}:{self.port}, user={self.username!r})"


def http_url(name: str, value: str) -> str:
    """An http(s) URL with a host, or '' when unset."""
    value = value.strip()
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(f"{name} must be an http:// or https:// URL with a host")
    return value


def base_url(value: str) -> str:
    """EPHEMERA_BASE_URL: where people open the portal; deep links are built on it."""
    value = http_url("EPHEMERA_BASE_URL", value)
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingError("EPHEMERA_BASE_URL must be the portal's address only, e.g. https://ephemera.example.com")
    return value.rstrip("/")


def smtp_server(value: str) -> SmtpServer | None:
    value = value.strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise SettingError("EMAIL_URL must be smtp://, smtp+tls:// or smtps:// with a host, e.g. smtp+tls://user:pass@mail.example.com:587")
    try:
        port = parts.port or SMTP_SCHEMES[parts.scheme]
    except ValueError:
        raise SettingError("EMAIL_URL has a port that is not a number") from None
    return SmtpServer(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
    )


def check(*, base: str, webhook_url: str, webhook_secret: str, slack_url: str, smtp: SmtpServer | None, email_from: str) -> None:
    """The settings that only make sense together."""
    if webhook_url and not webhook_secret:
        raise SettingError("EPHEMERA_NOTIFY_WEBHOOK_SECRET is required with EPHEMERA_NOTIFY_WEBHOOK_URL (receivers check the signature)")
    if smtp is not None and "@" not in email_from:
        raise SettingError("EPHEMERA_EMAIL_FROM (an address, e.g. ephemera@example.com) is required with EMAIL_URL")
    if (webhook_url or slack_url or smtp is not None) and not base:
        raise SettingError("EPHEMERA_BASE_URL (e.g. https://ephemera.example.com) is required when a notification channel is set: every message links to the portal")
