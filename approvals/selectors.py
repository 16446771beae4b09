"""Reads of debug requests, always scoped to what the user may see."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from approvals.choices import RequestStatus
from approvals.models import DebugRequest
from portal import permissions


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
