"""Writes of reviewing: marking a session reviewed, and starting to watch one live (both audited)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal import permissions
from portal.audit import AuditOrigin, record_event
from portal.validators import forbidden_characters_message, has_forbidden_characters
from sessions.choices import LIVE_STATUSES
from sessions.models import DebugSession, lock_session
from sessions.review.models import SessionReview

MAX_NOTE = 4000


@transaction.atomic
def session_mark_reviewed(*, session_id: Any, reviewer: Any, note: str, origin: AuditOrigin | None = None) -> SessionReview:
    """An auditor's (or admin's) review mark with a note, on a session that is over."""
    session = lock_session(session_id)
    if not permissions.can_review_session(reviewer, session):
        raise PermissionDenied("Only auditors and admins may review sessions, and not their own.")
    note = (note or "").strip()
    if has_forbidden_characters(note):
        raise ValidationError({"note": [forbidden_characters_message()]})
    if not note:
        raise ValidationError({"note": "Say what you checked: a note is required."})
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": f"At most {MAX_NOTE} characters."})
    if session.status in LIVE_STATUSES:
        raise ValidationError({"note": "The session is still live: review it once it has ended."})
    review = SessionReview.objects.create(session=session, reviewer=reviewer, note=note, created_at=timezone.now())
    record_event(
        action="session.reviewed", actor=reviewer, request=session.request, session=session, origin=origin, data={"note": note}
    )
    return review


@transaction.atomic
def session_watch_started(*, session_id: Any, watcher: Any, origin: AuditOrigin | None = None) -> DebugSession:
    """Someone opened the read-only live view: who watched is part of the trail."""
    session = DebugSession.objects.select_related("request").get(pk=session_id)
    if not permissions.can_watch_session(watcher, session):
        raise PermissionDenied("You may not watch this session.")
    record_event(action="session.watched", actor=watcher, request=session.request, session=session, origin=origin)
    return session
