"""Log records as one JSON object per line (LOG_FORMAT=json), with who and what they were about.

Each line: time, level, logger, message, request_id, user, session_id (null when unknown),
and `exception` (the traceback) and `status_code` when the record has them. Nothing else of
a record is written: Django attaches the whole HttpRequest to `django.request` records
(headers, cookies, the POST body), and a formatter that dumped a record's extras would put
every password and bearer token of a failed request into the log.

What goes in is also scrubbed (both formats, see `scrub`): a message or traceback that
quotes an Authorization header, a URL with a password, a `password=` pair, a PEM key, an
API token or one of this installation's own secrets comes out as `[redacted]`. That is the
second line of defence; the first is that nothing logs those things.

Context comes from contextvars, so it follows a request through asgiref's thread hops and
never leaks into a concurrent one: `RequestLogContextMiddleware` sets it for HTTP requests
(and sends the request id back as X-Request-ID), `bind()` for a websocket connection.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

REDACTED = "[redacted]"

_request: ContextVar[HttpRequest | None] = ContextVar("ephemera_log_request", default=None)
_request_id: ContextVar[str | None] = ContextVar("ephemera_log_request_id", default=None)
_user: ContextVar[str | None] = ContextVar("ephemera_log_user", default=None)
_session_id: ContextVar[str | None] = ContextVar("ephemera_log_session_id", default=None)


def new_request_id() -> str:
    # Ours, never the client's: a request id a client could choose could be made to match
    # another user's lines.
    return secrets.token_hex(8)


class RequestLogContextMiddleware:
    """Request id, user and session id for every line logged while a request is served.
    Early in MIDDLEWARE; the user is read when a line is written, once authentication ran."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        # Also on the request: Django logs a 4xx/5xx after the middleware returned, with the
        # request attached to the record (see LogContextFilter).
        request.log_request_id = request_id  # type: ignore[attr-defined]
        tokens = (_request.set(request), _request_id.set(request_id))
        try:
            response = self.get_response(request)
        finally:
            _request.reset(tokens[0])
            _request_id.reset(tokens[1])
        response["X-Request-ID"] = request_id
        return response


def bind(*, session_id: str | None = None, user: str | None = None) -> str:
    """Context for the lines of a websocket connection (call from its connect(): the values
    hold for the rest of the consumer's task and the tasks it starts). Returns its request id."""
    request_id = "ws-" + new_request_id()
    _request_id.set(request_id)
    _user.set(user or None)
    _session_id.set(session_id)
    return request_id


def _request_user(request: HttpRequest) -> str | None:
    # Never evaluates the lazy user (no database query from inside logging): only a user that
    # authentication already resolved, or that DRF put on the request.
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = request.__dict__.get("_cached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.get_username())


def _request_session_id(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    if "session_id" in match.kwargs:
        return str(match.kwargs["session_id"])
    if (match.url_name or "").startswith("api-session") and "pk" in match.kwargs:
        return str(match.kwargs["pk"])
    return None


class LogContextFilter(logging.Filter):
    """Puts request_id, user and session_id on every record (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = _request.get()
        if request is None and isinstance(getattr(record, "request", None), HttpRequest):
            request = record.request  # type: ignore[attr-defined]  # django.request's own extra
        record.request_id = _request_id.get() or getattr(request, "log_request_id", None)
        record.user = _user.get() or (_request_user(request) if request is not None else None)
        record.session_id = _session_id.get() or (_request_session_id(request) if request is not None else None)
        return True


# --- scrubbing --------------------------------------------------------------------------
# Names of secrets to look for (not secrets themselves).
_SECRET_KEYS = "|".join((
    "password", "passwd", "pwd", "secret", r"secret[_-]?key", "token", r"api[_-]?key", r"access[_-]?token",
    r"refresh[_-]?token", "authorization", "cookie", "set-cookie", "sessionid", "csrftoken", "csrfmiddlewaretoken",
    "client-key-data", "client-certificate-data", "token-data", r"private[_-]?key",
))
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|$)", re.DOTALL), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + REDACTED),
    (re.compile(r"\beph_[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    (re.compile(rf"(?i)\b({_SECRET_KEYS})\b([\"']?\s*[:=]\s*[\[(]?\s*[\"']?)([^\s\"'&,;)\]}}]+)"), r"\1\2" + REDACTED),
]


def _configured_secrets() -> list[str]:
    """This installation's own secret values, wherever they might be quoted."""
    from django.conf import settings

    if not settings.configured:
        return []
    found = [
        getattr(settings, "SECRET_KEY", ""),
        getattr(settings, "EPHEMERA_METRICS_TOKEN", ""),
        getattr(settings, "EPHEMERA_UNMANAGED_WEBHOOK_URL", ""),
        getattr(settings, "EPHEMERA_NOTIFY_WEBHOOK_URL", ""),
        getattr(settings, "EPHEMERA_NOTIFY_WEBHOOK_SECRET", ""),
        getattr(settings, "EPHEMERA_SLACK_WEBHOOK_URL", ""),
        str(settings.DATABASES.get("default", {}).get("PASSWORD") or ""),
    ]
    found = [value for value in found if isinstance(value, str)]
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url and "@" in redis_url:
        found.append(redis_url.split("://", 1)[-1].rsplit("@", 1)[0].split(":", 1)[-1])
    # Short values would redact ordinary words; those are no secrets worth the name anyway.
    return sorted({value for value in found if len(value) >= 8}, key=len, reverse=True)


def scrub(text: str) -> str:
    for value in _configured_secrets():
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class PlainFormatter(logging.Formatter):
    """The plain text format (the default), scrubbed like the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, only the fields named in the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
            "user": getattr(record, "user", None),
            "session_id": getattr(record, "session_id", None),
        }
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            entry["status_code"] = status
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = scrub(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        # ensure_ascii: a control character in a message can never start a line of its own.
        return json.dumps(entry, ensure_ascii=True, default=str)
