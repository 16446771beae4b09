"""How a recording chunk is stored: raw events, framed and compressed; the asciicast is built on read.

The terminal's output path pays for every byte recorded, so a chunk holds what the terminal
saw as it saw it, with nothing to encode per event: each event is a fixed header (the event's
unix time as a float64, its code byte, its length as a uint32, little-endian) followed by its
bytes (output and input exactly as they crossed the bridge, a resize as "COLSxROWS", a marker's
label as UTF-8). Turning that into asciicast v2 lines (UTF-8 decoding, JSON, times from the
recording's start) happens when a recording is read (`CastRenderer`), which is rare and can
afford it. Stored bytes are exact: output that is not UTF-8 is kept as it was, and only the
.cast export replaces it (with U+FFFD, as the browser terminal showed it).

Formats, per chunk (RecordingChunk.format):
- CAST_ZLIB (1): zlib of asciicast event lines with times already relative: chunks written
  before this module; still read, verified and exported, never written.
- RAW_ZSTD (2): zstd (level 1) of framed raw events. zstd's fastest level is 2-5x cheaper than
  zlib's on terminal output and compresses it as well or better (bench/recorder.py); like
  hashlib, it releases the GIL while it works, so on a second core it costs the terminal's
  event loop nothing.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime

import zstandard

from sessions.recording.cast import event_line, utf8_decoder

CAST_ZLIB = 1
RAW_ZSTD = 2
ZSTD_LEVEL = 1

HEADER = struct.Struct("<dBI")  # unix time, code, length
CODES = {"o": ord("o"), "i": ord("i"), "r": ord("r"), "m": ord("m")}
NAMES = {v: k for k, v in CODES.items()}

Event = tuple[float, str, bytes | str]  # (unix time, code, payload)


class CorruptChunk(Exception):
    """A chunk's bytes do not decode (its digest will not match either)."""


def encode(events: Iterable[Event]) -> bytes:
    """The framed payload of `events` (str payloads are stored as UTF-8)."""
    parts: list[bytes] = []
    pack = HEADER.pack
    for when, code, data in events:
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        parts.append(pack(when, CODES[code], len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode(payload: bytes) -> Iterator[tuple[float, str, bytes]]:
    view = memoryview(payload)
    offset = 0
    size = HEADER.size
    while offset < len(view):
        if offset + size > len(view):
            raise CorruptChunk("a cut event header")
        when, code, length = HEADER.unpack_from(view, offset)
        offset += size
        if code not in NAMES or offset + length > len(view):
            raise CorruptChunk("a bad event header")
        yield when, NAMES[code], bytes(view[offset : offset + length])
        offset += length


# One compressor and decompressor per thread would be the rule for shared use; these objects
# are made per call instead (cheap: ~1 µs), so any thread may call these functions.
def compress(payload: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(payload)


def decompress(fmt: int, data: bytes) -> bytes:
    """The chunk's payload as it was hashed: event lines (CAST_ZLIB) or framed events (RAW_ZSTD)."""
    if fmt == CAST_ZLIB:
        return zlib.decompress(data)
    if fmt == RAW_ZSTD:
        try:
            return zstandard.ZstdDecompressor().decompress(data)
        except zstandard.ZstdError as exc:
            raise CorruptChunk(str(exc)) from exc
    raise CorruptChunk(f"unknown chunk format {fmt}")


class CastRenderer:
    """Turns a recording's chunks, in order, into asciicast v2 event lines.

    Keeps what must carry across chunks: the time floor (players expect times never to go
    back), and one incremental UTF-8 decoder per stream, so a character split between two
    reads (or two chunks) is whole in the event of its last byte.
    """

    def __init__(self, started_at: datetime) -> None:
        self.base = started_at.timestamp()
        self.floor = 0.0
        self._decoders = {"o": utf8_decoder(), "i": utf8_decoder()}

    def render(self, fmt: int, data: bytes, t_end: float) -> bytes:
        payload = decompress(fmt, data)
        if fmt == CAST_ZLIB:  # already event lines, times relative
            self.floor = max(self.floor, t_end)
            return payload
        lines: list[str] = []
        for when, code, raw in decode(payload):
            t = max(self.floor, when - self.base)
            self.floor = t
            decoder = self._decoders.get(code)
            text = decoder.decode(raw) if decoder is not None else raw.decode("utf-8", "replace")
            if text:
                lines.append(event_line(t, code, text))
        return "".join(lines).encode("utf-8")


def output_of(fmt: int, data: bytes) -> bytes:
    """The output bytes a chunk holds (for a screen's tail)."""
    import json

    payload = decompress(fmt, data)
    if fmt == CAST_ZLIB:
        out = bytearray()
        for line in payload.splitlines():
            _t, code, text = json.loads(line)
            if code == "o":
                out += text.encode("utf-8")
        return bytes(out)
    return b"".join(raw for _when, code, raw in decode(payload) if code == "o")
