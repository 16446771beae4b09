"""Reads of recordings: the .cast as a stream of chunks, commands, chain verification."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async

from sessions.recording import frames
from sessions.recording.cast import header_line
from sessions.recording.models import Recording, RecordingChunk, SessionCommand

CHUNKS_PER_READ = 50


class RecordingBroken(Exception):
    """A chunk is missing or was changed after it was written."""


def recording_of(session_id: str) -> Recording | None:
    return Recording.objects.filter(session_id=session_id).first()


Chunk = tuple[int, int, bytes, float]  # seq, format, data, t_end


def _chunks_after(session_id: str, seq: int, limit: int = CHUNKS_PER_READ) -> list[Chunk]:
    rows = (
        RecordingChunk.objects.filter(session_id=session_id, seq__gt=seq)
        .order_by("seq")
        .values_list("seq", "format", "data", "t_end")[:limit]
    )
    return [(s, f, bytes(d), t) for s, f, d, t in rows]


def iter_cast(session_id: str, *, title: str) -> Iterator[bytes]:
    """The .cast file, chunk by chunk (header from the recording row). Sync version."""
    rec = recording_of(session_id)
    if rec is None:
        return
    yield header_line(width=rec.width, height=rec.height, started_at=rec.started_at, title=title).encode()
    renderer = frames.CastRenderer(rec.started_at)
    last = -1
    while batch := _chunks_after(session_id, last):
        for seq, fmt, data, t_end in batch:
            yield renderer.render(fmt, data, t_end)
            last = seq


async def aiter_cast(session_id: str, *, title: str) -> AsyncIterator[bytes]:
    """The same for ASGI: Django would read a sync iterator into memory whole before sending."""
    rec = await sync_to_async(recording_of)(session_id)
    if rec is None:
        return
    yield header_line(width=rec.width, height=rec.height, started_at=rec.started_at, title=title).encode()
    renderer = frames.CastRenderer(rec.started_at)
    last = -1
    while batch := await sync_to_async(_chunks_after)(session_id, last):
        for seq, fmt, data, t_end in batch:
            yield renderer.render(fmt, data, t_end)
            last = seq


def commands_of(session_id: str) -> list[SessionCommand]:
    return list(SessionCommand.objects.filter(session_id=session_id).order_by("t", "pk"))


def output_tail(session_id: str, *, limit: int = 64 * 1024, chunks: int = 20) -> bytes:
    """The recorded output's last bytes (for a watcher whose process has no live screen)."""
    rows = list(RecordingChunk.objects.filter(session_id=session_id).order_by("-seq").values_list("format", "data")[:chunks])
    out = bytearray()
    for fmt, data in reversed(rows):
        out += frames.output_of(fmt, bytes(data))
    return bytes(out[-limit:])


def verify_recording(session_id: str) -> int:
    """Check the chunk chain; return how many chunks were checked or raise RecordingBroken."""
    rec = recording_of(session_id)
    if rec is None:
        return 0
    digest = ""
    count = 0
    for seq, fmt, data, stored in (
        RecordingChunk.objects.filter(session_id=session_id)
        .order_by("seq")
        .values_list("seq", "format", "data", "digest")
        .iterator()
    ):
        if seq != count:
            raise RecordingBroken(f"chunk {count} is missing")
        try:
            payload = frames.decompress(fmt, bytes(data))
        except (frames.CorruptChunk, zlib.error) as exc:
            raise RecordingBroken(f"chunk {seq} was changed") from exc
        digest = hashlib.sha256(digest.encode() + payload).hexdigest()
        if digest != stored:
            raise RecordingBroken(f"chunk {seq} was changed")
        count += 1
    if count != rec.chunk_count or digest != rec.last_digest:
        raise RecordingBroken("the last chunks are missing")
    return count
