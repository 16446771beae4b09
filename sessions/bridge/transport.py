"""How many bytes the server holds for one websocket that the client has not taken yet.

ASGI's `send()` never waits: Daphne hands each message to Twisted, whose transport buffers
whatever the socket won't take. A client that stops reading (or lies in its ACKs) would make
that buffer, and this process, grow without bound. Flow control (sessions/bridge/pump.py)
bounds what an honest client can make us hold; this probe is what bounds a dishonest one: the
bytes queued in the transport are the proof of what the client has not read.

ASGI has no way to ask, so the probe finds Daphne's protocol object behind the `send`
callable (Daphne passes `partial(server.handle_reply, protocol)`; Channels' session
middleware wraps it in a method keeping the original as `real_send`). Under anything else
(the in-process test communicator, another server) `probe_for` returns None and only the ACK
checks apply. tests/e2e/test_memory_attacks.py runs real Daphne, so a change in Daphne or
Channels that breaks the lookup fails there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Probe = Callable[[], int]


def _protocol_behind(send: Any) -> Any:
    for _ in range(8):  # a few wrappers deep at most
        if isinstance(send, functools.partial):
            if send.args and hasattr(send.args[0], "transport"):
                return send.args[0]
            send = send.func
            continue
        owner = getattr(send, "__self__", None)
        inner = getattr(owner, "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def _buffered(transport: Any) -> int:
    """Bytes a Twisted transport (and any TLS layer over it) holds unsent."""
    total = 0
    for _ in range(4):
        if transport is None:
            break
        data = getattr(transport, "dataBuffer", None)
        if data is not None:
            total += len(data) - int(getattr(transport, "offset", 0)) + int(getattr(transport, "_tempDataLen", 0))
        app_buffer = getattr(transport, "_appSendBuffer", None)  # TLSMemoryBIOProtocol before the handshake
        if app_buffer:
            total += sum(len(chunk) for chunk in app_buffer)
        transport = getattr(transport, "transport", None)
    return total


def probe_for(send: Any) -> Probe | None:
    """A cheap callable returning the bytes queued for this connection, or None if unknown."""
    protocol = _protocol_behind(send)
    if protocol is None:
        return None
    return lambda: _buffered(getattr(protocol, "transport", None))
