"""Writing notifications: one outbox row per channel (and per email recipient), in the
transaction of the change it reports.

Called right next to the change's `record_event`: if the change rolls back, so do its
notifications; once it commits, the worker will deliver them, however long a receiver is down.
Nothing is sent here and nothing here waits on the network.

Order: rows of one request share a stream per receiver, and the worker delivers a stream
oldest first. The ids match commit order because every writer of a request's events holds
its row lock (request, or its session) while writing them (docs/guarantees.md's lock order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from portal import permissions
from portal.notifications import payloads
from portal.notifications.constants import TO_ADMINS, TO_APPROVERS, Channel, Event
from portal.notifications.models import Notification, NotificationPreference

if TYPE_CHECKING:
    from approvals.models import DebugRequest
    from sessions.models import DebugSession, SessionExtension


def channels() -> list[str]:
    """The channels configured now."""
    on: list[str] = []
    if settings.EPHEMERA_NOTIFY_WEBHOOK_URL:
        on.append(Channel.WEBHOOK)
    if settings.EPHEMERA_SLACK_WEBHOOK_URL:
        on.append(Channel.SLACK)
    if settings.EPHEMERA_EMAIL is not None:
        on.append(Channel.EMAIL)
    return on


def email_recipients(event: str, *, request: DebugRequest | None, actor: Any = None) -> list[Any]:
    """Who is emailed: for a request or an extension asked, each user who may decide it under
    its rule; for an oversight finding, the admins; otherwise the requester. Never the person
    whose action it reports, nor anyone without an address or who turned email off."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    if event in TO_ADMINS:
        candidates = list(users.filter(is_superuser=True))
    elif request is None:
        return []
    elif event in TO_APPROVERS:
        if event == Event.REQUEST_CREATED and request.approvals_required == 0:
            return []  # approved by policy: there is nothing to decide
        groups = permissions.approver_groups_of(request)
        in_groups = users.filter(groups__name__in=groups).exclude(pk=request.requester_id).distinct()
        candidates = [u for u in in_groups if permissions.may_approve(u, request)]
    else:
        candidates = [request.requester] if request.requester.is_active and request.requester.email else []
    if actor is not None:
        candidates = [u for u in candidates if u.pk != actor.pk]
    muted = set(NotificationPreference.objects.filter(user__in=[u.pk for u in candidates], email=False).values_list("user_id", flat=True))
    return sorted((u for u in candidates if u.pk not in muted and _deliverable(u.email)), key=lambda u: u.pk)


def _deliverable(address: str) -> bool:
    # The ORM stores whatever it is given: an address with a line break would be a header or an
    # SMTP command of its own, so only a well-formed address is ever a recipient.
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def enqueue(
    event: Event | str,
    *,
    request: DebugRequest | None = None,
    session: DebugSession | None = None,
    extension: SessionExtension | None = None,
    finding: dict[str, Any] | None = None,
    actor: Any = None,
    detail: dict[str, Any] | None = None,
) -> list[Notification]:
    """Write the outbox rows of one event. Must run inside the change's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notifications must be enqueued inside the transaction of the change they report")
    on = channels()
    if not on:
        return []
    event = str(event)
    if request is None and session is not None:
        request = session.request
    now = timezone.now()
    payload = payloads.build(event, occurred_at=now, request=request, session=session, extension=extension,
                             finding=finding, actor=actor, detail=detail)
    common = {"event": event, "request": request, "session": session, "payload": payload, "created_at": now,
              "next_attempt_at": now}
    rows: list[Notification] = []
    for channel in on:
        if channel == Channel.EMAIL:
            for user in email_recipients(event, request=request, actor=actor):
                rows.append(Notification(channel=channel, user=user, recipient=user.email,
                                         stream=_stream(channel, request, f"user-{user.pk}"), **common))
        else:
            rows.append(Notification(channel=channel, stream=_stream(channel, request), **common))
    # One by one, not bulk_create: each row's id must come after the previous one's (the order).
    for row in rows:
        if request is None:
            row.stream += f"delivery-{row.delivery_id}"
        row.save(force_insert=True)
    return rows


def _stream(channel: str, request: DebugRequest | None, who: str = "") -> str:
    # A request's events reach one receiver in order; anything else (a finding) stands alone,
    # its row's own delivery id appended by the caller.
    scope = f"request-{request.pk}" if request is not None else ""
    return ":".join([channel, *([who] if who else []), scope])
