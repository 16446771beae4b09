"""The ways out: each channel turns one outbox row into one message and sends it, or raises
DeliveryError with a message fit for the admin page (no URL, no secret, no receiver's body
beyond a short printable snippet).

Every attempt runs under a hard deadline (EPHEMERA_NOTIFY_TIMEOUT_SECONDS): a receiver that
accepts the connection and then drips or stalls has its socket shut when the time is up. The
worker's claim on the row outlasts that deadline, so no second worker takes a row that is
still being sent.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import string
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

USER_AGENT = "ephemera-notify/1"
_PRINTABLE = set(string.printable) - set("\r\n\t\x0b\x0c")


class DeliveryError(Exception):
    """This attempt failed; the row is retried later. The message is shown to admins."""


def where(url: str) -> str:
    """A URL's scheme and host only: its path or query may hold a token."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def snippet(raw: bytes, limit: int = 80) -> str:
    text = raw[:limit].decode("utf-8", "replace")
    return "".join(ch if ch in _PRINTABLE else "?" for ch in text).strip()


@contextmanager
def deadline(seconds: float, cut: Callable[[], None]) -> Iterator[None]:
    """Call `cut` (which shuts the attempt's socket) if the block is still running after `seconds`."""
    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict[str, str]) -> str:
    """POST `body` to `url`; return the start of the answer's body on a 2xx, raise DeliveryError otherwise.

    Redirects are not followed: the receiver is exactly the configured URL.
    """
    parts = urllib.parse.urlsplit(url)
    timeout = float(settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with deadline(timeout, lambda: _shut(conn)):
            conn.request("POST", path, body=body, headers=all_headers)
            resp = conn.getresponse()
            answer = resp.read(2048)
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS to {where(url)} failed: {exc.reason or type(exc).__name__}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{where(url)}: {type(exc).__name__} (no answer within {timeout:g} s, or connection refused/cut)") from None
    finally:
        conn.close()
    if not 200 <= resp.status < 300:
        text = snippet(answer)
        raise DeliveryError(f"{where(url)} answered HTTP {resp.status}" + (f": {text}" if text else ""))
    return snippet(answer)
