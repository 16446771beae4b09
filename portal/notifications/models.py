"""The outbox (one row per message to send) and each user's choice about email.

Imported by portal/models.py: these models belong to the `portal` app.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.notifications.constants import Channel, DeliveryStatus, Event


class Notification(models.Model):
    """One message for one channel (and, for email, one recipient): an outbox row.

    Written by `portal.notifications.outbox` in the transaction of the change it reports; only
    `portal.notifications.delivery` moves it on. `delivery_id` is what the receiver sees
    (`id`, `X-Ephemera-Delivery`, the email's Message-ID): a re-send after a crash carries the
    same one. `stream` orders delivery: a row waits while an older row of its stream is still
    pending, so one receiver gets one request's events in order.
    """

    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=32, choices=Event.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # Email only: who, as their address was when the event happened.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipient = models.CharField(max_length=254, blank=True)
    request = models.ForeignKey("approvals.DebugRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey("debug_sessions.DebugSession", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    stream = models.CharField(max_length=400)
    # The event as it was (portal.notifications.payloads): what the webhook posts, and what the
    # Slack and email messages are rendered from. Never re-read from the live rows.
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Never the URL (it may carry a token) nor a receiver's body beyond a short printable snippet.
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The worker sending it right now, and until when that claim holds: a worker killed
    # mid-send leaves a claim that runs out, and the row is sent again (same delivery_id).
    claimed_by = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "channel", "next_attempt_at"], name="notification_due_idx"),
            models.Index(fields=["stream", "id"], name="notification_stream_idx"),
        ]

    def __str__(self) -> str:
        to = f" to {self.recipient}" if self.recipient else ""
        return f"{self.event} via {self.channel}{to} ({self.status})"


class NotificationPreference(models.Model):
    """A user's choice about notifications (the /profile/ page). No row: the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference")
    email = models.BooleanField(default=True, help_text="Email me about requests I may decide and about my own requests.")

    def __str__(self) -> str:
        return f"{self.user}: email {'on' if self.email else 'off'}"
