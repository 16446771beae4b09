"""LOG_FORMAT=json: one object per line with request id, user and session id; never a secret,
whatever a request carried (Authorization header, password form, cookies) or a message quoted."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from portal.json_logging import REDACTED, JsonFormatter, LogContextFilter, PlainFormatter, scrub
from tests.portal.test_settings import ROOT

FIELDS = {"time", "level", "logger", "message", "request_id", "user", "session_id"}
PASSWORD = "correct-horse-battery-staple-42"  # noqa: S105  (what the test looks for)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The console handler as LOG_FORMAT=json configures it, writing to a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_request_with_a_token_and_a_password_logs_neither(db: Any, json_log: io.StringIO, alice: Any,
                                                             api_client_for: Any) -> None:
    token = api_client_for(alice)._credentials["HTTP_AUTHORIZATION"].split()[1]
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "sessionid-value-that-must-not-leak"
    # A sign-in form without its CSRF token: Django refuses it and logs the request (403).
    resp = client.post("/login/", {"username": "alice", "password": PASSWORD}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert resp.status_code == 403
    # And an unknown address, posted the same way (404, logged with the request too).
    client.post("/no-such-page", {"password": PASSWORD}, HTTP_AUTHORIZATION=f"Bearer {token}")
    # Code that (wrongly) logs what it was sent: the scrubber is the second line of defence.
    logging.getLogger("portal.test").error(
        "request headers %s body %s", {"Authorization": f"Bearer {token}", "Cookie": "sessionid=abcdef123456"},
        f"username=alice&password={PASSWORD}",
    )

    text = json_log.getvalue()
    assert text, "nothing was logged"
    for secret in (token, PASSWORD, "sessionid-value-that-must-not-leak", "abcdef123456"):
        assert secret not in text
    entries = lines(json_log)
    assert any(e["logger"] == "django.security.csrf" and e["status_code"] == 403 for e in entries), entries
    assert any(e["logger"] == "django.request" and "Not Found" in e["message"] for e in entries), entries
    assert all(FIELDS <= set(e) <= FIELDS | {"status_code", "exception", "stack"} for e in entries)
    assert REDACTED in entries[-1]["message"]


def test_each_line_names_its_request_and_user(db: Any, json_log: io.StringIO, alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    resp = client.get("/sessions/00000000-0000-0000-0000-000000000000/")
    assert resp.status_code == 404
    entry = next(e for e in lines(json_log) if e["logger"] == "django.request")
    assert entry["request_id"] == resp["X-Request-ID"] and len(entry["request_id"]) == 16
    assert entry["user"] == "alice"
    assert entry["session_id"] == "00000000-0000-0000-0000-000000000000"
    assert entry["level"] == "WARNING" and entry["time"].endswith("Z")
    # A second request gets an id of its own; the client can't choose one.
    again = client.get("/no-such-page", HTTP_X_REQUEST_ID="chosen-by-the-client")
    assert again["X-Request-ID"] not in (resp["X-Request-ID"], "chosen-by-the-client")


def test_an_exception_is_one_line_with_its_traceback(json_log: io.StringIO) -> None:
    try:
        raise ValueError("connecting to postgres://ephemera:hunter2-db-pass@db:5432/ephemera failed")
    except ValueError:
        logging.getLogger("portal.test").exception("it broke\nsecond line")
    (entry,) = lines(json_log)
    assert "ValueError" in entry["exception"] and "hunter2-db-pass" not in entry["exception"]
    assert entry["message"] == "it broke\nsecond line"  # one JSON line, the newline escaped
    assert (entry["request_id"], entry["user"], entry["session_id"]) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature", "eyJhbGciOiJIUzI1NiJ9"),
        ("token eph_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 used", "eph_AbCdEfGh"),
        ("redis://:redis-password-1@cache:6379/0", "redis-password-1"),
        ("{'username': ['alice'], 'password': ['s3cret-pass-word']}", "s3cret-pass-word"),
        ('{"token": "abc123def456ghi"}', "abc123def456ghi"),
        ("Cookie: csrftoken=csrf-value-123; sessionid=session-value-456", "session-value-456"),
        ("users:\n- name: ephemera\n  user:\n    token: kubeconfig-sa-token-xyz", "kubeconfig-sa-token-xyz"),
        ("client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=", "LS0tLS1CRUdJTi"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
        ("Authorization: Basic YWxpY2U6cGFzc3dvcmQ=", "YWxpY2U6cGFzc3dvcmQ="),
    ],
)
def test_credentials_in_a_message_are_redacted(text: str, secret: str) -> None:
    assert secret not in scrub(text)


def test_ordinary_text_is_left_alone() -> None:
    text = "terminal 1b2c: the cluster closed the terminal stream (pod default/nginx-1, 4096 bytes)"
    assert scrub(text) == text


def test_the_installations_own_secrets_are_redacted_wherever_they_appear(settings: Any) -> None:
    settings.SECRET_KEY = "django-secret-key-value-0123456789"
    settings.EPHEMERA_METRICS_TOKEN = "metrics-token-value-0123456789"
    settings.EPHEMERA_SLACK_WEBHOOK_URL = "https://hooks.slack.example/services/T0/B0/slack-secret-path"
    settings.EPHEMERA_NOTIFY_WEBHOOK_SECRET = "hmac-signing-secret-0123"
    secrets = [settings.SECRET_KEY, settings.EPHEMERA_METRICS_TOKEN, settings.EPHEMERA_SLACK_WEBHOOK_URL,
               settings.EPHEMERA_NOTIFY_WEBHOOK_SECRET]
    out = scrub("configured: " + " ".join(secrets))
    assert not [value for value in secrets if value in out] and "slack-secret-path" not in out


def test_the_plain_format_is_scrubbed_too() -> None:
    record = logging.LogRecord("portal", logging.WARNING, __file__, 1, "sent %s", ("Bearer abcdefghijkl",), None)
    assert "abcdefghijkl" not in PlainFormatter("%(message)s").format(record)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = ("import django, logging, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings'); django.setup(); "
            "logging.getLogger('portal.check').warning('hello %s', 'world')")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "LOG_", "DJANGO_SETTINGS_MODULE"))}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**base, "EPHEMERA_DEMO": "1", "EPHEMERA_VAR_DIR": str(ROOT / "var" / "test-settings"), **env})


def test_log_format_json_is_what_the_settings_configure() -> None:
    result = _run({"LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr[-2000:]
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["message"] == "hello world" and entry["logger"] == "portal.check" and set(entry) == FIELDS


def test_plain_text_is_the_default_and_a_bad_format_stops_start_up() -> None:
    plain = _run({})
    assert plain.returncode == 0 and plain.stderr.strip().endswith("WARNING portal.check hello world"), plain.stderr
    bad = _run({"LOG_FORMAT": "xml"})
    assert bad.returncode != 0 and "LOG_FORMAT='xml' must be plain or json" in bad.stderr
