"""The one writer of recordings: append a batch of events (and typed commands) as one chunk."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from portal.audit import AuditOrigin, record_event
from sessions.models import DebugSession
from sessions.recording import frames
from sessions.recording.models import Recording, RecordingChunk, SessionCommand
from sessions.recording.recorder import Batch

# Only the models' own table names are formatted in; every value is a query parameter.
_INSERT_CHUNK = (
    f"INSERT INTO {RecordingChunk._meta.db_table} (session_id, seq, format, t_end, event_count, raw_size, data, digest)"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
_SET_TOTALS = (
    f"UPDATE {Recording._meta.db_table} SET chunk_count = chunk_count + 1, event_count = event_count + %s,"  # noqa: S608
    " raw_bytes = raw_bytes + %s, stored_bytes = stored_bytes + %s, duration = %s, last_digest = %s"
)
_UPDATE_TOTALS = _SET_TOTALS + " WHERE session_id = %s"
_UPDATE_TOTALS_AND_SIZE = _SET_TOTALS + ", width = %s, height = %s WHERE session_id = %s"


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
    hasher = hashlib.sha256(rec.last_digest.encode())
    hasher.update(payload)  # (not prev + payload: that copies the payload first)
    digest = hasher.hexdigest()
    chunk = RecordingChunk(session_id=session_id, seq=rec.chunk_count, format=frames.RAW_ZSTD, t_end=t,
                           event_count=len(batch.events), raw_size=len(payload), data=data, digest=digest)
    # The two writes of every flush in plain SQL: the ORM's query building was about a third of
    # an append's CPU (bench/recorder.py), on the thread that shares the GIL with the terminals.
    session_key = RecordingChunk._meta.get_field("session").get_db_prep_value(session_id, connection)
    totals: list[Any] = [len(batch.events), len(payload), len(data), t, digest]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_CHUNK, [session_key, chunk.seq, chunk.format, t, chunk.event_count, chunk.raw_size, data, digest])
        if rec.width is None and batch.size is not None:
            cursor.execute(_UPDATE_TOTALS_AND_SIZE, [*totals, *batch.size, session_key])
        else:
            cursor.execute(_UPDATE_TOTALS, [*totals, session_key])
    if batch.commands:
        SessionCommand.objects.bulk_create(
            SessionCommand(session_id=session_id, t=max(0.0, when - base), text=text) for when, text in batch.commands
        )
    return chunk
