"""Constants of debug requests: kinds, profiles, statuses and the moves between them."""

from __future__ import annotations

from django.db import models


class RequestKind(models.TextChoices):
    POD = "pod", "Pod (ephemeral container)"
    NODE = "node", "Node (node-debugger pod)"
    COPY = "copy", "Copy of a pod (--copy-to)"


class Profile(models.TextChoices):
    """kubectl debug --profile values (legacy is deprecated and not offered)."""

    GENERAL = "general", "general (SYS_PTRACE)"
    BASELINE = "baseline", "baseline"
    RESTRICTED = "restricted", "restricted"
    NETADMIN = "netadmin", "netadmin (NET_ADMIN, NET_RAW)"
    SYSADMIN = "sysadmin", "sysadmin (privileged)"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# The request state machine: the only moves services may make.
REQUEST_MOVES: dict[str, frozenset[str]] = {
    RequestStatus.PENDING: frozenset({RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.EXPIRED, RequestStatus.CANCELLED}),
    RequestStatus.APPROVED: frozenset(),
    RequestStatus.DENIED: frozenset(),
    RequestStatus.EXPIRED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"
