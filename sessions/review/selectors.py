"""Reads for reviewing: a session's timeline and the session history (constant queries per page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals.models import Decision
from portal import permissions
from portal.models import AuditEvent
from sessions.models import DebugSession
from sessions.recording.models import SessionCommand
from sessions.review.models import SessionReview


def timeline(session: DebugSession) -> list[AuditEvent]:
    """Every audit event of the session and of the request it came from, in order."""
    return list(AuditEvent.objects.filter(Q(session=session) | Q(request_id=session.request_id)).order_by("id"))


def decisions(session: DebugSession) -> list[Decision]:
    return list(Decision.objects.filter(request_id=session.request_id).select_related("approver").order_by("created_at"))


def reviews(session: DebugSession) -> list[SessionReview]:
    return list(SessionReview.objects.filter(session=session).select_related("reviewer").order_by("created_at"))


@dataclass(frozen=True)
class HistoryFilters:
    """The history page's filters; empty strings mean "any"."""

    user: str = ""
    cluster: str = ""
    namespace: str = ""
    pod: str = ""
    node: str = ""
    status: str = ""
    since: date | None = None
    until: date | None = None
    reviewed: str = ""  # "", "yes" or "no"
    command: str = ""


def history(viewer: Any, filters: HistoryFilters) -> QuerySet[DebugSession]:
    """Sessions `viewer` may see, newest first, filtered; annotated with `reviewed`.

    Everything the list shows comes from one joined query (plus the paginator's count), so
    the page costs the same number of queries for 10 sessions or 100,000.
    """
    qs = DebugSession.objects.select_related("request", "request__requester").annotate(
        reviewed=Exists(SessionReview.objects.filter(session=OuterRef("pk")))
    )
    if not permissions.can_see_all_sessions(viewer):
        qs = qs.filter(request__requester=viewer)
    f = filters
    if f.user:
        qs = qs.filter(request__requester__username=f.user)
    if f.cluster:
        qs = qs.filter(request__cluster=f.cluster)
    if f.namespace:
        qs = qs.filter(request__namespace=f.namespace)
    if f.pod:
        qs = qs.filter(request__pod__startswith=f.pod)
    if f.node:
        qs = qs.filter(request__node=f.node)
    if f.status:
        qs = qs.filter(status=f.status)
    tz = timezone.get_current_timezone()
    if f.since:
        qs = qs.filter(created_at__gte=datetime.combine(f.since, time.min, tzinfo=tz))
    if f.until:
        qs = qs.filter(created_at__lte=datetime.combine(f.until, time.max, tzinfo=tz))
    if f.reviewed == "yes":
        qs = qs.filter(reviewed=True)
    elif f.reviewed == "no":
        qs = qs.filter(reviewed=False)
    if f.command:
        qs = qs.filter(Exists(SessionCommand.objects.filter(session=OuterRef("pk"), text__icontains=f.command)))
    return qs.order_by("-created_at", "-pk")
