"""The one writer of recordings: append a batch of events (and typed commands) as one chunk."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from portal.audit import AuditOrigin, record_event
from sessions.models import DebugSession
from sessions.recording.cast import event_line
from sessions.recording.models import Recording, RecordingChunk, SessionCommand
from sessions.recording.recorder import Batch

# zlib's fastest level: on realistic terminal output (`seq`, logs) it costs a third of level 6's
# CPU (5-7 vs 17-18 ms per MB, bench/recorder.py) and stores 2-28% more; the recorder runs on
# every byte a terminal shows, storage is cheap. Any level decompresses the same way, so older
# chunks stay readable.
COMPRESS_LEVEL = 1


@transaction.atomic
def recording_accessed(*, session: DebugSession, user: Any, origin: AuditOrigin | None) -> None:
    """Seeing a recording is itself access to what happened in production: audit every read."""
    record_event(action="session.recording_viewed", actor=user, request=session.request, session=session, origin=origin)


@transaction.atomic
def recording_append(*, session_id: str, batch: Batch, records_input: bool) -> RecordingChunk | None:
    """Write `batch` as the session's next chunk; the recording row is created by the first.

    The chunk's seq comes from the recording row, read under its lock, so concurrent writers
    (a reconnect landing on another portal process) queue instead of colliding.
    """
    if not batch:
        return None
    rec = Recording.objects.select_for_update().filter(session_id=session_id).first()
    if rec is None:  # the first chunk (get_or_create: a concurrent first writer is no error)
        first = batch.events[0][0] if batch.events else batch.commands[0][0]
        Recording.objects.get_or_create(
            session_id=session_id,
            defaults={"started_at": datetime.fromtimestamp(first, tz=UTC), "records_input": records_input},
        )
        rec = Recording.objects.select_for_update().get(session_id=session_id)
    base = rec.started_at.timestamp()
    # Never before 0 or before the previous chunk's end: players expect times to grow.
    floor = rec.duration
    lines = []
    t = floor
    for when, code, text in batch.events:
        t = max(floor, when - base)
        floor = t
        lines.append(event_line(t, code, text))
    raw = "".join(lines).encode("utf-8")
    digest = hashlib.sha256(rec.last_digest.encode() + raw).hexdigest()
    chunk = RecordingChunk.objects.create(
        session_id=session_id,
        seq=rec.chunk_count,
        t_end=t,
        event_count=len(lines),
        raw_size=len(raw),
        data=zlib.compress(raw, COMPRESS_LEVEL),
        digest=digest,
    )
    if batch.commands:
        SessionCommand.objects.bulk_create(
            SessionCommand(session_id=session_id, t=max(0.0, when - base), text=text) for when, text in batch.commands
        )
    updates: dict = {
        "chunk_count": F("chunk_count") + 1,
        "event_count": F("event_count") + len(lines),
        "raw_bytes": F("raw_bytes") + len(raw),
        "stored_bytes": F("stored_bytes") + len(chunk.data),
        "duration": t,
        "last_digest": digest,
    }
    if rec.width is None and batch.size is not None:
        updates["width"], updates["height"] = batch.size
    Recording.objects.filter(pk=rec.pk).update(**updates)
    return chunk
