"""Core models shared by every app: the audit trail, API tokens and sign-in throttling."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One thing that happened, written in the same transaction as the change it records.

    Append-only: rows are never updated or deleted. Each row carries the hash of the row
    before it (`prev_hash`) and its own hash over its content, so `verify_audit` can find
    any change or gap. `portal.audit.record_event` is the only writer.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Kept as text too: the trail must still read right if a user is renamed.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)  # e.g. "request.approved"
    request = models.ForeignKey("approvals.DebugRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    session = models.ForeignKey("debug_sessions.DebugSession", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action}"


class ApiToken(models.Model):
    """A bearer token for the JSON API and the terminal websocket.

    Only a SHA-256 of the token is stored; the token itself is shown once, by the profile
    page (portal/token_views.py) or `manage.py create_api_token`.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, db_index=True)  # first characters, to tell tokens apart
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Tokens made on the profile page expire (at most EPHEMERA_TOKEN_MAX_DAYS); automation's
    # tokens from `manage.py create_api_token` may not (null).
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}…"


class LoginThrottle(models.Model):
    """Failed sign-ins counted for one account or one client address over a time window.

    In the database, not in process memory, so every portal replica counts the same failures.
    One row per (scope, key): a flood grows counts, not rows. `portal.login_throttle` is the
    only writer; it locks the row while it reads and bumps it.
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", "account (username)"
        ADDRESS = "address", "client address (sign-in form)"
        TOKEN = "token", "client address (API bearer token)"  # noqa: S105 (a label, not a secret)

    scope = models.CharField(max_length=16, choices=Scope.choices)
    # A case-folded username, or an IP address (IPv6: its /64 network, what one client holds).
    key = models.CharField(max_length=150)
    failures = models.PositiveIntegerField(default=0)
    # Attempts refused while locked; only the first of a lock is audited.
    refused = models.PositiveIntegerField(default=0)
    # End of the counting window, or of the lock once `failures` reached the limit.
    resets_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="portal_loginthrottle_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}: {self.failures} failures until {self.resets_at:%H:%M:%S}"


class AuditRepeat(models.Model):
    """Repeats of one refused attempt, counted instead of stored (portal.attempts).

    The first refusal of a kind (same action, same user or address, same target) in a window is
    an audit event; repeats within the window only bump `count`, and the next event of that kind
    says how many there were. A flood grows a number, not the audit table.
    """

    key = models.CharField(max_length=64, unique=True)  # SHA-256 of action, who and target
    action = models.CharField(max_length=64)
    window_ends = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)  # repeats since the last event written
    last_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.action}: {self.count} repeats until {self.window_ends:%H:%M:%S}"


# The notification outbox lives in its own package but belongs to this app (label portal).
from portal.notifications.models import Notification, NotificationPreference  # noqa: E402,F401
from portal.sso.models import SecurityKey, SsoIdentity  # noqa: E402,F401
