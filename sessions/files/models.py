"""What moved through a session's debug container, and the bytes, kept for the reviewer.

Imported at the end of sessions/models.py, so the app label stays `debug_sessions`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FileTransfer(models.Model):
    class Direction(models.TextChoices):
        DOWNLOAD = "download", "Download (out of the cluster)"
        UPLOAD = "upload", "Upload (into the debug container)"

    class Outcome(models.TextChoices):
        STREAMING = "streaming", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    session = models.ForeignKey("debug_sessions.DebugSession", on_delete=models.PROTECT, related_name="file_transfers")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    path = models.CharField(max_length=4096)  # as the target (download) or the debug container (upload) sees it
    archive = models.BooleanField(default=False)  # a directory, sent as .tar.gz
    started_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STREAMING)
    error = models.CharField(max_length=500, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    kept = models.BooleanField(default=False)  # the bytes are in FileTransferChunk

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.direction} {self.path} ({self.outcome})"


class FileTransferChunk(models.Model):
    """The transferred bytes, in order: what left the cluster (or entered it), for the reviewer."""

    transfer = models.ForeignKey(FileTransfer, on_delete=models.PROTECT, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transfer", "seq"], name="one_transfer_chunk_per_seq")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of transfer {self.transfer_id}"
