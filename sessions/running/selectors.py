"""Reads for the running-sessions list: which sessions a user may list, with what they may do.

Scope (portal.permissions decides each part):
- auditors and admins: every session;
- an approver: the sessions whose request's rule they may approve (`may_approve`), as the
  rule was when the request was made, and their own;
- anyone else: their own.
Who may watch, end or extend a listed session is asked of the same permissions the actions
themselves check, so the list never offers what the action would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from approvals.choices import RequestKind
from portal import permissions
from portal.validators import forbidden_characters_message, has_forbidden_characters
from sessions.choices import LIVE_STATUSES, ExtensionStatus, SessionStatus
from sessions.models import DebugSession, SessionExtension
from sessions.review.presence import watchers_of

LIMIT = 200  # newest first; a list, not a history (that is /sessions/history/)
_MAX_TEXT = 253  # the longest name Kubernetes (and so a filter) has


@dataclass(frozen=True)
class RunningFilters:
    """What the list is narrowed to; `status` is `running` unless asked otherwise."""

    status: str = SessionStatus.RUNNING
    namespace: str = ""
    requester: str = ""
    kind: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> tuple[RunningFilters, dict[str, list[str]]]:
        """The filters in `params` and {name: [problem]} for each bad one (those are dropped)."""
        errors: dict[str, list[str]] = {}
        values: dict[str, str] = {}
        for name in ("status", "namespace", "requester", "kind"):
            value = str(params.get(name) or "").strip()
            if has_forbidden_characters(value):
                errors[name] = [forbidden_characters_message()]
            elif len(value) > _MAX_TEXT:
                errors[name] = [f"At most {_MAX_TEXT} characters."]
            else:
                values[name] = value
        status = values.pop("status", "")
        if status and status not in SessionStatus.values:
            errors["status"] = [f"One of: {', '.join(SessionStatus.values)}."]
            status = ""
        if values.get("kind") and values["kind"] not in RequestKind.values:
            errors["kind"] = [f"One of: {', '.join(RequestKind.values)}."]
            values["kind"] = ""
        return cls(status=status or SessionStatus.RUNNING, **values), errors

    def query(self) -> dict[str, str]:
        """The filters as page-link parameters (the default status left out)."""
        given = {
            "status": self.status if self.status != SessionStatus.RUNNING else "",
            "namespace": self.namespace,
            "requester": self.requester,
            "kind": self.kind,
        }
        return {k: v for k, v in given.items() if v}


@dataclass
class RunningRow:
    """One listed session, with what the viewer may do to it."""

    session: DebugSession
    watchers: list[str]
    pending_extension: SessionExtension | None
    is_own: bool
    can_watch: bool
    can_end: bool
    can_decide_extension: bool
    can_ask_extension: bool
    now: datetime = field(default_factory=timezone.now)

    @property
    def seconds_left(self) -> int | None:
        expires_at = self.session.expires_at
        if self.session.status != SessionStatus.RUNNING or expires_at is None:
            return None
        return max(0, int((expires_at - self.now).total_seconds()))

    @property
    def minutes_left(self) -> int | None:
        """Whole minutes, rounded up (what the page says before its script counts down)."""
        left = self.seconds_left
        return None if left is None else -(-left // 60)


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def in_scope(user: Any, session: DebugSession) -> bool:
    """May `user` list this session? (The one rule; `running_sessions` only makes it cheap.)"""
    if not _active(user):
        return False
    return (
        session.request.requester_id == user.pk
        or permissions.can_see_all_sessions(user)
        or permissions.may_approve(user, session.request)
    )


def _candidates(user: Any, f: RunningFilters) -> QuerySet[DebugSession]:
    qs = DebugSession.objects.select_related("request", "request__requester").filter(status=f.status)
    if f.namespace:
        qs = qs.filter(request__namespace=f.namespace)
    if f.requester:
        qs = qs.filter(request__requester__username=f.requester)
    if f.kind:
        qs = qs.filter(request__kind=f.kind)
    return qs.order_by("-created_at", "-pk")


def _scoped(user: Any, qs: QuerySet[DebugSession], limit: int) -> list[DebugSession]:
    if permissions.can_see_all_sessions(user):
        return list(qs[:limit])
    # Someone in no group at all approves nothing (may_approve asks the request's groups,
    # whatever the policy says today): the database cuts the list to their own.
    if not user.groups.exists():
        return list(qs.filter(request__requester=user)[:limit])
    # An approver's scope is each request's own rule (a JSON snapshot on the request), which
    # SQL can't ask portably: read in order and keep what in_scope allows, up to the limit.
    found: list[DebugSession] = []
    for session in qs.iterator(chunk_size=500):
        if in_scope(user, session):
            found.append(session)
            if len(found) >= limit:
                break
    return found


def _pending_extensions(sessions: Iterable[DebugSession]) -> dict[Any, SessionExtension]:
    ids = [s.pk for s in sessions]
    pending = SessionExtension.objects.filter(session_id__in=ids, status=ExtensionStatus.PENDING)
    return {ext.session_id: ext for ext in pending}


def running_sessions(user: Any, filters: RunningFilters | None = None, *, limit: int = LIMIT) -> list[RunningRow]:
    """The sessions `user` may list, newest first, narrowed by `filters`, each with its watchers
    and the actions the viewer may take. A constant number of queries, whatever the length."""
    if not _active(user):
        return []
    f = filters or RunningFilters()
    sessions = _scoped(user, _candidates(user, f), limit)
    watchers = watchers_of(s.pk for s in sessions)
    pending = _pending_extensions(sessions)
    now = timezone.now()
    rows = []
    for session in sessions:
        own = session.request.requester_id == user.pk
        running = session.status == SessionStatus.RUNNING
        ext = pending.get(session.pk)
        rows.append(
            RunningRow(
                session=session,
                watchers=watchers[str(session.pk)],
                pending_extension=ext,
                is_own=own,
                # Watching one's own session makes no sense (the session page says the same).
                can_watch=running and not own and permissions.can_watch_session(user, session),
                can_end=session.status in LIVE_STATUSES and permissions.can_end_session(user, session),
                # sessions.extensions decides; these only say whether to offer it.
                can_decide_extension=running and ext is not None and not own and permissions.may_approve(user, session.request),
                can_ask_extension=running and own and ext is None,
                now=now,
            )
        )
    return rows
