"""Every write to a debug request: create, approve, deny, cancel, expire.

The HTML views, the JSON API and the websocket consumers all call these; none has its own
copy of a rule. Each state change moves along REQUEST_MOVES, writes its audit event in the
same transaction and announces itself to the "approvals" group after commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.choices import REQUEST_MOVES, RequestStatus, Verdict
from approvals.models import DebugRequest, Decision
from approvals.policy import Policy
from approvals.validation import validate_request
from portal import permissions
from portal.audit import AuditOrigin, record_event
from portal.events import APPROVALS_GROUP, publish_on_commit
from portal.kube.useragent import acting_for
from portal.models import AuditEvent
from portal.notifications import outbox
from portal.notifications.constants import Event
from portal.sso import stepup
from portal.sso.stepup import UNKNOWN, Proof, SecurityKeyRequired, StepUpRequired  # noqa: F401  (raised here, caught by callers)

COMMENT_MAX_LENGTH = 2000


class RequestConflict(Exception):
    """The request is no longer in a state that allows this (decided, expired, cancelled)."""


def _publish(req: DebugRequest) -> None:
    publish_on_commit(APPROVALS_GROUP, {"type": "request.changed", "id": str(req.pk), "status": str(req.status)})


def _move(req: DebugRequest, to: str) -> None:
    if to not in REQUEST_MOVES[req.status]:
        raise RequestConflict(f"This request is {req.status}; it can no longer become {to}.")
    req.status = to


def _target_data(req: DebugRequest) -> dict[str, Any]:
    return {
        "kind": req.kind,
        "namespace": req.namespace,
        "pod": req.pod,
        "container": req.container,
        "node": req.node,
        "image": req.image,
        "profile": req.profile,
        "duration_minutes": req.duration_minutes,
        **({"copy": req.copy_options} if req.kind == "copy" else {}),
    }


def _approve_now(req: DebugRequest, *, actor: Any, origin: AuditOrigin | None, data: dict[str, Any]) -> None:
    """Move to approved, audit it, and create the session (provisioned after commit)."""
    from sessions.services import session_create_for_request  # sessions depends on approvals, not back

    _move(req, RequestStatus.APPROVED)
    req.decided_at = timezone.now()
    req.save(update_fields=["status", "decided_at", "auto_approved"])
    record_event(action="request.approved", actor=actor, request=req, origin=origin, data=data)
    outbox.enqueue(Event.REQUEST_APPROVED, request=req, actor=actor, detail=data)
    session_create_for_request(request=req, origin=origin)


@transaction.atomic
def _create(*, requester: Any, clean: Any, origin: AuditOrigin | None) -> DebugRequest:
    now = timezone.now()
    current = policy.current()
    rule = clean.rule
    assert rule is not None  # validate_request refuses what no rule allows
    record_policy_loaded(current)
    req = DebugRequest.objects.create(
        requester=requester,
        created_at=now,
        kind=clean.kind,
        cluster=settings.EPHEMERA_CLUSTER_NAME,
        namespace=clean.namespace,
        pod=clean.pod,
        container=clean.container,
        node=clean.node,
        copy_options=clean.copy_options or {},
        image=clean.image,
        profile=clean.profile,
        reason=clean.reason,
        ticket=clean.ticket,
        duration_minutes=clean.duration_minutes,
        approvals_required=rule.approvals,
        policy=policy.snapshot(rule, current, kind=clean.kind, profile=clean.profile),
        expires_at=now + timedelta(minutes=settings.EPHEMERA_REQUEST_TTL_MINUTES),
    )
    record_event(
        action="request.created", actor=requester, request=req, origin=origin,
        data={**_target_data(req), "reason": req.reason, "ticket": req.ticket, "rule": rule.name,
              "policy_sha256": current.sha256, "approvals_required": rule.approvals},
    )
    outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=requester)
    if rule.approvals == 0:
        req.auto_approved = True
        _approve_now(req, actor=None, origin=origin, data={"by": "policy", "rule": rule.name, "policy_sha256": current.sha256})
    _publish(req)
    return req


def request_create(
    *,
    requester: Any,
    kind: str = "pod",
    namespace: str = "",
    pod: str = "",
    container: str = "",
    node: str = "",
    image: str,
    profile: str,
    reason: str,
    duration_minutes: Any,
    origin: AuditOrigin | None,
    ticket: str = "",
    copy: dict[str, Any] | None = None,
) -> DebugRequest:
    """Validate against the policy and the live cluster, then create the request (approved at
    once when its rule says `approvals: 0`).

    Raises ValidationError({field: [messages]}); nothing is written then.
    """
    if not getattr(requester, "is_authenticated", False) or not requester.is_active:
        raise PermissionDenied("Sign in to request debug access.")
    # The cluster is read before the transaction: no lock is held across network calls. Its
    # dry runs name whom they are for in the cluster's audit log (portal/kube/useragent.py).
    with acting_for(None, requester.get_username()):
        clean = validate_request(kind=kind, namespace=namespace, pod=pod, container=container, node=node, image=image,
                                 profile=profile, reason=reason, duration_minutes=duration_minutes, ticket=ticket,
                                 copy=copy)
    return _create(requester=requester, clean=clean, origin=origin)


def request_preview(
    *, requester: Any, kind: str = "pod", namespace: str = "", pod: str = "", container: str = "", node: str = "",
    image: str, profile: str, reason: str, duration_minutes: Any, ticket: str = "", copy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What would apply to this request (its rule), or the same ValidationError a create raises.

    Writes nothing. The reason may still be empty: the form previews as the user types.
    """
    if not getattr(requester, "is_authenticated", False) or not requester.is_active:
        raise PermissionDenied("Sign in to request debug access.")
    with acting_for(None, requester.get_username()):
        clean = validate_request(kind=kind, namespace=namespace, pod=pod, container=container, node=node, image=image,
                                 profile=profile, reason=reason or "(preview)", duration_minutes=duration_minutes,
                                 ticket=ticket, copy=copy)
    assert clean.rule is not None
    snap = policy.snapshot(clean.rule, policy.current(), kind=clean.kind, profile=clean.profile)
    return policy_view(snap, approvals=0)


def policy_view(snap: dict[str, Any], *, approvals: int) -> dict[str, Any]:
    """The `policy` object of the JSON API (a request's, or a preview's)."""
    return {
        "rule": snap.get("rule", ""),
        "approvals_required": int(snap.get("approvals_required", 1)),
        "approvals": approvals,
        "approver_groups": list(snap.get("approver_groups", [])),
        "max_duration_minutes": snap.get("max_duration_minutes"),
        "ticket_required": bool(snap.get("ticket_required", False)),
        "clock": snap.get("clock", "approval"),
        "approval_reauth_minutes": snap.get("approval_reauth_minutes"),
        "approval_webauthn": bool(snap.get("approval_webauthn", False)),
        "summary": snap.get("summary", ""),
    }


def record_policy_loaded(current: Policy) -> None:
    """`policy.loaded` in the audit trail whenever the policy differs from the last one recorded.

    Called inside the request's transaction, so the first request under a new policy carries
    it; two processes starting at once may both record it (harmless: the same hash twice).
    """
    if _recorded_sha.get("sha256") == current.sha256:
        return
    last = AuditEvent.objects.filter(action="policy.loaded").order_by("-id").values_list("data", flat=True).first()
    if not last or last.get("sha256") != current.sha256:
        record_event(action="policy.loaded", actor=None, data={
            "sha256": current.sha256, "source": current.source, "rules": [r.name for r in current.rules]})
    transaction.on_commit(lambda: _recorded_sha.update(sha256=current.sha256))


_recorded_sha: dict[str, str] = {}  # what this process has seen recorded


def _locked(request_id: uuid.UUID | str) -> DebugRequest:
    """The request, row-locked for this transaction (raises DebugRequest.DoesNotExist)."""
    return DebugRequest.objects.select_for_update().get(pk=request_id)


def _expire(req: DebugRequest) -> None:
    _move(req, RequestStatus.EXPIRED)
    req.decided_at = timezone.now()
    req.save(update_fields=["status", "decided_at"])
    record_event(action="request.expired", actor=None, request=req, data={"expired_at": req.expires_at.isoformat()})
    outbox.enqueue(Event.REQUEST_EXPIRED, request=req)
    _publish(req)


def expire_if_due(*, request_id: uuid.UUID | str, now: datetime | None = None) -> bool:
    """Expire this request if it is pending past its deadline; True if it did. Own transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        try:
            req = _locked(request_id)
        except DebugRequest.DoesNotExist:
            return False
        if req.status != RequestStatus.PENDING or req.expires_at > now:
            return False
        _expire(req)
        return True


def expire_pending(*, now: datetime | None = None) -> int:
    """Expire every pending request past its deadline; return how many."""
    now = now or timezone.now()
    due = DebugRequest.objects.filter(status=RequestStatus.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    return sum(1 for pk in list(due) if expire_if_due(request_id=pk, now=now))


def _check_decider(req: DebugRequest, approver: Any) -> None:
    """Role and ownership first (PermissionDenied), then state (RequestConflict)."""
    if not permissions.may_approve(approver, req):
        groups = ", ".join(permissions.approver_groups_of(req))
        rule = (req.policy or {}).get("rule")
        raise PermissionDenied(f"Only members of {groups} may decide this request{f' (rule {rule})' if rule else ''}.")
    if req.requester_id == approver.pk:
        raise PermissionDenied("You can't decide your own request.")
    if req.status != RequestStatus.PENDING:
        raise RequestConflict(f"This request is already {req.status}.")
    if req.decisions.filter(approver=approver).exists():
        raise RequestConflict("You already decided on this request.")


def _clean_comment(comment: str, *, required: bool) -> str:
    comment = (comment or "").strip()
    if required and not comment:
        raise ValidationError({"comment": ["Say why you deny the request (the requester sees this)."]})
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ValidationError({"comment": [f"Keep the comment under {COMMENT_MAX_LENGTH} characters."]})
    return comment


def needs_security_key(req: DebugRequest) -> bool:
    return stepup.needs_security_key(req.policy)


def request_approve(*, request_id: uuid.UUID | str, approver: Any, comment: str = "", origin: AuditOrigin | None,
                    proof: Proof = UNKNOWN) -> DebugRequest:
    """Record one approval; once approvals_required are in, approve and start the session.

    Decided once: the row lock makes a second approver (or a second click) see the outcome
    of the first and get RequestConflict. `proof`: how the approver last proved who they are,
    checked against the rule's approval_reauth_minutes and kept in the audit event.
    """
    comment = _clean_comment(comment, required=False)
    expire_if_due(request_id=request_id)
    with transaction.atomic():
        req = _locked(request_id)
        _check_decider(req, approver)
        stepup.check(req.policy, proof, f"request:{req.pk}")
        Decision.objects.create(
            request=req, approver=approver, verdict=Verdict.APPROVE, comment=comment, created_at=timezone.now()
        )
        votes = req.decisions.filter(verdict=Verdict.APPROVE).count()
        record_event(
            action="request.approval_recorded",
            actor=approver,
            request=req,
            origin=origin,
            data={"comment": comment, "approvals": votes, "approvals_required": req.approvals_required,
                  "approver_proof": proof.as_audit()},
        )
        if votes >= req.approvals_required:
            _approve_now(req, actor=approver, origin=origin, data={"comment": comment, "approvals": votes})
        _publish(req)
        return req


def request_deny(*, request_id: uuid.UUID | str, approver: Any, comment: str, origin: AuditOrigin | None) -> DebugRequest:
    """One deny ends the request."""
    comment = _clean_comment(comment, required=True)
    expire_if_due(request_id=request_id)
    with transaction.atomic():
        req = _locked(request_id)
        _check_decider(req, approver)
        Decision.objects.create(request=req, approver=approver, verdict=Verdict.DENY, comment=comment, created_at=timezone.now())
        _move(req, RequestStatus.DENIED)
        req.decided_at = timezone.now()
        req.save(update_fields=["status", "decided_at"])
        record_event(action="request.denied", actor=approver, request=req, origin=origin, data={"comment": comment})
        outbox.enqueue(Event.REQUEST_DENIED, request=req, actor=approver, detail={"comment": comment})
        _publish(req)
        return req


def request_cancel(*, request_id: uuid.UUID | str, user: Any, origin: AuditOrigin | None) -> DebugRequest:
    """The requester withdraws a pending request."""
    expire_if_due(request_id=request_id)
    with transaction.atomic():
        req = _locked(request_id)
        if req.requester_id != getattr(user, "pk", None) or not permissions.can_view_request(user, req):
            raise PermissionDenied("Only the requester can cancel a request.")
        if req.status != RequestStatus.PENDING:
            raise RequestConflict(f"This request is already {req.status}.")
        _move(req, RequestStatus.CANCELLED)
        req.decided_at = timezone.now()
        req.save(update_fields=["status", "decided_at"])
        record_event(action="request.cancelled", actor=user, request=req, origin=origin)
        _publish(req)
        return req
