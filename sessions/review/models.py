"""Auditor reviews of sessions, and who is watching one live. Imported at the end of sessions/models.py (app label debug_sessions)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SessionReview(models.Model):
    """An auditor's "reviewed" mark on a session, with a note. Written with its audit event."""

    session = models.ForeignKey("debug_sessions.DebugSession", on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.session_id} reviewed by {self.reviewer_id}"


class SessionWatch(models.Model):
    """One open read-only watch of a running session: a row per watcher connection.

    Written when the watch websocket joins and deleted when it leaves, in the database so
    every portal process agrees on who is watching. A process that dies leaves its rows
    behind: the consumer refreshes `seen_at` while it is open, and a row not seen for
    `sessions.review.presence.WATCH_STALE_SECONDS` counts as gone (and is cleaned up).
    Not a record: who watched is in the audit trail (`session.watched`).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("debug_sessions.DebugSession", on_delete=models.CASCADE, related_name="open_watches")
    watcher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["opened_at"]
        indexes = [models.Index(fields=["session", "seen_at"], name="session_watch_seen_idx")]

    def __str__(self) -> str:
        return f"{self.watcher_id} watching {self.session_id}"
