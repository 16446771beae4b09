"""Every write to a session extension: ask, approve, deny (the services of SessionExtension).

An extension is decided like a request: one of its request's approvers (the rule's groups)
other than the requester, once. On
approval the session's expires_at moves in the same transaction as the audit event. The total
a session may be extended by is capped at its policy rule's max_duration_minutes, so the in-cluster
time limit (sessions.services.cluster_time_limit_seconds) still holds.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from portal import permissions
from portal.audit import AuditOrigin, record_event
from portal.events import APPROVALS_GROUP, publish_on_commit, session_group
from portal.notifications import outbox
from portal.notifications.constants import Event
from portal.sso import stepup
from portal.sso.stepup import UNKNOWN, Proof
from sessions.choices import EXTENSION_MOVES, ExtensionStatus, SessionStatus
from sessions.models import DebugSession, SessionExtension, lock_session
from sessions.services import max_duration_minutes

REASON_MAX_LENGTH = 2000


class ExtensionConflict(Exception):
    """The extension or its session is not in a state that allows this."""


def _move(ext: SessionExtension, to: str) -> None:
    if to not in EXTENSION_MOVES[ext.status]:
        raise ExtensionConflict(f"This extension is already {ext.status}.")
    ext.status = to


def _publish(ext: SessionExtension, session: DebugSession) -> None:
    # The approvals queue lists pending extensions; the session page and terminal show the new limit.
    publish_on_commit(APPROVALS_GROUP, {"type": "request.changed", "id": str(session.request_id), "status": "extension"})
    publish_on_commit(
        session_group(session.pk),
        {
            "type": "session.changed",
            "id": str(session.pk),
            "status": str(session.status),
            "progress": session.progress,
            "message": "",
            "expires_at": session.expires_at.isoformat() if session.expires_at else None,
            "extension": {"id": str(ext.pk), "status": str(ext.status), "minutes": ext.minutes},
        },
    )


def extended_minutes(session: DebugSession) -> int:
    """Minutes already approved or asked for on this session."""
    total = session.extensions.filter(status__in=[ExtensionStatus.APPROVED, ExtensionStatus.PENDING]).aggregate(Sum("minutes"))
    return int(total["minutes__sum"] or 0)


def _clean_minutes(raw: Any, room: int) -> int:
    try:
        if isinstance(raw, bool) or raw in (None, ""):
            raise ValueError
        minutes = int(raw)
        if isinstance(raw, float) and raw != minutes:
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationError({"minutes": ["Give the extra time as a whole number of minutes."]}) from None
    if room <= 0:
        raise ValidationError({"minutes": ["This session can't be extended any further."]})
    if not 1 <= minutes <= room:
        raise ValidationError({"minutes": [f"Ask for between 1 and {room} minutes."]})
    return minutes


def extension_request(
    *, session_id: uuid.UUID | str, user: Any, minutes: Any, reason: str, origin: AuditOrigin | None
) -> SessionExtension:
    """The requester asks for more time on their running session."""
    reason = (reason or "").strip()
    with transaction.atomic():
        session = lock_session(session_id)
        if session.request.requester_id != getattr(user, "pk", None) or not permissions.can_view_request(user, session.request):
            raise PermissionDenied("Only the requester can ask to extend this session.")
        if session.status != SessionStatus.RUNNING or not session.expires_at or session.expires_at <= timezone.now():
            raise ExtensionConflict(f"This session is {session.status if session.status != 'running' else 'expired'}; it can't be extended.")
        room = max_duration_minutes(session.request) - extended_minutes(session)
        clean = _clean_minutes(minutes, room)
        if not reason:
            raise ValidationError({"reason": ["Say why you need more time (approvers see this)."]})
        if len(reason) > REASON_MAX_LENGTH:
            raise ValidationError({"reason": [f"Keep the reason under {REASON_MAX_LENGTH} characters."]})
        if session.extensions.filter(status=ExtensionStatus.PENDING).exists():
            raise ExtensionConflict("An extension of this session is already waiting for a decision.")
        try:
            with transaction.atomic():
                ext = SessionExtension.objects.create(
                    session=session, requester=user, minutes=clean, reason=reason, created_at=timezone.now()
                )
        except IntegrityError:
            raise ExtensionConflict("An extension of this session is already waiting for a decision.") from None
        record_event(
            action="session.extension_requested",
            actor=user,
            request=session.request,
            session=session,
            origin=origin,
            data={"extension": str(ext.pk), "minutes": clean, "reason": reason},
        )
        outbox.enqueue(Event.EXTENSION_REQUESTED, session=session, extension=ext, actor=user)
        _publish(ext, session)
        return ext


def _decide(
    *, extension_id: uuid.UUID | str, approver: Any, verdict: str, comment: str, origin: AuditOrigin | None,
    proof: Proof = UNKNOWN,
) -> SessionExtension:
    comment = (comment or "").strip()
    if len(comment) > REASON_MAX_LENGTH:
        raise ValidationError({"comment": [f"Keep the comment under {REASON_MAX_LENGTH} characters."]})
    if verdict == ExtensionStatus.DENIED and not comment:
        raise ValidationError({"comment": ["Say why you deny the extension (the requester sees this)."]})
    with transaction.atomic():
        # Lock order everywhere: request -> session -> extension -> audit chain (docs/guarantees.md).
        # session_end locks the session, then updates its pending extensions; locking the
        # extension first here deadlocked with it on PostgreSQL.
        session_id = SessionExtension.objects.values_list("session_id", flat=True).get(pk=extension_id)
        session = lock_session(session_id)
        ext = SessionExtension.objects.select_for_update().get(pk=extension_id)
        if not permissions.may_approve(approver, session.request):
            raise PermissionDenied("Only the approvers of the request behind this session can decide its extensions.")
        if session.request.requester_id == approver.pk:
            raise PermissionDenied("You can't decide on your own session's extension.")
        if ext.status != ExtensionStatus.PENDING:
            raise ExtensionConflict(f"This extension is already {ext.status}.")
        if verdict == ExtensionStatus.APPROVED:
            # More time is more access: the request's rule asks the same proof as for approving it.
            stepup.check(session.request.policy, proof, f"extension:{ext.pk}")
        now = timezone.now()
        if verdict == ExtensionStatus.APPROVED and (
            session.status != SessionStatus.RUNNING or session.expires_at is None or session.expires_at <= now
        ):
            _move(ext, ExtensionStatus.CANCELLED)
            ext.decided_at = now
            ext.save(update_fields=["status", "decided_at"])
            record_event(action="session.extension_cancelled", actor=None, request=session.request, session=session,
                         data={"extension": str(ext.pk), "why": "the session ended before the decision"})
            _publish(ext, session)
            raise ExtensionConflict("The session is over; it can no longer be extended.")
        _move(ext, verdict)
        ext.decided_by, ext.decided_at, ext.comment = approver, now, comment
        ext.save(update_fields=["status", "decided_by", "decided_at", "comment"])
        data: dict[str, Any] = {"extension": str(ext.pk), "minutes": ext.minutes, "comment": comment}
        if verdict == ExtensionStatus.APPROVED:
            old = session.expires_at
            assert old is not None  # a running session always has its limit (checked above)
            new_limit = old + timedelta(minutes=ext.minutes)
            session.expires_at = new_limit
            session.save(update_fields=["expires_at"])
            data.update({"expires_at_before": old.isoformat(), "expires_at": new_limit.isoformat()})
            data["approver_proof"] = proof.as_audit()
            record_event(action="session.extended", actor=approver, request=session.request, session=session,
                         origin=origin, data=data)
        else:
            record_event(action="session.extension_denied", actor=approver, request=session.request, session=session,
                         origin=origin, data=data)
        outbox.enqueue(Event.EXTENSION_DECIDED, session=session, extension=ext, actor=approver, detail={"comment": comment})
        _publish(ext, session)
        return ext


def extension_approve(
    *, extension_id: uuid.UUID | str, approver: Any, comment: str = "", origin: AuditOrigin | None, proof: Proof = UNKNOWN
) -> SessionExtension:
    return _decide(extension_id=extension_id, approver=approver, verdict=ExtensionStatus.APPROVED, comment=comment,
                   origin=origin, proof=proof)


def extension_deny(*, extension_id: uuid.UUID | str, approver: Any, comment: str, origin: AuditOrigin | None) -> SessionExtension:
    return _decide(extension_id=extension_id, approver=approver, verdict=ExtensionStatus.DENIED, comment=comment,
                   origin=origin)


def pending_extensions() -> list[SessionExtension]:
    """For the approvals queue (a read; here to keep the extension code in one place)."""
    return list(
        SessionExtension.objects.filter(status=ExtensionStatus.PENDING)
        .select_related("session__request__requester", "requester")
        .order_by("created_at")
    )
