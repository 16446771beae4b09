"""The terminal websocket's frames, client side (docs/terminal-protocol.md is the contract).

Written from the document, not imported from the portal: the plugin ships on its own, and a
second implementation of the spec is what keeps the spec honest.
"""

from __future__ import annotations

import struct

# client -> server
INPUT = 0x00
RESIZE = 0x04
ACK = 0x06
# server -> client
OUTPUT = 0x01
STATUS = 0x02

MAX_INPUT_FRAME = 64 * 1024  # the document's limit for one INPUT frame; a bigger paste is split
ACK_EVERY = 64 * 1024  # like the browser: ack in batches, far below the server's 1 MiB window
MAX_SIZE = 1000  # cols and rows must each be 1..1000

# Close codes after which reconnecting can't help (everything else: reconnect with backoff).
CLOSE_PROTOCOL = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_NOT_READING = 4408
CLOSE_REPLACED = 4409
CLOSE_GONE = 4410
FINAL_CLOSE_CODES = frozenset(
    {CLOSE_PROTOCOL, CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_NOT_READING, CLOSE_REPLACED, CLOSE_GONE}
)


def input_frames(data: bytes) -> list[bytes]:
    return [bytes([INPUT]) + data[i : i + MAX_INPUT_FRAME] for i in range(0, len(data), MAX_INPUT_FRAME)]


def _clamp(n: int) -> int:
    return max(1, min(MAX_SIZE, n))


def resize(cols: int, rows: int) -> bytes:
    return bytes([RESIZE]) + struct.pack(">HH", _clamp(cols), _clamp(rows))


def ack(count: int) -> bytes:
    return bytes([ACK]) + struct.pack(">I", count)
