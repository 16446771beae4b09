"""The one writer of recordings: append a batch of events (and typed commands) as one chunk."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from portal.audit import AuditOrigin, record_event
from sessions.models import DebugSession
from sessions.recording import frames
from sessions.recording.models import Recording, RecordingChunk, SessionCommand
from sessions.recording.recorder import Batch


@transaction.atomic
def recording_accessed(*, session: DebugSession, user: Any, origin: AuditOrigin | None) -> None:
    """Seeing a recording is itself access to what happened in production: audit every read."""
    record_event(action="session.recording_viewed", actor=user, request=session.request, session=session, origin=origin)


def recording_append(*, session_id: str, batch: Batch, records_input: bool) -> RecordingChunk | None:
    """Write `batch` as the session's next chunk; the recording row is created by the first.

    The payload is framed and compressed before the transaction (it needs nothing from the
    database), so the row's lock is held for the hash and the inserts only. The chunk's seq
    comes from the recording row, read under its lock, so concurrent writers (a reconnect
    landing on another portal process) queue instead of colliding.
    """
    if not batch:
        return None
    payload = frames.encode(batch.events)
    data = frames.compress(payload)
    with transaction.atomic():
        return _append(session_id, batch, records_input, payload, data)


def _append(session_id: str, batch: Batch, records_input: bool, payload: bytes, data: bytes) -> RecordingChunk:
    rec = Recording.objects.select_for_update().filter(session_id=session_id).first()
    if rec is None:  # the first chunk (get_or_create: a concurrent first writer is no error)
        first = batch.events[0][0] if batch.events else batch.commands[0][0]
        Recording.objects.get_or_create(
            session_id=session_id,
            defaults={"started_at": datetime.fromtimestamp(first, tz=UTC), "records_input": records_input},
        )
        rec = Recording.objects.select_for_update().get(session_id=session_id)
    base = rec.started_at.timestamp()
    # Never before 0 or before the previous chunk's end: players expect times to grow (the
    # renderer applies the same floor event by event, frames.CastRenderer).
    t = max([rec.duration] + [when - base for when, _code, _data in batch.events])
    digest = hashlib.sha256(rec.last_digest.encode() + payload).hexdigest()
    chunk = RecordingChunk.objects.create(
        session_id=session_id,
        seq=rec.chunk_count,
        format=frames.RAW_ZSTD,
        t_end=t,
        event_count=len(batch.events),
        raw_size=len(payload),
        data=data,
        digest=digest,
    )
    if batch.commands:
        SessionCommand.objects.bulk_create(
            SessionCommand(session_id=session_id, t=max(0.0, when - base), text=text) for when, text in batch.commands
        )
    updates: dict = {
        "chunk_count": F("chunk_count") + 1,
        "event_count": F("event_count") + len(batch.events),
        "raw_bytes": F("raw_bytes") + len(payload),
        "stored_bytes": F("stored_bytes") + len(data),
        "duration": t,
        "last_digest": digest,
    }
    if rec.width is None and batch.size is not None:
        updates["width"], updates["height"] = batch.size
    Recording.objects.filter(pk=rec.pk).update(**updates)
    return chunk
