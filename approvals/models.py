"""A debug request (what an engineer asks for) and the approvers' decisions on it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from approvals.choices import Profile, RequestKind, RequestStatus, Verdict


class DebugRequest(models.Model):
    """One exact ask: this pod and target container (or this node), image, profile, duration, reason.

    The status only moves along `approvals.choices.REQUEST_MOVES`, through the services.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="debug_requests")
    created_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=8, choices=RequestKind.choices, default=RequestKind.POD)
    cluster = models.CharField(max_length=63, default="default")
    namespace = models.CharField(max_length=63, blank=True)
    pod = models.CharField(max_length=253, blank=True)
    container = models.CharField(max_length=63, blank=True)  # the target container
    node = models.CharField(max_length=253, blank=True)
    # kind copy: how the copy differs from the pod (approvals.validation.copy_options):
    # share_processes, same_node, set_image {container: image}, command (the target's).
    copy_options = models.JSONField(default=dict, blank=True)
    image = models.CharField(max_length=255)
    profile = models.CharField(max_length=16, choices=Profile.choices, default=Profile.GENERAL)
    reason = models.TextField()
    # The change or incident ticket the policy rule asked for (checked against its pattern).
    ticket = models.CharField(max_length=200, blank=True)
    duration_minutes = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # The policy rule that decided this request, as it was when the request was made
    # (approvals.policy.snapshot): rule name, policy sha256, approver groups, limits, clock.
    policy = models.JSONField(default=dict, blank=True)
    auto_approved = models.BooleanField(default=False)
    expires_at = models.DateTimeField()  # when a pending request expires undecided
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.requester} → {self.target_label} ({self.status})"

    @property
    def target_label(self) -> str:
        if self.kind == RequestKind.NODE:
            return f"node/{self.node}"
        if self.kind == RequestKind.COPY:
            return f"copy of {self.namespace}/{self.pod}:{self.container}"
        return f"{self.namespace}/{self.pod}:{self.container}"


class Decision(models.Model):
    """One approver's approve or deny, with a comment. One per approver per request."""

    request = models.ForeignKey(DebugRequest, on_delete=models.PROTECT, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_decision_per_approver")]

    def __str__(self) -> str:
        return f"{self.approver} {self.verdict} {self.request_id}"
