"""The session page and its small status endpoint (live provisioning progress)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from approvals.views import can_see_queue
from portal.audit import AuditOrigin
from portal.kube.specs import NODE_PROFILE_HELP
from portal.permissions import can_end_session, can_use_terminal, can_view_request, is_admin, may_approve
from portal.sso import security_keys, stepup
from portal.validators import forbidden_character_messages
from sessions import extensions, services
from sessions.choices import LIVE_STATUSES
from sessions.files.views import files_context
from sessions.models import DebugSession, Finding, SessionExtension
from sessions.review.views import review_context


def _session_for(user, session_id) -> DebugSession:  # type: ignore[no-untyped-def]
    """The session, or 404 for anyone who may not see its request (hides that it exists)."""
    session = DebugSession.objects.select_related("request", "request__requester").filter(pk=session_id).first()
    if session is None or not can_view_request(user, session.request):
        raise Http404("No such session")
    return session


def _refused(request: HttpRequest, **fields: str) -> bool:
    """Text no database can store is refused before any service sees it (as a flash message)."""
    problems = forbidden_character_messages(fields)
    for problem in problems:
        messages.error(request, problem)
    return bool(problems)


def _extensions(session: DebugSession) -> list[SessionExtension]:
    return list(session.extensions.select_related("decided_by").all()[:20])


def _extension_json(ext: SessionExtension) -> dict[str, Any]:
    return {
        "id": str(ext.pk),
        "minutes": ext.minutes,
        "status": ext.status,
        "status_display": ext.get_status_display(),
        "decided_by": ext.decided_by.get_username() if ext.decided_by else "",
        "comment": ext.comment,
        "reason": ext.reason,
    }


def _status(session: DebugSession, extensions: list[SessionExtension]) -> dict[str, Any]:
    """What the open session page follows (frontend/src/session/): the same facts it renders."""
    return {
        "id": str(session.id),
        "status": session.status,
        "status_display": session.get_status_display(),
        "progress": session.progress,
        "failure_message": session.failure_message,
        "end_reason": session.end_reason,
        "end_message": services.end_message(session) if session.status not in LIVE_STATUSES else "",
        "expires_at": session.expires_at.isoformat() if session.expires_at else None,
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
        # Until the cluster confirms the shell is gone, the page keeps showing the stop's progress.
        "cluster_clean": session.cluster_clean_at is not None,
        # An approver's decision on an extension reaches the requester's open page by this.
        "extensions": [_extension_json(ext) for ext in extensions],
    }


@login_required
@require_GET
def session_detail(request: HttpRequest, session_id) -> HttpResponse:  # type: ignore[no-untyped-def]
    session = _session_for(request.user, session_id)
    is_requester = session.request.requester_id == request.user.pk
    extensions = _extensions(session)
    return render(
        request,
        "sessions/detail.html",
        {
            "session": session,
            "debug_request": session.request,
            "is_requester": is_requester,
            "can_use_terminal": can_use_terminal(request.user, session),
            # Approvers and admins may end someone else's live session, with a reason.
            "can_revoke": not is_requester and session.status in LIVE_STATUSES and can_end_session(request.user, session),
            "end_message": services.end_message(session) if session.status not in LIVE_STATUSES else "",
            "node_profile_help": NODE_PROFILE_HELP.get(session.request.profile, "") if session.request.kind == "node" else "",
            "status_json": _status(session, extensions),
            "can_extend": is_requester and session.status == "running",
            "extensions": extensions,
            # Files in and out (sessions.files): the forms for the requester of a running session,
            # as the rule allows; what moved, for everyone who sees the session.
            **files_context(request.user, session, is_requester=is_requester),
            # Timeline, replay, commands, reviews: by role (sessions.review).
            **review_context(request.user, session),
        },
    )


@login_required
@require_GET
def session_status(request: HttpRequest, session_id) -> JsonResponse:  # type: ignore[no-untyped-def]
    session = _session_for(request.user, session_id)
    return JsonResponse(_status(session, _extensions(session)))


@login_required
@require_POST
def session_end(request: HttpRequest, session_id) -> HttpResponse:  # type: ignore[no-untyped-def]
    """The revoke / admin-end form on the session page; the same service as the API."""
    session = _session_for(request.user, session_id)
    if _refused(request, reason=request.POST.get("reason", "")):
        return redirect("session_detail", session_id=session.pk)
    try:
        services.session_end(
            session_id=session.pk,
            actor=request.user,
            reason=services.end_reason_for(request.user, session),
            origin=AuditOrigin.from_request(request),
            comment=request.POST.get("reason", ""),
            cluster="background",
        )
    except PermissionDenied:
        messages.error(request, "You can't end this session.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The session is ended; its shell is being stopped.")
    return redirect("session_detail", session_id=session.pk)


@login_required
@require_GET
def oversight_page(request: HttpRequest) -> HttpResponse:
    """Admins only: what bypassed the portal (findings are written by the reaper's oversight pass)."""
    if not is_admin(request.user):
        raise PermissionDenied("Only admins can see unmanaged debug access.")
    return render(
        request,
        "sessions/oversight.html",
        {
            "findings": Finding.objects.all()[:500],
            "long_minutes": settings.EPHEMERA_LONG_SESSION_MINUTES,
            "webhook": bool(settings.EPHEMERA_UNMANAGED_WEBHOOK_URL),
        },
    )


@login_required
@require_POST
def session_extend(request: HttpRequest, session_id) -> HttpResponse:  # type: ignore[no-untyped-def]
    """The requester's "ask for more time" form; the same service as the API."""
    session = _session_for(request.user, session_id)
    if _refused(request, minutes=request.POST.get("minutes", ""), reason=request.POST.get("reason", "")):
        return redirect("session_detail", session_id=session.pk)
    try:
        extensions.extension_request(
            session_id=session.pk,
            user=request.user,
            minutes=request.POST.get("minutes"),
            reason=request.POST.get("reason", ""),
            origin=AuditOrigin.from_request(request),
        )
    except PermissionDenied:
        messages.error(request, "Only the requester can ask to extend this session.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except extensions.ExtensionConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Your extension was sent to the approvers.")
    return redirect("session_detail", session_id=session.pk)


@login_required
@require_POST
def extension_key_options(request: HttpRequest, extension_id: uuid.UUID) -> HttpResponse:
    """The WebAuthn challenge for approving this extension (its request's rule has approval_webauthn)."""
    ext = SessionExtension.objects.select_related("session__request").filter(pk=extension_id).first()
    if ext is None or not can_view_request(request.user, ext.session.request):
        raise Http404("No such extension")
    if not may_approve(request.user, ext.session.request) or ext.session.request.requester_id == request.user.pk:
        raise PermissionDenied("You can't decide this extension.")
    if not stepup.needs_security_key(ext.session.request.policy):
        return JsonResponse({"detail": "This session's rule needs no security key."}, status=409)
    return security_keys.approval_options_for(request, "extension", ext.pk)


@login_required
@require_POST
def extension_decide(request: HttpRequest, extension_id) -> HttpResponse:  # type: ignore[no-untyped-def]
    """Approve or deny an extension from the approvals queue."""
    ext = SessionExtension.objects.select_related("session__request").filter(pk=extension_id).first()
    if ext is None or not can_view_request(request.user, ext.session.request):
        raise Http404("No such extension")
    # Back to the queue the form is on; someone who may not see it (the requester, an auditor,
    # an approver just moved to auditors) would find a 403 there instead of the message, so
    # they go to the session's page, which they may see (checked above).
    back = redirect("approvals") if can_see_queue(request.user) else redirect("session_detail", session_id=ext.session_id)
    if _refused(request, comment=request.POST.get("comment", "")):
        return back
    approving = request.POST.get("verdict") == "approve"
    extra: dict[str, Any] = {}
    if approving:
        proof = stepup.proof_of(request)
        if stepup.needs_security_key(ext.session.request.policy):
            try:
                touch = security_keys.verify_approval_touch(request, "extension", ext.pk, str(request.POST.get("webauthn", "")))
            except security_keys.KeyProblem as exc:
                messages.error(request, f"Nothing was recorded. {exc}")
                return back
            proof = replace(proof, key=touch.key_name, key_subject=touch.subject)
        extra["proof"] = proof
    decide = extensions.extension_approve if approving else extensions.extension_deny
    try:
        decide(
            extension_id=ext.pk,
            approver=request.user,
            comment=request.POST.get("comment", ""),
            origin=AuditOrigin.from_request(request),
            **extra,
        )
    except stepup.StepUpRequired as exc:
        messages.info(request, str(exc))
        return redirect(reverse("reauth") + "?" + urlencode({"next": back["Location"]}))
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "You can't decide this extension.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except extensions.ExtensionConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Decision recorded.")
    return back
