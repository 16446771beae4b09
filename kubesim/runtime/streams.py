"""The Kubernetes channel protocol over a websocket (what kubelet's wsstream speaks).

Every binary message is one channel byte plus payload: 0 stdin, 1 stdout, 2 stderr,
3 status (metav1.Status JSON), 4 resize ({"Width","Height"}), 255 close (v5: [255, ch]
half-closes input channel ch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V1 = "channel.k8s.io"
PREFERENCE = (V5, V4, V1)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

log = logging.getLogger(__name__)


def choose_protocol(request: web.Request) -> str | None:
    """Our preference wins over the client's order (v5 > v4 > v1); None if none is offered."""
    offered = {p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")}
    for proto in PREFERENCE:
        if proto in offered:
            return proto
    return None


class ChannelStream:
    """One attach or exec websocket."""

    def __init__(self, request: web.Request, *, stdout: bool, stderr: bool) -> None:
        self.request = request
        self.protocol = choose_protocol(request)
        # compress=False: permessage-deflate would cost far more CPU than the terminal bytes are worth.
        self.ws = web.WebSocketResponse(
            protocols=(self.protocol,) if self.protocol else (), compress=False, autoping=True, max_msg_size=16 * 1024 * 1024
        )
        self._channels = {STDOUT} if stdout else set()
        if stderr:
            self._channels.add(STDERR)
        self._transport = request.transport
        self.closed = False

    async def open(self) -> None:
        await self.ws.prepare(self.request)
        # Like kubelet: an empty frame per output channel announces it (clients skip 1-byte frames).
        for channel in sorted(self._channels | {ERROR}):
            await self.ws.send_bytes(bytes((channel,)))

    async def sink(self, channel: int, data: bytes) -> bool:
        """Process output -> client. Awaiting the send is the backpressure; False = drop me."""
        if channel not in self._channels:
            return True
        if self.closed:
            return False
        try:
            await self.ws.send_bytes(bytes((channel,)) + data)
        except Exception:  # closing/aborted transport: this attacher is gone, the process is not
            self.closed = True
            return False
        return True

    async def send_status(self, status: dict[str, Any]) -> None:
        if self.protocol == V1:
            # v1 carries a plain error text on the error channel and nothing on success.
            payload = b"" if status.get("status") == "Success" else str(status.get("message", "")).encode()
            if not payload:
                return
        else:
            payload = json.dumps(status, separators=(",", ":")).encode()
        try:
            await self.ws.send_bytes(bytes((ERROR,)) + payload)
        except Exception:
            self.closed = True

    async def inputs(self) -> AsyncIterator[tuple[int, bytes]]:
        """Client -> us: (channel, payload) until the websocket closes."""
        async for msg in self.ws:
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and msg.data:
                # The kubelet reads both frame types the same way (x/net/websocket's Message
                # codec); the Python client sends a text frame when write_stdin gets a str.
                data: bytes = msg.data if isinstance(msg.data, bytes) else msg.data.encode("utf-8")
                if data[0] == CLOSE and self.protocol != V5:
                    continue  # 255 means nothing before v5
                yield data[0], data[1:]
            elif msg.type == WSMsgType.ERROR:
                break

    async def close(self) -> None:
        self.closed = True
        try:
            await self.ws.close()
        except Exception:
            log.debug("closing a stream failed", exc_info=True)

    def abort(self) -> None:
        """Fault injection: drop the TCP connection without a close frame."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    try:
        size = json.loads(payload)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(command: list[str], code: int) -> dict[str, Any]:
    # kubelet: NonZeroExitCode with the code in a StatusCause whose JSON key is "reason".
    err = f"error executing command [{' '.join(command)}], exit code {code}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {err}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(err: str) -> dict[str, Any]:
    """apierrors.NewInternalError(err), which kubelet sends when an exec cannot even start."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {err}",
        "reason": "InternalError",
        "details": {"causes": [{"message": err}]},
        "code": 500,
    }
