"""The request form and its live cluster lookups, against a real kubesim over HTTPS.

Each bad field gets its own message on that field, and nothing is written on error.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from approvals.choices import RequestStatus
from approvals.models import DebugRequest
from portal.kube import reset_client
from portal.kube.config import reset as reset_connection
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def valid_post(nginx_pod: str, **overrides: str) -> dict[str, str]:
    data = {
        "namespace": "default",
        "pod": nginx_pod,
        "container": "distroless-nginx-ctr",
        "image": "busybox",
        "profile": "general",
        "reason": "nginx workers are stuck",
        "duration_minutes": "30",
    }
    data.update(overrides)
    return data


def field_errors(resp) -> dict[str, list[str]]:
    form = resp.context["form"]
    return {name: list(errors) for name, errors in form.errors.items()}


# --- cluster lookups ----------------------------------------------------------------------
def test_namespaces_come_from_the_cluster(alice_client, kube):
    resp = alice_client.get(reverse("cluster_namespaces"))
    assert resp.status_code == 200
    assert {"default", "payments", "kube-system"} <= set(resp.json()["items"])


def test_pods_and_containers_come_from_the_cluster(alice_client, nginx_pod):
    assert re.match(r"^distroless-nginx-[a-z0-9]+-[a-z0-9]+$", nginx_pod)
    resp = alice_client.get(reverse("cluster_containers", args=["default", nginx_pod]))
    assert resp.status_code == 200
    assert resp.json() == {"items": ["distroless-nginx-ctr"]}


def test_unknown_pod_is_a_clear_404(alice_client, kube):
    resp = alice_client.get(reverse("cluster_containers", args=["default", "no-such-pod"]))
    assert resp.status_code == 404
    assert resp.json() == {"error": "Pod default/no-such-pod does not exist."}


def test_invalid_names_never_reach_the_cluster(alice_client, kube):
    resp = alice_client.get("/cluster/namespaces/Bad_NS/pods")
    assert resp.status_code == 400
    assert "not a valid namespace name" in resp.json()["error"]


# Fault injection gets a kubesim of its own (fresh_kube), so the shared one stays healthy.
def test_cluster_failure_is_a_clear_message_without_secrets(alice_client, fresh_kube):
    cluster = fresh_kube
    cluster.faults.add(500, path="^/api/v1/namespaces$", message="etcd is on fire")
    resp = alice_client.get(reverse("cluster_namespaces"))
    assert resp.status_code == 503
    body = resp.content.decode()
    assert "The cluster can't be reached right now" in resp.json()["error"]
    assert cluster.token not in body
    assert "Traceback" not in body


def test_forbidden_lookup_is_reported(alice_client, fresh_kube):
    cluster = fresh_kube
    cluster.faults.add(403, path="^/api/v1/namespaces/payments/pods$", message='pods is forbidden: User "ephemera" cannot list')
    resp = alice_client.get(reverse("cluster_pods", args=["payments"]))
    assert resp.status_code == 502
    assert "refused" in resp.json()["error"]
    assert cluster.token not in resp.content.decode()


def test_missing_cluster_config_hides_details(alice_client, settings, tmp_path):
    settings.EPHEMERA_KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    reset_client()
    reset_connection()
    try:
        resp = alice_client.get(reverse("cluster_namespaces"))
    finally:
        reset_client()
        reset_connection()
    assert resp.status_code == 503
    assert resp.json() == {"error": "The portal has no working cluster connection. Ask an administrator."}


# --- the form -----------------------------------------------------------------------------
def test_form_renders_allowlist_profiles_and_bounds(alice_client, use_policy):
    use_policy("{images: [busybox, nicolaka/netshoot], rules: [{name: default, max_duration_minutes: 90}]}")
    body = alice_client.get(reverse("request_new")).content.decode()
    assert '<option value="busybox" selected>busybox</option>' in body
    assert '<option value="nicolaka/netshoot">' in body
    for profile in ("general", "baseline", "restricted", "netadmin", "sysadmin"):
        assert f'id="id_profile_{profile}"' in body
    assert 'value="general" id="id_profile_general"\n                 checked' in body
    assert 'max="90"' in body
    assert "At most 90 minutes" in body


def test_valid_request_is_created_and_shown(alice_client, alice, nginx_pod):
    resp = alice_client.post(reverse("request_new"), valid_post(nginx_pod))
    assert resp.status_code == 302
    req = DebugRequest.objects.get()
    assert resp["Location"] == reverse("request_detail", args=[req.pk])
    assert (req.requester, req.namespace, req.pod, req.container) == (alice, "default", nginx_pod, "distroless-nginx-ctr")
    assert req.status == RequestStatus.PENDING
    detail = alice_client.get(resp["Location"]).content.decode()
    assert "sent to the approvers" in detail
    assert "nginx workers are stuck" in detail


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("namespace", {"namespace": "Bad_NS!"}),
        ("namespace", {"namespace": "no-such-namespace"}),
        ("pod", {"pod": "no-such-pod"}),
        ("pod", {"pod": "UPPER/../x"}),
        ("container", {"container": "no-such-container"}),
        ("image", {"image": "evil.example/rootkit:latest"}),
        ("profile", {"profile": "legacy"}),
        ("reason", {"reason": "   "}),
        ("duration_minutes", {"duration_minutes": "100000"}),
        ("duration_minutes", {"duration_minutes": "0"}),
        ("duration_minutes", {"duration_minutes": "soon"}),
    ],
)
def test_each_bad_field_gets_its_own_message_and_nothing_is_written(alice_client, nginx_pod, field, overrides):
    events_before = AuditEvent.objects.count()  # the fixture's sign-in is one
    resp = alice_client.post(reverse("request_new"), valid_post(nginx_pod, **overrides))
    assert resp.status_code == 400
    errors = field_errors(resp)
    assert field in errors, errors
    assert all(msg.strip() for msg in errors[field])
    # The message is rendered next to its field, with aria wiring.
    body = resp.content.decode()
    assert f'id="err_{field}"' in body
    assert not DebugRequest.objects.exists()
    assert AuditEvent.objects.count() == events_before


def test_submitted_values_are_kept_after_an_error(alice_client, nginx_pod):
    resp = alice_client.post(reverse("request_new"), valid_post(nginx_pod, reason=""))
    body = resp.content.decode()
    assert f'data-initial="{nginx_pod}"' in body
    assert 'data-initial="distroless-nginx-ctr"' in body


@pytest.mark.parametrize("who", ["alice", "bob", "dave", "eve", "admin_user"])
def test_every_signed_in_user_may_list_the_cluster(request, kube, who):
    client = Client()
    client.force_login(request.getfixturevalue(who))
    for url in ("/cluster/namespaces", "/cluster/namespaces/default/pods"):
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.content)
        assert resp.json()["items"]


def test_cluster_lookups_are_get_only(alice_client, kube):
    assert alice_client.post(reverse("cluster_namespaces")).status_code == 405


def test_a_copy_request_from_the_form(alice_client, kube):
    """The form's third choice (issue 15): the copy's options from its text fields."""
    post = {"kind": "copy", "namespace": "payments", "pod": "ledger-worker-6b8d7f9c5-m4n7p", "container": "worker",
            "image": "busybox", "profile": "general", "reason": "crashes at start", "duration_minutes": "15",
            "copy_command": "sleep 'in finity'", "copy_set_image": "worker=busybox", "copy_share_processes": "on"}
    resp = alice_client.post(reverse("request_new"), post)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    req = DebugRequest.objects.get()
    assert (req.kind, req.pod, req.container) == ("copy", "ledger-worker-6b8d7f9c5-m4n7p", "worker")
    assert req.copy_options == {"command": ["sleep", "in finity"], "set_image": {"worker": "busybox"},
                                "share_processes": True, "same_node": False}
    assert req.target_label == "copy of payments/ledger-worker-6b8d7f9c5-m4n7p:worker"
    bad = alice_client.post(reverse("request_new"), {**post, "copy_set_image": "worker busybox"})
    assert bad.status_code == 400
    assert "container=image" in bad.content.decode()
    unquoted = alice_client.post(reverse("request_new"), {**post, "copy_command": "sleep 'infinity"})
    assert unquoted.status_code == 400 and "can&#x27;t be read" in unquoted.content.decode()
    assert DebugRequest.objects.count() == 1


def test_help_text_backticks_are_shown_as_code(alice_client, kube):
    body = alice_client.get(reverse("request_new")).content.decode()
    assert "<code>chroot /host</code>" in body and "`chroot /host`" not in body
