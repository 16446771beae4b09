"""Who may do what. Every view, API endpoint, consumer and service asks these, never its own copy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from approvals.choices import RequestStatus
from sessions.choices import SessionStatus

if TYPE_CHECKING:
    from approvals.models import DebugRequest
    from sessions.models import DebugSession


def _active(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def _in_group(user: Any, name: str) -> bool:
    if not _active(user):
        return False
    # One query per user object, not one per check: list pages ask for every row.
    names = getattr(user, "_ephemera_group_names", None)
    if names is None:
        names = frozenset(user.groups.values_list("name", flat=True))
        user._ephemera_group_names = names
    return name in names


def is_admin(user: Any) -> bool:
    return _active(user) and bool(user.is_superuser)


def is_approver(user: Any) -> bool:
    """A member of the approver group or of any group a policy rule names as its approvers
    (they see the queue; which requests they may decide is `may_approve`)."""
    from approvals import policy

    return _in_group(user, settings.EPHEMERA_APPROVER_GROUP) or any(
        _in_group(user, g) for g in policy.current().approver_groups
    )


def approver_groups_of(req: DebugRequest) -> list[str]:
    """The groups whose members may decide this request: its rule's, as it was when asked."""
    groups = (req.policy or {}).get("approver_groups")
    return list(groups) if groups else [settings.EPHEMERA_APPROVER_GROUP]


def may_approve(user: Any, req: DebugRequest) -> bool:
    """Is the user one of this request's approvers (scoped by its policy rule)?"""
    return any(_in_group(user, g) for g in approver_groups_of(req))


def is_auditor(user: Any) -> bool:
    return _in_group(user, settings.EPHEMERA_AUDITOR_GROUP)


def can_view_request(user: Any, req: DebugRequest) -> bool:
    if not _active(user):
        return False
    return req.requester_id == user.pk or is_approver(user) or is_auditor(user) or is_admin(user)


def can_decide(user: Any, req: DebugRequest) -> bool:
    """One of the request's approvers, on someone else's pending request they haven't voted on yet."""
    if not may_approve(user, req) or req.requester_id == user.pk:
        return False
    if req.status != RequestStatus.PENDING or req.expires_at <= timezone.now():
        return False
    # Iterating uses the prefetched decisions when a list page loaded them.
    return all(d.approver_id != user.pk for d in req.decisions.all())


def can_use_terminal(user: Any, session: DebugSession) -> bool:
    """Only the requester, and only while the session runs and before it expires."""
    if not _active(user) or session.request.requester_id != user.pk:
        return False
    if session.status != SessionStatus.RUNNING:
        return False
    return session.expires_at is not None and session.expires_at > timezone.now()


def can_end_session(user: Any, session: DebugSession) -> bool:
    if not _active(user):
        return False
    return session.request.requester_id == user.pk or may_approve(user, session.request) or is_admin(user)


def can_view_recording(user: Any, session: DebugSession) -> bool:
    """Recordings (replay, .cast, typed commands): auditors, admins and the session's own requester."""
    if not _active(user):
        return False
    return session.request.requester_id == user.pk or is_auditor(user) or is_admin(user)


def can_review_session(user: Any, session: DebugSession) -> bool:
    """Marking a session reviewed: auditors and admins, never on their own session."""
    return (is_auditor(user) or is_admin(user)) and session.request.requester_id != user.pk


def can_watch_session(user: Any, session: DebugSession) -> bool:
    """The read-only live view of a running session: its approvers, auditors and admins."""
    if session.status != SessionStatus.RUNNING:
        return False
    return may_approve(user, session.request) or is_auditor(user) or is_admin(user)


def can_see_all_sessions(user: Any) -> bool:
    """The session history beyond one's own: auditors and admins."""
    return is_auditor(user) or is_admin(user)
