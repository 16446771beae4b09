"""Notification settings: a channel without what it needs stops start-up naming the setting; secrets as NAME_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.portal.test_settings import start

HOOK = {"EPHEMERA_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/in", "EPHEMERA_NOTIFY_WEBHOOK_SECRET": "s"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (HOOK, "EPHEMERA_BASE_URL (e.g. https://ephemera.example.com) is required when a notification channel is set"),
        ({"EPHEMERA_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}, "EPHEMERA_BASE_URL"),
        ({"EMAIL_URL": "smtp://mail", "EPHEMERA_EMAIL_FROM": "e@example.com"}, "EPHEMERA_BASE_URL"),
        ({"EPHEMERA_BASE_URL": "https://e.example.com", "EPHEMERA_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/in"},
         "EPHEMERA_NOTIFY_WEBHOOK_SECRET is required"),
        ({"EPHEMERA_BASE_URL": "https://e.example.com", "EMAIL_URL": "smtp://mail"}, "EPHEMERA_EMAIL_FROM (an address"),
        ({"EPHEMERA_BASE_URL": "https://e.example.com", "EMAIL_URL": "imap://mail", "EPHEMERA_EMAIL_FROM": "e@example.com"},
         "EMAIL_URL must be smtp://, smtp+tls:// or smtps://"),
        ({"EPHEMERA_BASE_URL": "ftp://e.example.com"}, "EPHEMERA_BASE_URL must be an http:// or https:// URL"),
        ({"EPHEMERA_BASE_URL": "https://e.example.com/?next=x"}, "EPHEMERA_BASE_URL must be the portal's address only"),
        ({"EPHEMERA_BASE_URL": "https://e.example.com", "EPHEMERA_SLACK_WEBHOOK_URL": "file:///etc/passwd"},
         "EPHEMERA_SLACK_WEBHOOK_URL must be an http:// or https:// URL"),
        ({"EPHEMERA_NOTIFY_TIMEOUT_SECONDS": "0"}, "EPHEMERA_NOTIFY_TIMEOUT_SECONDS=0 is below the minimum 1"),
    ],
)
def test_it_refuses_a_channel_without_what_it_needs(env: dict[str, str], message: str) -> None:
    result = start({"EPHEMERA_DEMO": "1", **env})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


def test_a_bad_setting_never_shows_its_secret_value() -> None:
    result = start({"EPHEMERA_DEMO": "1", "EPHEMERA_BASE_URL": "https://e.example.com",
                    "EPHEMERA_SLACK_WEBHOOK_URL": "gopher://hooks.slack.com/services/T0/B0/SECRETPART"})
    assert result.returncode != 0 and "SECRETPART" not in result.stderr


def test_it_reads_every_channel_and_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("webhook-secret-from-file\n")
    (tmp_path / "slack").write_text("https://hooks.slack.com/services/T0/B0/abc\n")
    (tmp_path / "email").write_text("smtps://u:p%40ss@mail.example.com\n")
    result = start({
        "EPHEMERA_DEMO": "1", "EPHEMERA_BASE_URL": "https://ephemera.example.com/",
        "EPHEMERA_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/in",
        "EPHEMERA_NOTIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "secret"),
        "EPHEMERA_SLACK_WEBHOOK_URL_FILE": str(tmp_path / "slack"),
        "EMAIL_URL_FILE": str(tmp_path / "email"), "EPHEMERA_EMAIL_FROM": "Ephemera <ephemera@example.com>",
    }, probe="EPHEMERA_BASE_URL,EPHEMERA_NOTIFY_WEBHOOK_SECRET,EPHEMERA_SLACK_WEBHOOK_URL,EPHEMERA_EMAIL")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "'https://ephemera.example.com'" in out and "webhook-secret-from-file" in out and "T0/B0/abc" in out
    assert "smtps://mail.example.com:465" in out and "p@ss" not in out  # the password is kept out of repr()
