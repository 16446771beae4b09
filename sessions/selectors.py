"""Reads of debug sessions, scoped to what the user may see."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from portal import permissions
from sessions.choices import LIVE_STATUSES
from sessions.models import DebugSession


def _base() -> QuerySet[DebugSession]:
    return DebugSession.objects.select_related("request", "request__requester")


def get_visible_session(user: Any, session_id: uuid.UUID | str) -> DebugSession:
    """The session if `user` may see its request, else DebugSession.DoesNotExist (answer 404)."""
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        raise DebugSession.DoesNotExist from None
    session = _base().get(pk=session_id)
    if not permissions.can_view_request(user, session.request):
        raise DebugSession.DoesNotExist
    return session


def live_sessions() -> QuerySet[DebugSession]:
    return _base().filter(status__in=LIVE_STATUSES)


def sessions_of(user: Any) -> QuerySet[DebugSession]:
    return _base().filter(request__requester=user)
