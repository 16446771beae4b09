"""Upstream -> browser byte pump with output coalescing and ack-based flow control.

Daphne's `send()` never waits for a slow browser, so without acknowledgements a `yes` flood
would grow this process's memory without bound. The pump counts bytes sent and not yet
acknowledged; above HIGH_WATERMARK it stops reading the attach stream, which pushes back
through TCP to the apiserver and the shell's pty (nothing is lost), and resumes below
LOW_WATERMARK. Input is never blocked, so Ctrl-C reaches the shell during a flood. It also
waits while the session's recording is behind (sessions.recording.live.backlogged), so a
database slower than the shell holds the flood back in the pty instead of in memory here.

What a client can make this process hold is bounded whatever it sends: an ACK of more than
was sent is a protocol error, and before each frame the transport's own queue is checked
(sessions/bridge/transport.py): an honest client never has more queued than the window, so a
client past OUTBOUND_LIMIT is not reading (its ACKs lie) and is dropped, not fed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from portal.kube.attach import STATUS, ChannelStream
from sessions.bridge import protocol
from sessions.bridge.transport import Probe

HIGH_WATERMARK = 1024 * 1024
LOW_WATERMARK = 256 * 1024
# Batch output for a few ms or up to this size; a lone small chunk (an echoed keystroke)
# is sent at once so coalescing adds no latency to typing.
COALESCE_SECONDS = 0.004
COALESCE_BYTES = 64 * 1024
MAX_FRAME = 256 * 1024
BURST_BYTES = 1024  # a flush at least this big means bulk output is flowing
# Queued in the transport, unread by the client: never more than the window for an honest one.
OUTBOUND_LIMIT = HIGH_WATERMARK + 2 * MAX_FRAME


class ClientNotReading(Exception):
    """The client left more output unread than flow control allows (its ACKs lie)."""

Send = Callable[[bytes], Awaitable[None]]


class Pump:
    def __init__(
        self,
        stream: ChannelStream,
        send: Send,
        record: Callable[[bytes], None],
        *,
        unacked: int = 0,
        high: int = HIGH_WATERMARK,
        low: int = LOW_WATERMARK,
        outbound: Probe | None = None,
        outbound_limit: int = OUTBOUND_LIMIT,
        hold: Callable[[], Awaitable[Any] | None] | None = None,
    ) -> None:
        self.stream = stream
        self._send = send
        self._record = record
        self.high = high
        self.low = low
        self._outbound = outbound
        self._outbound_limit = outbound_limit
        # Returns something to await while the recorder is behind (read no more until it has
        # caught up), None when it is not: no polling, the pump wakes when a write completes.
        self._hold = hold
        self.unacked = unacked  # bytes sent to the browser, not yet acknowledged
        self.pending = bytearray()  # read from upstream, not yet sent
        self.paused = False
        self.upstream_status: dict | None = None
        self.bytes_out = 0
        self._window = asyncio.Event()
        self._window.set()
        self._data = asyncio.Event()
        self._last_flush_at = 0.0
        self._last_flush_size = 0

    @property
    def buffered(self) -> int:
        """Bytes this process holds or has in flight for the browser: what flow control bounds."""
        return self.unacked + len(self.pending)

    def ack(self, count: int) -> None:
        if count > self.unacked:
            # Honest clients ack what they received; more is a lie that would open the window.
            raise protocol.ProtocolError(f"ACK of {count} bytes, but only {self.unacked} are unacknowledged")
        self.unacked -= count
        if self.paused and self.buffered <= self.low:
            self.paused = False
            self._window.set()

    async def run(self) -> None:
        """Pump until the upstream stream ends (returns) or breaks (raises AttachError)."""
        flusher = asyncio.create_task(self._flush_loop())
        reader = asyncio.create_task(self._read_loop())
        try:
            # Either may end it: the stream ends (reader), or the client is dropped (flusher).
            await asyncio.wait({reader, flusher}, return_when=asyncio.FIRST_COMPLETED)
            if flusher.done():
                flusher.result()  # raises ClientNotReading (or a send error)
            reader.result()
            await self._flush()
        finally:
            for task in (reader, flusher):
                task.cancel()
            await asyncio.gather(reader, flusher, return_exceptions=True)

    async def _read_loop(self) -> None:
        while True:
            if self.buffered >= self.high:
                self.paused = True
                self._window.clear()
                await self._window.wait()
            if self._hold is not None and (behind := self._hold()) is not None:
                await behind
            event = await self.stream.read()
            if event is None:
                return
            if event.channel == STATUS:
                # Attach only reports a Status when the stream is about to end (e.g. the
                # container stopped); keep it for the message shown to the user.
                self.upstream_status = event.status
                continue
            self.pending += event.data
            self._data.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._data.wait()
            since = time.monotonic() - self._last_flush_at
            if self._last_flush_size >= BURST_BYTES and since < COALESCE_SECONDS and len(self.pending) < COALESCE_BYTES:
                await asyncio.sleep(COALESCE_SECONDS - since)
            await self._flush()

    async def _flush(self) -> None:
        while self.pending:
            if self._outbound is not None and self._outbound() > self._outbound_limit:
                raise ClientNotReading(f"{self._outbound()} bytes of output queued unread")
            chunk = bytes(self.pending[:MAX_FRAME])
            del self.pending[:MAX_FRAME]
            self.unacked += len(chunk)
            self.bytes_out += len(chunk)
            self._last_flush_at = time.monotonic()
            self._last_flush_size = len(chunk)
            self._record(chunk)
            await self._send(protocol.output(chunk))
        self._data.clear()
