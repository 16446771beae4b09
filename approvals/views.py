"""Pages of debug requests: the request form, a request's detail and decision, the approvals queue.

Views stay thin: they parse input, ask portal.permissions, and call approvals.services (the
same functions the API uses). Requests a user may not see are 404; actions they may not
take are 403.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import selectors, services
from approvals.choices import RequestKind, RequestStatus, Verdict
from approvals.forms import DebugRequestForm, DecisionForm
from approvals.models import DebugRequest
from portal import permissions
from portal.audit import AuditOrigin
from portal.kube import KubeClient, KubeError, KubeForbidden, KubeNotFound, get_client
from portal.kube.config import KubeConfigError
from portal.kube.specs import NODE_PROFILE_HELP
from portal.sso import security_keys, stepup

logger = logging.getLogger(__name__)


def _visible_request(request: HttpRequest, request_id: uuid.UUID) -> DebugRequest:
    """The request if this user may see it; otherwise 404, so ids of others' requests leak nothing."""
    req = get_object_or_404(DebugRequest.objects.select_related("requester"), pk=request_id)
    if not permissions.can_view_request(request.user, req):
        raise Http404("No such request")
    return req


def can_see_queue(user: object) -> bool:
    """Who may open the approvals queue (and so be sent back to it after a decision)."""
    return permissions.is_approver(user) or permissions.is_admin(user)


def _require_approver(request: HttpRequest) -> None:
    if not can_see_queue(request.user):
        raise PermissionDenied("Only approvers can see the approvals queue")


# The target fields the page shows for each kind; the others are hidden (CSS), so their
# errors would go unseen there.
_SHOWN_FOR_KIND: dict[str, set[str]] = {RequestKind.NODE: {"node"}, RequestKind.POD: {"namespace", "pod", "container"},
                                         RequestKind.COPY: {"namespace", "pod", "container"}}
# The copy's options, as the service names them -> the form's fields.
_COPY_FIELDS = {"command": "copy_command", "set_image": "copy_set_image", "share_processes": "copy_share_processes",
                "same_node": "copy_same_node"}
_TARGET_FIELDS = {"node", "namespace", "pod", "container"}


def _apply_errors(form: DebugRequestForm, exc: ValidationError, *, kind: str) -> None:
    """Put the service's field errors on the matching form fields; others on the form.

    An error on a target field the page hides for the chosen kind (a node given with a pod
    request) is shown at the top of the form as well, or the requester could not see it.
    """
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    shown = _SHOWN_FOR_KIND.get(kind, _TARGET_FIELDS)
    for field, errors in exc.message_dict.items():
        field = _COPY_FIELDS.get(field, field)
        form.add_error(field if field in form.fields else None, errors)
        if field in _TARGET_FIELDS and field not in shown:
            form.add_error(None, errors)


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    form = DebugRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        kind = data["kind"] or RequestKind.POD
        copy, copy_errors = form.copy_options() if kind == RequestKind.COPY else (None, {})
        try:
            if copy_errors:
                raise ValidationError(copy_errors)
            req = services.request_create(
                requester=request.user,
                kind=kind,
                copy=copy,
                node=data["node"],
                namespace=data["namespace"],
                pod=data["pod"],
                container=data["container"],
                image=data["image"],
                profile=data["profile"],
                reason=data["reason"],
                duration_minutes=data["duration_minutes"],
                ticket=data["ticket"],
                origin=AuditOrigin.from_request(request),
            )
        except ValidationError as exc:
            _apply_errors(form, exc, kind=kind)
        else:
            if req.status == RequestStatus.APPROVED:
                messages.success(request, "Your request was approved automatically; the debug container is being prepared.")
            else:
                messages.success(request, "Your request was sent to the approvers.")
            return redirect("request_detail", request_id=req.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "approvals/request_form.html",
        {
            "form": form,
            "images": form.image_choices(),
            "profiles": form.profile_choices(),
            "max_duration": form.max_duration(),
            "nodes": _live_nodes(),
            "node_profile_help": NODE_PROFILE_HELP,
        },
        status=status,
    )


def _live_nodes() -> list[str]:
    """The cluster's nodes for the form's node choice; none (and a log line) if it can't be read."""
    try:
        return [n.name for n in get_client().list_nodes()]
    except (KubeError, KubeConfigError) as exc:
        logger.warning("listing nodes for the request form failed: %s", type(exc).__name__)
        return []


def _policy_of(req: DebugRequest) -> dict[str, Any]:
    """What the request's rule says and how far it got (`policy` of the JSON API): its name,
    "1 of 2" approvals, the groups that decide it, the ticket it asked for. From the snapshot
    the request was made under, so a changed policy file doesn't rewrite a pending request."""
    approvals = sum(1 for d in req.decisions.all() if d.verdict == Verdict.APPROVE)  # prefetched on lists
    view = services.policy_view({"approvals_required": req.approvals_required, **(req.policy or {})}, approvals=approvals)
    view["approver_groups"] = permissions.approver_groups_of(req)  # requests older than the policy: the default group
    return view


@login_required
@require_GET
def request_detail(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    req = _visible_request(request, request_id)
    session = getattr(req, "session", None) if req.status == RequestStatus.APPROVED else None
    return render(
        request,
        "approvals/request_detail.html",
        {
            "req": req,
            "policy": _policy_of(req),
            "open_sessions": selectors.open_sessions_on_same_target([req])[req.pk],
            "decisions": req.decisions.select_related("approver"),
            "session": session,
            "can_decide": permissions.can_decide(request.user, req),
            "can_cancel": req.requester_id == request.user.pk and req.status == RequestStatus.PENDING,
            "decision_form": DecisionForm(),
        },
    )


@login_required
@require_POST
def request_decide(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    req = _visible_request(request, request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        if "verdict" in form.errors:
            messages.error(request, "Choose approve or deny.")
        for error in form.errors.get("comment", []):
            messages.error(request, f"Comment: {error}")
        return redirect("request_detail", request_id=req.pk)
    verdict, comment = form.cleaned_data["verdict"], form.cleaned_data["comment"]
    origin = AuditOrigin.from_request(request)
    proof = stepup.proof_of(request)
    if verdict == Verdict.APPROVE and services.needs_security_key(req) and permissions.can_decide(request.user, req):
        try:
            touch = security_keys.verify_approval_touch(request, "request", req.pk, str(request.POST.get("webauthn", "")))
        except security_keys.KeyProblem as exc:
            messages.error(request, f"Nothing was recorded. {exc}")
            return redirect("request_detail", request_id=req.pk)
        proof = replace(proof, key=touch.key_name, key_subject=touch.subject)
    try:
        if verdict == Verdict.APPROVE:
            services.request_approve(request_id=req.pk, approver=request.user, comment=comment, origin=origin,
                                     proof=proof)
            messages.success(request, f"You approved the request of {req.requester.get_username()}.")
        else:
            services.request_deny(request_id=req.pk, approver=request.user, comment=comment, origin=origin)
            messages.success(request, f"You denied the request of {req.requester.get_username()}.")
    except services.StepUpRequired as exc:
        # Through re-authentication and back to the decision (nothing was recorded).
        messages.info(request, str(exc))
        back = reverse("request_detail", kwargs={"request_id": req.pk})
        return redirect(reverse("reauth") + "?" + urlencode({"next": back}))
    except services.RequestConflict:
        messages.error(request, "This request was already decided; nothing was changed.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    # PermissionDenied propagates: Django answers 403.
    next_url = request.POST.get("next", "")
    if next_url == "approvals":
        return redirect("approvals")
    return redirect("request_detail", request_id=req.pk)


@login_required
@require_POST
def approval_key_options(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    """The WebAuthn challenge for approving this request (a rule with approval_webauthn)."""
    req = _visible_request(request, request_id)
    if not permissions.can_decide(request.user, req):
        raise PermissionDenied("You can't decide this request.")
    if not services.needs_security_key(req):
        return JsonResponse({"detail": "This request's rule needs no security key."}, status=409)
    return security_keys.approval_options_for(request, "request", req.pk)


@login_required
@require_POST
def request_cancel(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    req = _visible_request(request, request_id)
    try:
        services.request_cancel(request_id=req.pk, user=request.user, origin=AuditOrigin.from_request(request))
        messages.success(request, "Your request was cancelled.")
    except services.RequestConflict:
        messages.error(request, "This request was already decided; it can no longer be cancelled.")
    return redirect("request_detail", request_id=req.pk)


@dataclass(frozen=True)
class QueueEntry:
    """One pending request as the queue shows it to this approver, with its risk cues."""

    req: DebugRequest
    can_decide: bool
    policy: dict[str, Any]
    # The requester's other requests with a session open on the same pod or node.
    open_sessions: list[DebugRequest]
    # Why this approver gets no decision buttons ("" when they do).
    no_decision_note: str


def _no_decision_note(user: Any, req: DebugRequest, policy_view: dict[str, Any]) -> str:
    """Why `permissions.can_decide` said no, in the order it asks (it decides; this explains)."""
    if not permissions.may_approve(user, req):
        rule = f" (rule {policy_view['rule']})" if policy_view["rule"] else ""
        return f"Only members of {', '.join(policy_view['approver_groups'])} decide this request{rule}."
    if req.requester_id == user.pk:
        return "This is your own request: another approver must decide it."
    if any(d.approver_id == user.pk for d in req.decisions.all()):
        return "You have already decided this request."
    return "This request can no longer be decided."


def _queue_entry(user: Any, req: DebugRequest, open_sessions: list[DebugRequest]) -> QueueEntry:
    can = permissions.can_decide(user, req)
    view = _policy_of(req)
    return QueueEntry(req=req, can_decide=can, policy=view, open_sessions=open_sessions,
                      no_decision_note="" if can else _no_decision_note(user, req, view))


def _pending_context(request: HttpRequest) -> dict[str, object]:
    pending = list(
        DebugRequest.objects.filter(status=RequestStatus.PENDING)
        .select_related("requester")
        .prefetch_related("decisions__approver")
        .order_by("created_at")
    )
    open_sessions = selectors.open_sessions_on_same_target(pending)
    from sessions.extensions import pending_extensions  # sessions depends on approvals, not back

    return {
        "pending": [_queue_entry(request.user, req, open_sessions[req.pk]) for req in pending],
        "decision_form": DecisionForm(),
        "extensions": [
            (ext, permissions.may_approve(request.user, ext.session.request) and ext.session.request.requester_id != request.user.pk)
            for ext in pending_extensions()
        ],
    }


@login_required
@require_GET
def approvals_queue(request: HttpRequest) -> HttpResponse:
    _require_approver(request)
    return render(request, "approvals/approvals.html", _pending_context(request))


@login_required
@require_GET
def approvals_pending_fragment(request: HttpRequest) -> HttpResponse:
    """The pending list alone: approvals.ts re-fetches it on every request.changed event."""
    _require_approver(request)
    return render(request, "approvals/_pending_list.html", _pending_context(request))


# --- Live cluster lookups for the request form ---------------------------------------
# Read-only, for any signed-in user: they list what the portal's service account can see,
# which is what a request may target anyway. Errors become one plain sentence; the
# exception text of portal.kube never carries credentials, and config errors (paths,
# kubeconfig details) stay in the server log.

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _bad_name(kind: str, value: str, pattern: re.Pattern[str], max_len: int) -> JsonResponse | None:
    if len(value) > max_len or not pattern.match(value):
        return JsonResponse({"error": f"{value[:80]!r} is not a valid {kind} name."}, status=400)
    return None


def _cluster_call(fn: Callable[[KubeClient], list[str]], *, not_found: str) -> JsonResponse:
    try:
        return JsonResponse({"items": fn(get_client())})
    except KubeConfigError:
        logger.exception("cluster lookup: the cluster connection is not configured")
        return JsonResponse({"error": "The portal has no working cluster connection. Ask an administrator."}, status=503)
    except KubeNotFound:
        return JsonResponse({"error": not_found}, status=404)
    except KubeForbidden as exc:
        return JsonResponse({"error": f"The cluster refused the lookup: {exc.message}"}, status=502)
    except KubeError as exc:
        return JsonResponse(
            {"error": f"The cluster can't be reached right now ({exc.message}). Try again in a moment."}, status=503
        )


@login_required
@require_GET
def cluster_namespaces(request: HttpRequest) -> JsonResponse:
    return _cluster_call(lambda kube: kube.list_namespaces(), not_found="No namespaces found.")


@login_required
@require_GET
def cluster_pods(request: HttpRequest, namespace: str) -> JsonResponse:
    if bad := _bad_name("namespace", namespace, _DNS_LABEL, 63):
        return bad
    return _cluster_call(
        lambda kube: [p.name for p in kube.list_pods(namespace)],
        not_found=f"Namespace {namespace} does not exist.",
    )


@login_required
@require_GET
def cluster_containers(request: HttpRequest, namespace: str, pod: str) -> JsonResponse:
    if bad := _bad_name("namespace", namespace, _DNS_LABEL, 63) or _bad_name("pod", pod, _DNS_SUBDOMAIN, 253):
        return bad
    return _cluster_call(
        lambda kube: kube.get_pod(namespace, pod).container_names,
        not_found=f"Pod {namespace}/{pod} does not exist.",
    )
