"""The terminal websocket's binary protocol: one type byte, then the payload.

See docs/terminal-protocol.md; the browser side is frontend/src/terminal.ts.
"""

from __future__ import annotations

import json
import struct
from typing import Any

# client -> server
INPUT = 0x00  # raw bytes for the shell's stdin
RESIZE = 0x04  # uint16 cols, uint16 rows (big endian)
ACK = 0x06  # uint32 count of output bytes the terminal has processed since the last ack
# server -> client
OUTPUT = 0x01  # raw bytes from the shell (never decoded on the server)
STATUS = 0x02  # UTF-8 JSON object: {"event": ..., "message": ..., ...}

# Application close codes (4000-4999 are ours by RFC 6455).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_REPLACED = 4409  # the same session's terminal was opened elsewhere
CLOSE_GONE = 4410  # the session ended, expired or failed: do not reconnect
CLOSE_UPSTREAM = 4502  # the cluster stream failed: the client may reconnect
CLOSE_PROTOCOL = 4400  # the client broke the protocol
CLOSE_NOT_READING = 4408  # the client let more output pile up unread than flow control allows

MAX_COLS_ROWS = 1000


class ProtocolError(ValueError):
    """A client message that doesn't follow the protocol."""


def output(data: bytes) -> bytes:
    return bytes([OUTPUT]) + data


def status(event: str, message: str = "", **extra: Any) -> bytes:
    return bytes([STATUS]) + json.dumps({"event": event, "message": message, **extra}).encode()


def parse_resize(payload: bytes) -> tuple[int, int]:
    if len(payload) != 4:
        raise ProtocolError("resize carries 4 bytes: uint16 cols, uint16 rows")
    cols, rows = struct.unpack(">HH", payload)
    if not (1 <= cols <= MAX_COLS_ROWS and 1 <= rows <= MAX_COLS_ROWS):
        raise ProtocolError(f"terminal size {cols}x{rows} out of range")
    return cols, rows


def parse_ack(payload: bytes) -> int:
    if len(payload) != 4:
        raise ProtocolError("ack carries 4 bytes: uint32 byte count")
    (count,) = struct.unpack(">I", payload)
    return count


def resize(cols: int, rows: int) -> bytes:
    """Client-side encoder (tests, the benchmark, non-browser clients)."""
    return bytes([RESIZE]) + struct.pack(">HH", cols, rows)


def ack(count: int) -> bytes:
    return bytes([ACK]) + struct.pack(">I", count)


def input_(data: bytes) -> bytes:
    return bytes([INPUT]) + data
