"""Constants of debug sessions: statuses and the moves between them."""

from __future__ import annotations

from django.db import models


class SessionStatus(models.TextChoices):
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    ENDED = "ended", "Ended"
    FAILED = "failed", "Failed"


SESSION_MOVES: dict[str, frozenset[str]] = {
    SessionStatus.PROVISIONING: frozenset({SessionStatus.RUNNING, SessionStatus.FAILED, SessionStatus.ENDED}),
    SessionStatus.RUNNING: frozenset({SessionStatus.ENDED, SessionStatus.FAILED}),
    SessionStatus.ENDED: frozenset(),
    SessionStatus.FAILED: frozenset(),
}
LIVE_STATUSES = frozenset({SessionStatus.PROVISIONING, SessionStatus.RUNNING})


class EndReason(models.TextChoices):
    USER = "user", "Ended by the requester"
    EXPIRED = "expired", "Time limit reached"
    REVOKED = "revoked", "Revoked by an approver"
    ADMIN = "admin", "Ended by an admin"
    CONTAINER_EXITED = "container_exited", "The debug shell exited"
    POD_GONE = "pod_gone", "The pod is gone"


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"  # the session ended before anyone decided


EXTENSION_MOVES: dict[str, frozenset[str]] = {
    ExtensionStatus.PENDING: frozenset({ExtensionStatus.APPROVED, ExtensionStatus.DENIED, ExtensionStatus.CANCELLED}),
    ExtensionStatus.APPROVED: frozenset(),
    ExtensionStatus.DENIED: frozenset(),
    ExtensionStatus.CANCELLED: frozenset(),
}
