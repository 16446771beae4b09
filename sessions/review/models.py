"""Auditor reviews of sessions. Imported at the end of sessions/models.py (app label debug_sessions)."""

from __future__ import annotations

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
