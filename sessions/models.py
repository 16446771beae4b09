"""A debug session: the ephemeral container (or node-debugger pod) made for one approved request."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from sessions.choices import ExtensionStatus, SessionStatus


class DebugSession(models.Model):
    """What Ephemera created in the cluster for an approved request, and its lifetime.

    The status only moves along `sessions.choices.SESSION_MOVES`, through the services.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.OneToOneField("approvals.DebugRequest", on_delete=models.PROTECT, related_name="session")
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.PROVISIONING, db_index=True)
    created_at = models.DateTimeField()
    # Where the debug shell lives: the pod (target's pod, or the node-debugger pod) and container.
    namespace = models.CharField(max_length=63)
    pod = models.CharField(max_length=253)
    container_name = models.CharField(max_length=63)
    # The uid of that pod as Ephemera saw it (the target pod when the container was added; the
    # node-debugger pod when Ephemera created it). Ownership comes from here, never from labels
    # anyone can set: the reaper deletes only a pod with this uid, and oversight treats a
    # same-named pod with another uid as not ours.
    pod_uid = models.CharField(max_length=64, blank=True)
    # Live provisioning progress, e.g. "ImagePullBackOff: back-off pulling image".
    progress = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the session's time started: at approval (running), or at the first terminal connect
    # under a `clock: first_connect` rule (until then expires_at is the open-window deadline).
    clock_started_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    # Why an approver or admin ended it (required for those); shown to the requester.
    end_comment = models.TextField(blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    failure_message = models.TextField(blank=True)
    # Set once the reaper has seen the session's processes gone from the cluster; until then
    # an ended or failed session is re-checked, so a crash between "ended" and "killed"
    # can't leave a shell running.
    cluster_clean_at = models.DateTimeField(null=True, blank=True)
    # The one provisioner allowed to touch the cluster for this session (a random token, set
    # under the row lock). A second provisioner (a retry, a second thread) sees it and backs
    # off instead of adding a container of its own or killing the winner's shell.
    provision_claim = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The session history pages newest first through this (100,000 sessions: bench/history.py).
        indexes = [models.Index(fields=["created_at", "id"], name="session_created_idx")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.pod}:{self.container_name} ({self.status})"

    @property
    def websocket_path(self) -> str:
        return f"/ws/sessions/{self.id}/terminal"


def lock_session(session_id: uuid.UUID | str) -> DebugSession:
    """The session row under lock, with its request (read, not locked).

    Every writer takes its locks in one order: request -> session -> extension -> audit
    chain. `of=("self",)` keeps PostgreSQL from also locking the joined request row here,
    which would take the request after the session and invert that order.
    """
    return DebugSession.objects.select_for_update(of=("self",)).select_related("request").get(pk=session_id)


# Models of sub-packages live in their own files but belong to this app (label debug_sessions).
from sessions.files.models import FileTransfer, FileTransferChunk  # noqa: E402,F401
from sessions.recording.models import Recording, RecordingChunk, SessionCommand  # noqa: E402,F401
from sessions.review.models import SessionReview  # noqa: E402,F401


class Finding(models.Model):
    """Something the oversight scan flagged: debug access that bypassed the portal (an
    ephemeral container or debug pod no session made) or a session running too long.

    `key` identifies the thing in the cluster (pod uid + container), so each is audited and
    notified once however many reapers look at it.
    """

    key = models.CharField(max_length=400, unique=True)
    kind = models.CharField(max_length=32)  # "ephemeral_container" | "debug_pod" | "long_session"
    namespace = models.CharField(max_length=63, blank=True)
    pod = models.CharField(max_length=253, blank=True)
    container = models.CharField(max_length=63, blank=True)
    session = models.ForeignKey(DebugSession, null=True, blank=True, on_delete=models.PROTECT, related_name="findings")
    detail = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    gone_at = models.DateTimeField(null=True, blank=True)  # no longer in the cluster
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveIntegerField(default=0)
    notify_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-first_seen_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class SessionExtension(models.Model):
    """The requester asks for more time on a running session; an approver decides, like a request.

    The status only moves along `sessions.choices.EXTENSION_MOVES`, through sessions.extensions.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(DebugSession, on_delete=models.PROTECT, related_name="extensions")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    minutes = models.PositiveIntegerField()
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING, db_index=True)
    created_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=models.Q(status="pending"), name="one_pending_extension_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"+{self.minutes} min for {self.session_id} ({self.status})"
