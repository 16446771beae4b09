"""Request services: validation, state machine, audit, policy, expiry, decided-once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from approvals import services
from approvals.choices import REQUEST_MOVES, RequestStatus
from approvals.models import DebugRequest, Decision
from portal.audit import AuditOrigin, verify_chain
from portal.models import AuditEvent
from sessions.models import DebugSession
from tests.conftest import TARGET_CONTAINER

ORIGIN = AuditOrigin(ip="203.0.113.7", user_agent="pytest")


def create(alice: Any, pod_name: str, **overrides: Any) -> DebugRequest:
    args: dict[str, Any] = {
        "requester": alice,
        "namespace": "default",
        "pod": pod_name,
        "container": TARGET_CONTAINER,
        "image": "busybox",
        "profile": "general",
        "reason": "502s from the checkout page",
        "duration_minutes": 15,
        "origin": ORIGIN,
    }
    args.update(overrides)
    return services.request_create(**args)


def actions(req: DebugRequest) -> list[str]:
    return list(AuditEvent.objects.filter(request=req).order_by("id").values_list("action", flat=True))


# --- create + validation -----------------------------------------------------------------


def test_it_creates_a_pending_request_with_its_audit_event(alice: Any, nginx_pod: str) -> None:
    req = create(alice, nginx_pod)
    assert req.status == RequestStatus.PENDING
    assert req.expires_at > timezone.now()
    event = AuditEvent.objects.get(request=req)
    assert (event.action, event.actor, event.source_ip, event.user_agent) == ("request.created", alice, "203.0.113.7", "pytest")
    assert event.data["pod"] == nginx_pod and event.data["reason"] == "502s from the checkout page"
    assert event.data["rule"] == "default" and event.data["policy_sha256"] == req.policy["policy_sha256"]
    # The first request under a policy also records the policy itself.
    loaded = AuditEvent.objects.get(action="policy.loaded")
    assert loaded.data["sha256"] == req.policy["policy_sha256"] and loaded.data["rules"] == ["default"]
    assert verify_chain() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"namespace": "Bad_NS"}, "namespace", "not a valid namespace"),
        ({"namespace": "nope"}, "namespace", "does not exist"),
        ({"pod": "no-such-pod"}, "pod", "does not exist"),
        ({"container": "sidecar"}, "container", "has no container 'sidecar'"),
        ({"image": "alpine"}, "image", "Rule default allows only these debug images: busybox"),
        ({"profile": "root"}, "profile", "Choose a profile"),
        ({"reason": "   "}, "reason", "Say why"),
        ({"reason": "x" * 2001}, "reason", "under 2000"),
        ({"duration_minutes": 0}, "duration_minutes", "between 1 and"),
        ({"duration_minutes": 10_000}, "duration_minutes", "between 1 and"),
        ({"duration_minutes": "soon"}, "duration_minutes", "whole number"),
        ({"duration_minutes": None}, "duration_minutes", "whole number"),
        ({"kind": "node", "node": "no-such-node", "namespace": "", "pod": "", "container": ""}, "node", "does not exist"),
        ({"kind": "vm"}, "kind", "Unknown kind"),
    ],
)
def test_it_rejects_bad_input_and_writes_nothing(
    alice: Any, nginx_pod: str, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        create(alice, nginx_pod, **overrides)
    assert fragment in " ".join(info.value.message_dict[field])
    assert DebugRequest.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_it_reports_every_bad_field_at_once(alice: Any, kube: Any) -> None:
    with pytest.raises(ValidationError) as info:
        services.request_create(
            requester=alice,
            namespace="",
            pod="",
            container="",
            image="",
            profile="",
            reason="",
            duration_minutes=None,
            origin=None,
        )
    assert set(info.value.message_dict) == {"namespace", "pod", "container", "image", "profile", "reason", "duration_minutes"}


def test_an_unreachable_cluster_is_a_clear_error_not_a_crash(alice: Any, nginx_pod: str, kube: Any) -> None:
    kube.faults.add(503, path="^/api/v1/namespaces$", message="apiserver overloaded")
    with pytest.raises(ValidationError) as info:
        create(alice, nginx_pod)
    assert "can't be checked right now" in info.value.message_dict["__all__"][0]
    assert DebugRequest.objects.count() == 0


# --- state machine -----------------------------------------------------------------------


def test_the_state_machine_only_leaves_pending() -> None:
    assert REQUEST_MOVES[RequestStatus.PENDING] == {
        RequestStatus.APPROVED,
        RequestStatus.DENIED,
        RequestStatus.EXPIRED,
        RequestStatus.CANCELLED,
    }
    for final in (RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.EXPIRED, RequestStatus.CANCELLED):
        assert REQUEST_MOVES[final] == frozenset()


@pytest.mark.parametrize("final", [RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.EXPIRED, RequestStatus.CANCELLED])
def test_no_move_out_of_a_final_state(final: str, alice: Any, bob: Any, make_request: Any) -> None:
    req = make_request(alice, status=final)
    with pytest.raises(services.RequestConflict):
        services.request_approve(request_id=req.pk, approver=bob, origin=ORIGIN)
    with pytest.raises(services.RequestConflict):
        services.request_deny(request_id=req.pk, approver=bob, comment="no", origin=ORIGIN)
    with pytest.raises(services.RequestConflict):
        services.request_cancel(request_id=req.pk, user=alice, origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == final
    assert not Decision.objects.exists() and not AuditEvent.objects.exists()


def test_approval_creates_the_session_and_audits_vote_and_outcome(alice: Any, bob: Any, make_request: Any) -> None:
    req = make_request(alice)
    services.request_approve(request_id=req.pk, approver=bob, comment="go", origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.decided_at is not None
    assert actions(req) == ["request.approval_recorded", "request.approved", "session.created"]
    session = DebugSession.objects.get(request=req)
    assert session.status == "provisioning" and session.container_name.startswith("debugger-")
    assert AuditEvent.objects.get(action="request.approved").actor == bob
    verify_chain()


def test_deny_needs_a_comment_and_ends_the_request(alice: Any, bob: Any, make_request: Any) -> None:
    req = make_request(alice)
    with pytest.raises(ValidationError):
        services.request_deny(request_id=req.pk, approver=bob, comment="  ", origin=ORIGIN)
    services.request_deny(request_id=req.pk, approver=bob, comment="use staging", origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.DENIED
    assert actions(req) == ["request.denied"]
    assert not DebugSession.objects.exists()


def test_it_rejects_deciding_your_own_request(bob: Any, make_request: Any) -> None:
    req = make_request(bob)
    with pytest.raises(PermissionDenied, match="your own"):
        services.request_approve(request_id=req.pk, approver=bob, origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING


@pytest.mark.parametrize("who", ["alice", "dave", "eve", "admin"])
def test_only_approvers_decide(who: str, people: Any, make_request: Any) -> None:
    req = make_request(people.carol)
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=req.pk, approver=getattr(people, who), origin=ORIGIN)
    with pytest.raises(PermissionDenied):
        services.request_deny(request_id=req.pk, approver=getattr(people, who), comment="no", origin=ORIGIN)
    assert not AuditEvent.objects.exists()


def test_only_the_requester_cancels(alice: Any, bob: Any, eve: Any, make_request: Any) -> None:
    req = make_request(alice)
    for other in (bob, eve):
        with pytest.raises(PermissionDenied):
            services.request_cancel(request_id=req.pk, user=other, origin=ORIGIN)
    services.request_cancel(request_id=req.pk, user=alice, origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.CANCELLED and actions(req) == ["request.cancelled"]


# --- policy ------------------------------------------------------------------------------


def test_two_approvals_when_policy_requires_two(alice: Any, bob: Any, carol: Any, make_request: Any) -> None:
    req = make_request(alice, approvals_required=2)
    services.request_approve(request_id=req.pk, approver=bob, origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING and not DebugSession.objects.exists()
    with pytest.raises(services.RequestConflict, match="already decided"):
        services.request_approve(request_id=req.pk, approver=bob, origin=ORIGIN)
    services.request_approve(request_id=req.pk, approver=carol, origin=ORIGIN)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert actions(req) == ["request.approval_recorded", "request.approval_recorded", "request.approved", "session.created"]


def test_new_requests_take_approvals_required_from_their_rule(alice: Any, nginx_pod: str, use_policy: Any) -> None:
    use_policy("rules: [{name: two, approvals: 2}]")
    req = create(alice, nginx_pod)
    assert req.approvals_required == 2 and req.policy["rule"] == "two"


def test_auto_approve_for_a_zero_approval_rule_on_namespace_and_profile(alice: Any, nginx_pod: str, use_policy: Any) -> None:
    use_policy("""
rules:
  - {name: self-service, match: {namespace: [default], profile: [restricted], kind: [pod]}, approvals: 0}
  - {name: default}
""")
    req = create(alice, nginx_pod, profile="restricted")
    assert req.status == RequestStatus.APPROVED and req.auto_approved
    approved = AuditEvent.objects.get(request=req, action="request.approved")
    assert approved.actor is None and approved.data["by"] == "policy" and approved.data["rule"] == "self-service"
    assert DebugSession.objects.filter(request=req).exists()
    # The same namespace with a more powerful profile still needs a human.
    other = create(alice, nginx_pod, profile="sysadmin")
    assert other.status == RequestStatus.PENDING and not other.auto_approved and other.policy["rule"] == "default"


# --- expiry ------------------------------------------------------------------------------


def test_expire_pending_expires_only_overdue_requests(alice: Any, make_request: Any) -> None:
    overdue = make_request(alice, expires_at=timezone.now() - timedelta(seconds=1))
    fresh = make_request(alice)
    assert services.expire_pending() == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == (RequestStatus.EXPIRED, RequestStatus.PENDING)
    assert actions(overdue) == ["request.expired"]
    assert services.expire_pending() == 0


def test_an_expired_request_cannot_be_approved(alice: Any, bob: Any, make_request: Any) -> None:
    req = make_request(alice, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.RequestConflict, match="expired"):
        services.request_approve(request_id=req.pk, approver=bob, origin=ORIGIN)
    req.refresh_from_db()
    # The lazy check's expiry stays, even though the approval failed.
    assert req.status == RequestStatus.EXPIRED and actions(req) == ["request.expired"]
    assert not DebugSession.objects.exists()


# --- live events -------------------------------------------------------------------------


def test_changes_are_published_after_commit(
    alice: Any, bob: Any, make_request: Any, django_capture_on_commit_callbacks: Any
) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("approvals", channel)
    req = make_request(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_deny(request_id=req.pk, approver=bob, comment="no", origin=ORIGIN)
    message = async_to_sync(layer.receive)(channel)
    assert message == {"type": "request.changed", "id": str(req.pk), "status": "denied"}
