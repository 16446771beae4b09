"""Reads for reviewing: a session's timeline and the session history (constant queries per page)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
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
    profile: str = ""


def history(viewer: Any, filters: HistoryFilters) -> QuerySet[DebugSession]:
    """Sessions `viewer` may see, newest first, filtered; annotated with `reviewed`.

    Everything the list shows comes from one joined query, so the page costs the same number
    of queries for 10 sessions or 100,000 (page through it with `history_page`).
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
    if f.profile:
        qs = qs.filter(request__profile=f.profile)
    if f.command:
        matching = SessionCommand.objects.filter(session=OuterRef("pk"), text__icontains=f.command)
        # The first matching command comes with its row (the page shows it), in the same query.
        qs = qs.filter(Exists(matching)).annotate(matched_command=Subquery(matching.order_by("pk").values("text")[:1]))
    return qs.order_by("-created_at", "-pk")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(-?\d{1,19})\.([0-9a-f]{32})")


@dataclass(frozen=True)
class Cursor:
    """A place in the history's order (created_at, id), as it goes in a page link.

    Microseconds since the epoch and the id's hex: exact (no float rounding) and opaque enough.
    """

    created_at: datetime
    pk: uuid.UUID

    @classmethod
    def of(cls, session: DebugSession) -> Cursor:
        return cls(session.created_at, session.pk)

    def encode(self) -> str:
        return f"{(self.created_at - _EPOCH) // timedelta(microseconds=1)}.{self.pk.hex}"

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        """The cursor in `value`, or None for anything else (ignored like other bad values)."""
        match = _CURSOR.fullmatch(value or "")
        if match is None:
            return None
        try:
            created_at = _EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError:
            return None
        return cls(created_at, uuid.UUID(match[2]))

    def older(self) -> Q:
        # `created_at <= c` on its own as well: a plain range the (created_at, id) index starts
        # at, where the OR alone would have it read every newer row first.
        return Q(created_at__lte=self.created_at) & (Q(created_at__lt=self.created_at) | Q(pk__lt=self.pk))

    def newer(self) -> Q:
        return Q(created_at__gte=self.created_at) & (Q(created_at__gt=self.created_at) | Q(pk__gt=self.pk))


class _Count:
    """`page.paginator.count` as on a Django page, but counted only if someone reads it.

    The page never does: an exact COUNT(*) over 100,000 sessions costs more than the page.
    """

    def __init__(self, qs: QuerySet[DebugSession]) -> None:
        self._qs = qs

    @cached_property
    def count(self) -> int:
        return self._qs.count()


@dataclass
class HistoryPage:
    """One page of the history by keyset: the sessions after (older than) or before a cursor.

    Links carry the cursor of the page's last row (older) or first row (newer), so a page is
    the same rows whatever arrives meanwhile, and page 500 costs what page 1 does (no OFFSET).
    """

    object_list: list[DebugSession]
    has_next: bool  # older sessions exist
    has_previous: bool  # newer sessions exist
    paginator: _Count = field(repr=False)

    def __iter__(self) -> Any:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @classmethod
    def empty(cls) -> HistoryPage:
        return cls([], has_next=False, has_previous=False, paginator=_Count(DebugSession.objects.none()))

    @property
    def next_cursor(self) -> str:
        return Cursor.of(self.object_list[-1]).encode() if self.has_next else ""

    @property
    def previous_cursor(self) -> str:
        return Cursor.of(self.object_list[0]).encode() if self.has_previous else ""

    @property
    def is_whole(self) -> bool:
        """Every match is on this page (so its length is the exact count, for free)."""
        return not (self.has_next or self.has_previous)


def history_page(
    viewer: Any, filters: HistoryFilters, *, size: int, after: Cursor | None = None, before: Cursor | None = None
) -> HistoryPage:
    """The page of `history(viewer, filters)` older than `after`, newer than `before`, or the first.

    One query, reading at most size + 1 rows (the extra one says whether there is more).
    """
    qs = history(viewer, filters)
    if before is not None:
        rows = _fetch(qs.filter(before.newer()).order_by("created_at", "pk"), size + 1)
        if len(rows) >= size:
            return HistoryPage(rows[:size][::-1], has_next=True, has_previous=len(rows) > size, paginator=_Count(qs))
        # Fewer than a page is newer: that is the top, shown as the first page in full.
        after = None
    elif after is not None:
        rows = _fetch(qs.filter(after.older()), size + 1)
        return HistoryPage(rows[:size], has_next=len(rows) > size, has_previous=True, paginator=_Count(qs))
    rows = _fetch(qs, size + 1)
    return HistoryPage(rows[:size], has_next=len(rows) > size, has_previous=False, paginator=_Count(qs))


def _fetch(qs: QuerySet[DebugSession], limit: int) -> list[DebugSession]:
    if connection.vendor != "postgresql":
        return list(qs[:limit])
    # No parallel workers for a page of 51 rows: starting them is most of the cost (a command
    # search matching 1% of 100,000 sessions: 15 ms alone, 30-85 ms with two workers), and on
    # a busy server they wait for CPU like everything else. SET LOCAL ends with the transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return list(qs[:limit])
