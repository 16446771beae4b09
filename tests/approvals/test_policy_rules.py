"""What the rules do, on every path: refusals naming the rule, scoped approvers, two approvers,
the policy object and the preview, first_connect, and the policy's hash in the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from approvals import services
from approvals.choices import RequestStatus
from approvals.models import DebugRequest
from portal.models import AuditEvent
from sessions.models import DebugSession
from tests.approvals.test_services import create

POLICY = """
images: [busybox, "nicolaka/netshoot:v0.13"]
rules:
  - name: node-and-sysadmin
    match: {kind: [node]}
    approvals: 2
    approvers: [sre-leads]
    max_duration_minutes: 30
    ticket: {required: true, pattern: '^INC-[0-9]+$'}
  - name: sysadmin
    match: {profile: [sysadmin]}
    approvals: 2
  - name: payments
    match: {namespace: [payments]}
    approvers: [payments-oncall]
    ticket: {required: true, pattern: '^(INC|CHG)-[0-9]+$'}
  - name: restricted-only
    match: {profile: [restricted], kind: [pod]}
    images: [busybox]
    max_duration_minutes: 20
  - name: default
    approvals: 1
"""


@pytest.fixture
def policy(use_policy: Any) -> Any:
    return use_policy(POLICY)


def _member(user: User, group: str) -> User:
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    user._ephemera_group_names = None  # type: ignore[attr-defined]  # drop the per-object cache
    return User.objects.get(pk=user.pk)


def _payments_pod() -> str:
    from portal.kube import get_client

    return next(p.name for p in get_client().list_pods("payments") if p.name.startswith("payments-api-"))


def _payments(alice: Any, **overrides: Any) -> DebugRequest:
    args = {"namespace": "payments", "container": "api", "ticket": "INC-42"}
    args.update(overrides)
    return create(alice, _payments_pod(), **args)


# --- refusals: a 400 naming the rule, nothing written -----------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"ticket": ""}, "ticket", "Rule payments: A ticket is required."),
        ({"ticket": "JIRA-1"}, "ticket", "Rule payments: The ticket must match ^(INC|CHG)-[0-9]+$."),
        ({"duration_minutes": 121}, "duration_minutes", "between 1 and 120 minutes (rule payments)"),
        ({"image": "alpine"}, "image", "Rule payments allows only these debug images: busybox, nicolaka/netshoot:v0.13."),
    ],
)
def test_a_request_breaking_its_rule_is_refused_naming_it(
    alice: Any, kube: Any, policy: Any, overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _payments(alice, **overrides)
    assert message in " ".join(info.value.message_dict[field])
    assert not DebugRequest.objects.exists() and not AuditEvent.objects.exists()


def test_a_rules_own_images_and_maximum_override_the_defaults(alice: Any, nginx_pod: str, policy: Any) -> None:
    with pytest.raises(ValidationError) as info:
        create(alice, nginx_pod, profile="restricted", image="nicolaka/netshoot:v0.13", duration_minutes=25)
    assert info.value.message_dict["image"] == ["Rule restricted-only allows only these debug images: busybox."]
    assert "between 1 and 20 minutes (rule restricted-only)" in info.value.message_dict["duration_minutes"][0]


def test_a_request_no_rule_matches_is_refused(alice: Any, nginx_pod: str, use_policy: Any, api_client_for: Any) -> None:
    use_policy("rules: [{name: nodes-only, match: {kind: [node]}}]")
    resp = api_client_for(alice).post("/api/v1/requests", {
        "namespace": "default", "pod": nginx_pod, "container": "distroless-nginx-ctr", "image": "busybox",
        "profile": "general", "reason": "x", "duration_minutes": 5}, format="json")
    assert resp.status_code == 400
    assert "No policy rule allows a pod request in namespace default" in str(resp.json())
    assert not DebugRequest.objects.exists()


# --- scoped approvers, on every path ------------------------------------------------------


def test_only_the_rules_approver_groups_may_decide(alice: Any, bob: Any, carol: Any, kube: Any, policy: Any,
                                                   api_client_for: Any) -> None:
    req = _payments(alice)
    assert req.policy["approver_groups"] == ["payments-oncall"] and req.policy["rule"] == "payments"
    # bob is an approver, but not of this rule: 403 through the API, the page and the service.
    resp = api_client_for(bob).post(f"/api/v1/requests/{req.pk}/approve", {}, format="json")
    assert resp.status_code == 403 and "payments-oncall" in resp.json()["detail"]
    assert api_client_for(bob).post(f"/api/v1/requests/{req.pk}/deny", {"comment": "no"}, format="json").status_code == 403
    page = Client()
    page.force_login(bob)
    assert page.post(f"/requests/{req.pk}/decide", {"verdict": "approve"}).status_code == 403
    with pytest.raises(PermissionDenied):
        services.request_deny(request_id=req.pk, approver=bob, comment="no", origin=None)
    # The queue doesn't offer it to bob; it does to the payments on-call.
    assert str(req.pk) not in _decidable_in_queue(bob)
    oncall = _member(carol, "payments-oncall")
    assert str(req.pk) in _decidable_in_queue(oncall)
    resp = api_client_for(oncall).post(f"/api/v1/requests/{req.pk}/approve", {}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"


def _decidable_in_queue(user: User) -> str:
    client = Client()
    client.force_login(user)
    body = client.get("/approvals/").content.decode()
    return body if 'name="verdict"' in body else ""


def test_two_approvers_are_needed_and_one_deny_ends_it(alice: Any, bob: Any, carol: Any, dave: Any, kube: Any,
                                                       policy: Any, api_client_for: Any) -> None:
    leads = [_member(u, "sre-leads") for u in (bob, carol, dave)]
    node = {"kind": "node", "node": "debian-11", "namespace": "", "pod": "", "container": "", "ticket": "INC-7",
            "duration_minutes": 20}
    req = create(alice, "", **node)
    assert (req.approvals_required, req.policy["rule"]) == (2, "node-and-sysadmin")
    first = api_client_for(leads[0]).post(f"/api/v1/requests/{req.pk}/approve", {}, format="json").json()
    assert first["status"] == "pending" and first["policy"]["approvals"] == 1 and first["policy"]["approvals_required"] == 2
    again = api_client_for(leads[0]).post(f"/api/v1/requests/{req.pk}/approve", {}, format="json")
    assert again.status_code == 409  # the same approver twice counts once
    second = api_client_for(leads[1]).post(f"/api/v1/requests/{req.pk}/approve", {}, format="json").json()
    assert second["status"] == "approved" and second["policy"]["approvals"] == 2
    assert DebugSession.objects.filter(request_id=req.pk).count() == 1
    other = create(alice, "", **node)
    api_client_for(leads[0]).post(f"/api/v1/requests/{other.pk}/approve", {}, format="json")
    denied = api_client_for(leads[2]).post(f"/api/v1/requests/{other.pk}/deny", {"comment": "not now"}, format="json")
    assert denied.json()["status"] == "denied"


# --- the policy object, the preview -------------------------------------------------------


def test_the_request_json_carries_its_policy(alice: Any, kube: Any, policy: Any, api_client_for: Any) -> None:
    req = _payments(alice)
    body = api_client_for(alice).get(f"/api/v1/requests/{req.pk}").json()
    assert body["ticket"] == "INC-42"
    assert {k: body["policy"][k] for k in ("rule", "approvals_required", "approvals", "approver_groups",
                                            "max_duration_minutes", "ticket_required")} == {
        "rule": "payments", "approvals_required": 1, "approvals": 0, "approver_groups": ["payments-oncall"],
        "max_duration_minutes": 120, "ticket_required": True}


def test_the_preview_answers_what_would_apply_and_writes_nothing(alice: Any, kube: Any, policy: Any,
                                                                 api_client_for: Any) -> None:
    body = {"node": "debian-11", "image": "busybox", "profile": "sysadmin", "duration_minutes": 30, "ticket": "INC-1"}
    resp = api_client_for(alice).post("/api/v1/requests/preview", body, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["policy"]["summary"] == (
        "rule node-and-sysadmin: 2 approvers from sre-leads, at most 30 minutes, ticket required")
    refused = api_client_for(alice).post("/api/v1/requests/preview", {**body, "duration_minutes": 45}, format="json")
    assert refused.status_code == 400 and "rule node-and-sysadmin" in refused.json()["duration_minutes"][0]
    assert not DebugRequest.objects.exists() and not AuditEvent.objects.exclude(action__startswith="token.").exists()
    assert api_client_for(None).post("/api/v1/requests/preview", body, format="json").status_code in (401, 403)


# --- the policy in the audit trail ---------------------------------------------------------


def test_each_policy_is_recorded_once_and_a_change_again(alice: Any, nginx_pod: str, use_policy: Any) -> None:
    first = use_policy("rules: [{name: default}]")
    create(alice, nginx_pod)
    create(alice, nginx_pod)
    second = use_policy("rules: [{name: default, approvals: 2}]")
    req = create(alice, nginx_pod)
    loaded = list(AuditEvent.objects.filter(action="policy.loaded").order_by("id").values_list("data", flat=True))
    assert [d["sha256"] for d in loaded] == [first.sha256, second.sha256]
    assert req.policy["policy_sha256"] == second.sha256


# --- first_connect ---------------------------------------------------------------------------


def test_a_first_connect_clock_starts_at_the_first_terminal_connect(alice: Any, bob: Any, nginx_pod: str,
                                                                     use_policy: Any, settings: Any) -> None:
    from sessions import services as session_services
    from tests.sessions.test_provision import provision

    use_policy("rules: [{name: default, clock: first_connect}]")
    req = create(alice, nginx_pod, duration_minutes=15)
    services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = provision(DebugSession.objects.get(request=req))
    assert session.status == "running" and session.clock_started_at is None
    # Waiting for the engineer: at most as long as a request waits for its decision.
    waited = session.expires_at - session.started_at
    assert abs(waited - timedelta(minutes=settings.EPHEMERA_REQUEST_TTL_MINUTES)) < timedelta(seconds=5)
    connected_at = timezone.now()
    session = session_services.session_connected(session_id=session.pk, user=alice, origin=None)
    assert session.clock_started_at is not None
    assert abs(session.expires_at - (connected_at + timedelta(minutes=15))) < timedelta(seconds=5)
    assert AuditEvent.objects.filter(session=session, action="session.clock_started").count() == 1
    # A reconnect doesn't restart it.
    again = session_services.session_connected(session_id=session.pk, user=alice, origin=None)
    assert again.expires_at == session.expires_at
    session_services.session_end(session_id=session.pk, actor=alice, reason="user")


def test_extensions_follow_the_rules_approvers(alice: Any, bob: Any, carol: Any, kube: Any, policy: Any) -> None:
    from sessions import extensions

    oncall = _member(carol, "payments-oncall")
    req = _payments(alice)
    services.request_approve(request_id=req.pk, approver=oncall, origin=None)
    session = DebugSession.objects.get(request=req)
    DebugSession.objects.filter(pk=session.pk).update(status="running", started_at=timezone.now(),
                                                      clock_started_at=timezone.now(),
                                                      expires_at=timezone.now() + timedelta(minutes=10))
    ext = extensions.extension_request(session_id=session.pk, user=alice, minutes=5, reason="more", origin=None)
    with pytest.raises(PermissionDenied):
        extensions.extension_approve(extension_id=ext.pk, approver=bob, origin=None)
    assert extensions.extension_approve(extension_id=ext.pk, approver=oncall, origin=None).status == "approved"
    assert RequestStatus.APPROVED == DebugRequest.objects.get(pk=req.pk).status


# --- pre-flight: what the cluster would refuse is refused before anyone approves ----------


def test_a_request_the_cluster_would_refuse_is_a_400_and_nothing_runs(alice: Any, fresh_kube: Any, api_client_for: Any,
                                                                      use_policy: Any) -> None:
    use_policy("rules: [{name: default}]")
    labelled = fresh_kube.kubectl("label", "namespace", "payments", "pod-security.kubernetes.io/enforce=baseline")
    assert labelled.returncode == 0, labelled.stderr
    body = {"namespace": "payments", "pod": "payments-api-5f7b9c6d4-q8wzt", "container": "api", "image": "busybox",
            "profile": "sysadmin", "reason": "checking the api", "duration_minutes": 10}
    client = api_client_for(alice)
    for path in ("/api/v1/requests/preview", "/api/v1/requests"):
        resp = client.post(path, body, format="json")
        assert resp.status_code == 400, (path, resp.content)
        assert resp.json()["profile"] == [
            "namespace payments enforces Pod Security baseline: profile sysadmin is not allowed; try baseline"]
    assert not DebugRequest.objects.exists()
    # The dry run left nothing behind: the pod has no ephemeral container.
    pod = fresh_kube.kubectl("get", "pod", "-n", "payments", body["pod"], "-o", "jsonpath={.spec.ephemeralContainers}")
    assert pod.returncode == 0 and pod.stdout.strip() == ""
    # The profile the cluster allows goes through.
    ok = client.post("/api/v1/requests", {**body, "profile": "baseline"}, format="json")
    assert ok.status_code == 201, ok.content
