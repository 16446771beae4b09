"""Real local receivers for the notification tests: an HTTP server (the webhook and Slack) that
checks signatures and answers what the test says, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

SECRET = "test-webhook-secret-3b1f"  # noqa: S105 (a test secret)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP receiver in a thread. `answers[path]` is a list of statuses used up one per
    request (then 200); `stall` holds every answer until the event is set."""

    url: str
    hits: list[Hit] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    stall: threading.Event | None = None
    got_one: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 15) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


def verify(secret: str, headers: dict[str, str], body: bytes, *, window: int = 300) -> bool:
    """The receiver's check, exactly as docs/notifications.md shows it."""
    timestamp = headers.get("X-Ephemera-Timestamp", "")
    signature = headers.get("X-Ephemera-Signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > window:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()}
            signed = "X-Ephemera-Signature" in headers
            with rec.lock:
                queue = rec.answers.get(self.path, [])
                status = queue.pop(0) if queue else 200
                rec.hits.append(Hit(self.path, headers, body, verify(SECRET, headers, body) if signed else None, status))
            rec.got_one.set()
            if rec.stall is not None:
                rec.stall.wait(30)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver says no\r\n<b>")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["r"]
    if state["r"].stall is not None:
        state["r"].stall.set()
    server.shutdown()
    server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m, (_, rcpts) in zip(self.messages, self.envelopes, strict=True) if address in rcpts]


@dataclass
class Smtp:
    host: str
    port: int
    mailbox: _Mailbox

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Smtp]:
    mailbox = _Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield Smtp("127.0.0.1", port, mailbox)
    controller.stop()


@pytest.fixture
def channels_on(settings: Any, receiver: Receiver, smtp_server: Smtp) -> Receiver:
    """Every channel configured, to the local receivers: /hook (webhook), /slack, the SMTP server."""
    from portal.notifications.config import smtp_server as parse_smtp

    settings.EPHEMERA_BASE_URL = "https://ephemera.example.com"
    settings.EPHEMERA_NOTIFY_WEBHOOK_URL = f"{receiver.url}/hook?token=s3cr3t-in-url"
    settings.EPHEMERA_NOTIFY_WEBHOOK_SECRET = SECRET
    settings.EPHEMERA_SLACK_WEBHOOK_URL = f"{receiver.url}/slack"
    settings.EPHEMERA_EMAIL = parse_smtp(smtp_server.url)
    settings.EPHEMERA_EMAIL_FROM = "Ephemera <ephemera@example.com>"
    settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS = 3
    return receiver


@pytest.fixture
def fast_retries(monkeypatch: Any) -> None:
    from datetime import timedelta

    from portal.notifications import delivery

    monkeypatch.setattr(delivery, "FIRST_RETRY", timedelta(milliseconds=100))
