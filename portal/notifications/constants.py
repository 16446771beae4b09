"""Names that are part of the interface: event names, channels, delivery states."""

from __future__ import annotations

from django.db import models


class Event(models.TextChoices):
    REQUEST_CREATED = "request.created", "request.created"
    REQUEST_APPROVED = "request.approved", "request.approved"
    REQUEST_DENIED = "request.denied", "request.denied"
    REQUEST_EXPIRED = "request.expired", "request.expired"
    SESSION_STARTED = "session.started", "session.started"
    SESSION_ENDING_SOON = "session.ending_soon", "session.ending_soon"
    SESSION_ENDED = "session.ended", "session.ended"
    EXTENSION_REQUESTED = "extension.requested", "extension.requested"
    EXTENSION_DECIDED = "extension.decided", "extension.decided"
    OVERSIGHT_FINDING = "oversight.finding", "oversight.finding"


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "webhook"
    SLACK = "slack", "Slack"
    EMAIL = "email", "email"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    # Still failing after MAX_RETRY_AGE: kept for the admin page, who may retry it.
    FAILED = "failed", "gave up"


# Who is emailed about what. The approvers are the users who may decide the request under its
# rule (portal.permissions.may_approve); the requester hears about their own request.
TO_APPROVERS = frozenset({Event.REQUEST_CREATED, Event.EXTENSION_REQUESTED})
TO_ADMINS = frozenset({Event.OVERSIGHT_FINDING})
# Every other event goes to the requester.

# The session.ending_soon notice: this long before the time limit, once per session.
ENDING_SOON_MINUTES = 5
