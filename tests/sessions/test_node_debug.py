"""Node debugging on kubesim: the pod equals kubectl's for each profile, the terminal works,
ending deletes the pod; requests for nodes are validated against the live cluster."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from approvals import services as request_services
from kubesim.testing import debug_image, run_cluster
from portal.kube import KubeNotFound, get_client, specs
from portal.models import AuditEvent
from sessions import services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from tests.conftest import _forget, _point_at
from tests.sessions.conftest import kubectl_command
from tests.sessions.test_provision import provision, session_pids

NODE = "debian-11"


def node_session(alice: Any, bob: Any, *, profile: str = "general", duration: int = 15) -> DebugSession:
    req = request_services.request_create(
        requester=alice, kind="node", node=NODE, image=debug_image(profile), profile=profile,
        reason="kubelet restarts", duration_minutes=duration, origin=None,
    )
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    return DebugSession.objects.get(request=req)


def _creates(log: Path, *, dry_run: bool = False) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["verb"] == "create" and event.get("objectRef", {}).get("resource") == "pods":
            if ("dryRun=All" in event.get("requestURI", "")) == dry_run:
                found.append(event["requestObject"])
    return found


def pod_gone(namespace: str, pod: str) -> bool:
    try:
        get_client().get_pod_raw(namespace, pod)
    except KubeNotFound:
        return True
    return False


def _wait(predicate: Any, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.mark.parametrize("profile", ["general", "baseline", "restricted", "netadmin", "sysadmin"])
def test_the_node_pod_equals_the_one_kubectl_creates(
    profile: str, settings: Any, alice: Any, bob: Any, tmp_path: Path
, nonroot_image_allowed: None) -> None:
    """Ephemera and the real kubectl (which POSTs protobuf; kubesim decodes it) each debug the
    same node with the same flags; the apiserver audit logs must show the same pod, except
    for the name's random suffix and the labels that tie ours to its session."""
    settings.EPHEMERA_NODE_DEBUG_NAMESPACE = "default"
    ours_log, theirs_log = tmp_path / "ours.log", tmp_path / "theirs.log"
    with run_cluster(tmp_path / "ours", audit_log=ours_log) as ours:
        _point_at(ours, settings)
        try:
            session = provision(node_session(alice, bob, profile=profile))
            assert session.status == SessionStatus.RUNNING, session.failure_message
            assert (session.namespace, session.container_name) == ("default", "debugger")
            assert re.fullmatch(rf"node-debugger-{NODE}-[{specs.NAME_ALPHABET}]{{5}}", session.pod)
            services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
            assert _wait(lambda: pod_gone("default", session.pod))
        finally:
            _forget()
    with run_cluster(tmp_path / "theirs", audit_log=theirs_log) as theirs:
        result = theirs.kubectl(
            "debug", f"node/{NODE}", "-n", "default", "-i", "-t", "--attach=false", f"--image={debug_image(profile)}",
            f"--profile={profile}", f"--env=EPHEMERA_SESSION={session.pk}",
            *kubectl_command(debug_image(profile), services.cluster_time_limit_seconds(session.request)),
        )
        assert result.returncode == 0, result.stderr
    (ours_pod,), (their_pod,) = _creates(ours_log), _creates(theirs_log)
    assert ours_pod["spec"] == their_pod["spec"]
    # The request check dry-ran the same pod first (stand-ins for the session's marker and limit).
    (tried,) = _creates(ours_log, dry_run=True)
    assert tried["spec"]["containers"][0].get("securityContext") == ours_pod["spec"]["containers"][0].get("securityContext")
    assert {k: v for k, v in tried["spec"].items() if k != "containers"} == {
        k: v for k, v in ours_pod["spec"].items() if k != "containers"}
    assert their_pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kubectl-debug"}
    assert ours_pod["metadata"] == {
        "name": session.pod,
        "labels": {"app.kubernetes.io/managed-by": "ephemera", "ephemera.dev/instance": "ephemera", "ephemera.dev/session": str(session.pk)},
    }
    assert re.fullmatch(rf"node-debugger-{NODE}-[{specs.NAME_ALPHABET}]{{5}}", their_pod["metadata"]["name"])
    assert ours_pod["spec"]["nodeName"] == NODE and ours_pod["spec"]["restartPolicy"] == "Never"
    assert ours_pod["spec"].get("hostPID", False) == (profile not in ("baseline", "restricted"))
    privileged = ours_pod["spec"]["containers"][0].get("securityContext", {}).get("privileged", False)
    assert privileged == (profile == "sysadmin")


def test_a_node_request_is_checked_against_the_live_cluster(alice: Any, api_client_for: Any, kube: Any) -> None:
    client = api_client_for(alice)
    body = {"image": "busybox", "profile": "sysadmin", "reason": "disk pressure", "duration_minutes": 10}
    resp = client.post("/api/v1/requests", {**body, "node": "no-such-node"}, format="json")
    assert resp.status_code == 400 and "does not exist" in resp.json()["node"][0]
    resp = client.post("/api/v1/requests", {**body, "node": "Bad_Name"}, format="json")
    assert resp.status_code == 400 and "node" in resp.json()
    assert not AuditEvent.objects.exists()
    resp = client.post("/api/v1/requests", {**body, "node": NODE}, format="json")
    assert resp.status_code == 201, resp.content
    data = resp.json()
    assert (data["kind"], data["node"], data["namespace"], data["pod"]) == ("node", NODE, "", "")


def test_a_node_request_is_never_auto_approved(alice: Any, kube: Any, use_policy: Any) -> None:
    # A policy can't even say otherwise (approvals: 0 on a rule that can match a node stops
    # start-up); the broadest auto-approval it can have still leaves node requests to a human.
    use_policy("""
rules:
  - {name: self, match: {kind: [pod], profile: [baseline, restricted]}, approvals: 0}
  - {name: default}
""")
    req = request_services.request_create(
        requester=alice, kind="node", node=NODE, image="busybox", profile="baseline",
        reason="x", duration_minutes=5, origin=None,
    )
    assert req.status == "pending"


def test_the_session_page_says_what_the_profile_gives_on_the_node(alice: Any, bob: Any, kube: Any) -> None:
    session = node_session(alice, bob, profile="general")
    client = Client()
    client.force_login(alice)
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert "chroot /host" in page and "needs sysadmin" in page
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)


def test_a_failed_node_session_leaves_no_pod(alice: Any, bob: Any, kube: Any, use_policy: Any) -> None:
    use_policy("{images: [busybox, busybox-does-not-exist], rules: [{name: default}]}")
    req = request_services.request_create(
        requester=alice, kind="node", node=NODE, image="busybox-does-not-exist", profile="general",
        reason="x", duration_minutes=5, origin=None,
    )
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = provision(DebugSession.objects.get(request=req))
    assert session.status == SessionStatus.FAILED and "can't be pulled" in session.failure_message
    assert _wait(lambda: pod_gone(session.namespace, session.pod))


def test_the_time_limit_holds_inside_the_cluster_without_the_portal(
    alice: Any, bob: Any, nginx_pod: str, monkeypatch: Any
) -> None:
    """The shell is wrapped in `timeout -s KILL`: with nobody to end the session it still dies."""
    from tests.sessions.test_provision import approved_session

    monkeypatch.setattr(services, "cluster_time_limit_seconds", lambda req: 3)
    session = provision(approved_session(alice, bob, nginx_pod))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    assert _wait(lambda: session_pids(session.pk), 10)
    assert _wait(lambda: not session_pids(session.pk), 15), "timeout should have killed the shell"
    state = get_client().ephemeral_container_state("default", nginx_pod, session.container_name)
    assert state.state == "terminated"
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING  # the portal did nothing; the cluster did it


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_node_request_terminal_end_pod_gone(term_kube: Any, term_users: Any, settings: Any) -> None:
    from portal.tokens import create_token
    from sessions.bridge import protocol
    from tests.sessions.conftest import open_term
    from tests.sessions.test_terminal_lifetime import _ready

    settings.EPHEMERA_NODE_DEBUG_NAMESPACE = "kube-system"

    def create_and_approve() -> str:
        from rest_framework.test import APIClient

        alice, bob = APIClient(), APIClient()
        alice.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(term_users.alice, name='t')}")
        bob.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(term_users.bob, name='t')}")
        resp = alice.post("/api/v1/requests", {"node": NODE, "image": "busybox", "profile": "sysadmin",
                                                "reason": "node disk", "duration_minutes": 10}, format="json")
        assert resp.status_code == 201, resp.content
        assert bob.post(f"/api/v1/requests/{resp.json()['id']}/approve", {}, format="json").status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session = alice.get(f"/api/v1/requests/{resp.json()['id']}").json()["session"]
            if session["status"] == "running":
                return str(session["id"])
            assert session["status"] == "provisioning", session
            time.sleep(0.2)
        raise AssertionError("node session never ran")

    sid = await sync_to_async(create_and_approve)()
    session = await sync_to_async(DebugSession.objects.select_related("request").get)(pk=sid)
    assert session.namespace == "kube-system"
    raw = await sync_to_async(get_client().get_pod_raw)("kube-system", session.pod)
    assert raw["metadata"]["labels"]["ephemera.dev/session"] == sid and raw["spec"]["nodeName"] == NODE
    term, _ = await open_term(session, user=term_users.alice)
    try:
        await _ready(term)
        out = await term.run('echo "marker=$EPHEMERA_SESSION"', "nd")
        assert f"marker={sid}".encode() in out
        # A root shell on the node, as the form says: /host is the node's root filesystem, and
        # hostPID shows that node's pods (the nginx on debian-11) and nothing of this machine.
        host = await term.run("chroot /host cat /etc/hostname; hostname", "host")
        assert host.split() == [NODE.encode(), NODE.encode()], host
        ps = await term.run("ps -o args", "nps")
        assert b"nginx: master process" in ps and b"pytest" not in ps and b"daphne" not in ps, ps
        await sync_to_async(services.session_end)(session_id=sid, actor=term_users.alice, reason=EndReason.USER)
        assert await term.until_closed(15) == protocol.CLOSE_GONE
    finally:
        await term.close()
    assert await sync_to_async(_wait)(lambda: pod_gone("kube-system", session.pod))
    assert await sync_to_async(_wait)(lambda: not session_pids(sid))


def test_the_request_form_offers_live_nodes_and_creates_a_node_request(alice: Any, kube: Any) -> None:
    from approvals.models import DebugRequest

    client = Client()
    client.force_login(alice)
    page = client.get(reverse("request_new")).content.decode()
    assert f'<option value="{NODE}"' in page and 'value="node"' in page

    resp = client.post(reverse("request_new"), {
        "kind": "node", "node": NODE, "image": "busybox", "profile": "sysadmin",
        "reason": "node is NotReady", "duration_minutes": "10",
    })
    assert resp.status_code == 302, resp.content.decode()[:2000]
    req = DebugRequest.objects.get()
    assert (req.kind, req.node, req.namespace) == ("node", NODE, "")
    resp = client.post(reverse("request_new"), {
        "kind": "node", "node": "ghost", "image": "busybox", "profile": "general", "reason": "x", "duration_minutes": "10",
    })
    assert resp.status_code == 400 and "does not exist" in resp.content.decode()
