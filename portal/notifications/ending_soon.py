"""session.ending_soon: the requester is told ENDING_SOON_MINUTES before the time limit, once.

Once per time limit: an approved extension moves the limit, and the new one gets its own
notice. The notice is an audit event written under the session's row lock, so two workers
(or two passes) can't both send it. Besides the outbox rows, the open terminal hears it on the
session's channel-layer group (sessions.consumers.TerminalConsumer.session_ending_soon) and
shows it as a `status` message; that needs REDIS_URL when the worker runs in its own process.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.audit import record_event
from portal.events import publish_on_commit, session_group
from portal.models import AuditEvent
from portal.notifications.constants import ENDING_SOON_MINUTES, Event
from portal.notifications.outbox import enqueue
from sessions.choices import SessionStatus
from sessions.models import DebugSession, lock_session

ACTION = "session.ending_soon"


def _window(now: datetime) -> tuple[datetime, datetime]:
    return now, now + timedelta(minutes=ENDING_SOON_MINUTES)


def notify_ending_soon(*, now: datetime | None = None) -> int:
    """Tell each running session due within ENDING_SOON_MINUTES that hasn't been told; return how many."""
    start, end = _window(now or timezone.now())
    due = DebugSession.objects.filter(
        status=SessionStatus.RUNNING, clock_started_at__isnull=False, expires_at__gt=start, expires_at__lte=end
    ).values_list("pk", flat=True)
    return sum(1 for pk in list(due) if _notify(pk, start, end))


def _notify(session_id: object, start: datetime, end: datetime) -> bool:
    with transaction.atomic():
        session = lock_session(session_id)  # type: ignore[arg-type]
        limit = session.expires_at
        if session.status != SessionStatus.RUNNING or session.clock_started_at is None or limit is None:
            return False
        if not start < limit <= end:
            return False  # extended, or ended, since the query
        iso = limit.isoformat()
        if AuditEvent.objects.filter(session=session, action=ACTION, data__expires_at=iso).exists():
            return False
        minutes = max(1, round((limit - start).total_seconds() / 60))
        record_event(action=ACTION, actor=None, request=session.request, session=session,
                     data={"expires_at": iso, "minutes_left": minutes})
        enqueue(Event.SESSION_ENDING_SOON, session=session, detail={"expires_at": iso, "minutes_left": minutes})
        publish_on_commit(session_group(session.pk), {
            "type": "session.ending_soon",
            "id": str(session.pk),
            "expires_at": iso,
            "message": f"The session ends in {minutes} minute{'s' if minutes != 1 else ''} (at {limit:%H:%M} UTC); "
                       "more time can be asked for on the session page.",
        })
        return True
