"""Recording tables, kept apart from DebugSession so long recordings never bloat the main tables.

Imported at the end of sessions/models.py, so the app label stays `debug_sessions`.
"""

from __future__ import annotations

from django.db import models


class Recording(models.Model):
    """One session's recording: the asciicast header's facts and running totals.

    Its chunks (RecordingChunk) hold the events; `chunk_count` is the next chunk's seq and is
    only advanced under this row's lock, so two writers can never take the same seq.
    """

    session = models.OneToOneField(
        "debug_sessions.DebugSession", primary_key=True, on_delete=models.PROTECT, related_name="recording"
    )
    started_at = models.DateTimeField()  # time 0 of the cast's event times
    width = models.PositiveSmallIntegerField(null=True, blank=True)  # from the first resize
    height = models.PositiveSmallIntegerField(null=True, blank=True)
    records_input = models.BooleanField()  # EPHEMERA_RECORD_INPUT when the recording began
    chunk_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    raw_bytes = models.PositiveBigIntegerField(default=0)  # the chunks' payloads before compression
    stored_bytes = models.PositiveBigIntegerField(default=0)  # after compression
    duration = models.FloatField(default=0.0)  # time of the last event, seconds
    last_digest = models.CharField(max_length=64, blank=True)  # the chunk chain's head

    def __str__(self) -> str:
        return f"recording of {self.session_id} ({self.chunk_count} chunks)"


class RecordingChunk(models.Model):
    """The events flushed together: framed raw events, compressed (sessions/recording/frames.py).

    Each chunk stands alone, so a crash loses at most the chunk being written. `digest` is
    sha256(previous chunk's digest + this chunk's payload before compression): a changed or
    missing chunk breaks the chain (see selectors.verify_recording).
    """

    session = models.ForeignKey("debug_sessions.DebugSession", on_delete=models.PROTECT, related_name="recording_chunks")
    seq = models.PositiveIntegerField()
    # frames.CAST_ZLIB (1) for chunks written before raw framing, frames.RAW_ZSTD (2) since.
    format = models.PositiveSmallIntegerField(default=1)
    t_end = models.FloatField()  # time of the chunk's last event
    event_count = models.PositiveIntegerField()
    raw_size = models.PositiveIntegerField()  # the payload's size before compression
    data = models.BinaryField()
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="one_chunk_per_seq")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of {self.session_id}"


class SessionCommand(models.Model):
    """A command line typed in a session (from input events, at Enter), for search and replay.

    Line editing is followed only as far as backspace, Ctrl-U, Ctrl-W and Ctrl-C: what tab
    completion or history recall put on the line is not resolved (see docs/recording.md).
    """

    session = models.ForeignKey("debug_sessions.DebugSession", on_delete=models.PROTECT, related_name="commands")
    t = models.FloatField()  # seconds into the recording
    text = models.CharField(max_length=2000)

    class Meta:
        ordering = ["session", "t"]
        indexes = [models.Index(fields=["session", "t"])]

    def __str__(self) -> str:
        return self.text

    @property
    def clock(self) -> str:
        """The time into the recording as H:MM:SS / M:SS, as the player shows it."""
        minutes, seconds = divmod(int(self.t), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
