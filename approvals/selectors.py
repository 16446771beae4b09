"""Reads of debug requests, always scoped to what the user may see."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from approvals.choices import RequestKind, RequestStatus
from approvals.models import DebugRequest
from portal import permissions
from sessions.choices import LIVE_STATUSES


def _base() -> QuerySet[DebugRequest]:
    return DebugRequest.objects.select_related("requester", "session").prefetch_related("decisions__approver")


def visible_requests(user: Any) -> QuerySet[DebugRequest]:
    """Approvers, auditors and admins see every request; everyone else only their own."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return DebugRequest.objects.none()
    if permissions.is_approver(user) or permissions.is_auditor(user) or permissions.is_admin(user):
        return _base()
    return _base().filter(requester=user)


def own_requests(user: Any) -> QuerySet[DebugRequest]:
    return visible_requests(user).filter(requester=user)


def pending_for_approver(user: Any) -> QuerySet[DebugRequest]:
    """Pending, not expired, someone else's, and not yet decided by this approver."""
    if not permissions.is_approver(user):
        return DebugRequest.objects.none()
    return (
        _base()
        .filter(status=RequestStatus.PENDING, expires_at__gt=timezone.now())
        .exclude(requester=user)
        .exclude(decisions__approver=user)
    )


def get_visible_request(user: Any, request_id: uuid.UUID | str) -> DebugRequest:
    """The request if `user` may see it, else DebugRequest.DoesNotExist (callers answer 404).

    Reading a pending request past its deadline expires it first, so nobody sees (or acts
    on) a stale "pending".
    """
    from approvals.services import expire_if_due  # a read that may settle an overdue state

    try:
        request_id = uuid.UUID(str(request_id))
    except ValueError:
        raise DebugRequest.DoesNotExist from None
    req = _base().get(pk=request_id)
    if not permissions.can_view_request(user, req):
        raise DebugRequest.DoesNotExist
    if req.status == RequestStatus.PENDING and req.expires_at <= timezone.now() and expire_if_due(request_id=req.pk):
        req = _base().get(pk=request_id)
    return req


def _target_key(req: DebugRequest) -> tuple[str, ...]:
    """What "the same target" means: the same pod (any of its containers), or the same node."""
    if req.kind == RequestKind.NODE:
        return (req.cluster, "node", req.node)
    return (req.cluster, "pod", req.namespace, req.pod)


def open_sessions_on_same_target(requests: Iterable[DebugRequest]) -> dict[uuid.UUID, list[DebugRequest]]:
    """For each request, the other requests of its requester whose session is open (provisioning
    or running) on the same pod or node, with that session loaded: the approver's cue "already
    has a shell there". One query for any number of requests (the queue lists them all).

    Read by request row, not by session, so approvals asks nothing of sessions but its statuses.
    """
    wanted = list(requests)
    if not wanted:
        return {}
    open_ones = list(
        DebugRequest.objects.filter(requester_id__in={r.requester_id for r in wanted}, session__status__in=LIVE_STATUSES)
        .select_related("session")
        .order_by("session__created_at")
    )
    by_target: dict[tuple[object, ...], list[DebugRequest]] = {}
    for other in open_ones:
        by_target.setdefault((other.requester_id, *_target_key(other)), []).append(other)
    return {
        req.pk: [o for o in by_target.get((req.requester_id, *_target_key(req)), []) if o.pk != req.pk]
        for req in wanted
    }
