"""Debugging a copy of a pod, as `kubectl debug POD --copy-to` does (issue 15).

The copy's object is compared with the real kubectl v1.37's on kubesim's audit log (kubectl
POSTs protobuf, which kubesim decodes; both are compared as the apiserver would store them:
zero values and empty fields are the same as absent). A crashlooping pod is debugged through a
copy whose crashing command is replaced; the copy goes when the session ends, the original stays.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from approvals import services as request_services
from kubesim.testing import debug_image, run_cluster
from portal.kube import get_client, specs
from portal.kube.errors import KubeNotFound
from portal.models import AuditEvent
from sessions import services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from sessions.reaper import reap_once
from tests.conftest import _forget, _point_at
from tests.sessions.conftest import kubectl_command
from tests.sessions.test_files import body

pytestmark = [pytest.mark.timeout(120)]

PAYMENTS_API = "payments-api-5f7b9c6d4-q8wzt"
LEDGER = "ledger-worker-6b8d7f9c5-m4n7p"


def _canonical(value: Any) -> Any:
    """As the apiserver stores it: a zero value or an empty field is the same as none."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (0, "", False, None, {}, [])}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _pod_creates(log: Path, *, dry_run: bool = False) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if event["verb"] == "create" and ref.get("resource") == "pods" and not ref.get("subresource"):
            if ("dryRun=All" in event.get("requestURI", "")) == dry_run:
                found.append(event["requestObject"])
    return found


def copy_request(alice: Any, bob: Any, *, pod: str, container: str, profile: str = "general",
                 copy: dict[str, Any] | None = None, namespace: str = "payments") -> DebugSession:
    req = request_services.request_create(requester=alice, kind="copy", namespace=namespace, pod=pod,
                                          container=container, image=debug_image(profile), profile=profile, reason="copy it",
                                          duration_minutes=15, origin=None, ticket="INC-1", copy=copy or {})
    if req.status == "pending":
        request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    return DebugSession.objects.get(request=req)


def provision(session: DebugSession) -> DebugSession:
    services.session_provision(session_id=session.pk)
    session.refresh_from_db()
    return session


CASES = [
    ("general", {}, []),
    ("sysadmin", {"share_processes": False, "same_node": True, "set_image": {"api": "busybox", "*": "busybox"}},
     ["--share-processes=false", "--same-node", "--set-image=api=busybox,*=busybox"]),
    ("restricted", {"set_image": {"envoy": "busybox"}}, ["--set-image=envoy=busybox"]),
    ("baseline", {"same_node": True}, ["--same-node"]),
    ("netadmin", {"share_processes": False}, ["--share-processes=false"]),
]


@pytest.mark.parametrize(("profile", "options", "flags"), CASES, ids=[c[0] for c in CASES])
def test_the_copy_equals_the_one_kubectl_creates(profile: str, options: dict[str, Any], flags: list[str], settings: Any,
                                                 alice: Any, bob: Any, tmp_path: Path, nonroot_image_allowed: None) -> None:
    ours_log, theirs_log = tmp_path / "ours.log", tmp_path / "theirs.log"
    with run_cluster(tmp_path / "ours", audit_log=ours_log) as ours:
        _point_at(ours, settings)
        try:
            session = provision(copy_request(alice, bob, pod=PAYMENTS_API, container="api", profile=profile, copy=options))
            assert session.status == SessionStatus.RUNNING, session.failure_message
            assert re.fullmatch(rf"payments-api-5f7b9c6d4-q8wzt-debug-[{specs.NAME_ALPHABET}]{{5}}", session.pod)
            services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
        finally:
            _forget()
    with run_cluster(tmp_path / "theirs", audit_log=theirs_log) as theirs:
        result = theirs.kubectl(
            "debug", PAYMENTS_API, "-n", "payments", f"--copy-to={session.pod}", "-c", session.container_name,
            "-i", "-t", "--attach=false", f"--image={debug_image(profile)}", f"--profile={profile}", *flags,
            f"--env=EPHEMERA_SESSION={session.pk}",
            *kubectl_command(debug_image(profile), services.cluster_time_limit_seconds(session.request)),
        )
        assert result.returncode == 0, result.stderr
    (ours_pod,), (their_pod,) = _pod_creates(ours_log), _pod_creates(theirs_log)
    labels = ours_pod["metadata"].pop("labels")
    assert labels == {"app.kubernetes.io/managed-by": "ephemera", "ephemera.dev/instance": "ephemera",
                      "ephemera.dev/session": str(session.pk)}
    assert _canonical(ours_pod) == _canonical(their_pod)
    assert "labels" not in their_pod["metadata"]  # kubectl drops the pod's own (app=...): no Service picks a copy up
    # The request check dry-ran the same object first (stand-ins for names and the session's marker).
    (tried,) = _pod_creates(ours_log, dry_run=True)
    assert tried["spec"]["containers"][-1].get("securityContext") == ours_pod["spec"]["containers"][-1].get("securityContext")


def test_a_crashlooping_pod_is_debugged_through_its_copy(transactional_db: Any, kube: Any, alice: Any, bob: Any) -> None:
    # transactional_db: the background stop's thread must see the session's rows (PostgreSQL).
    client = get_client()
    original = client.get_pod_raw("payments", LEDGER)
    session = copy_request(alice, bob, pod=LEDGER, container="worker", copy={"command": ["sleep", "infinity"]})
    deadline = time.monotonic() + 60
    while session.status == SessionStatus.PROVISIONING and time.monotonic() < deadline:
        time.sleep(0.2)  # (committed: the provisioner's own thread runs it)
        session = provision(session)
    assert session.status == SessionStatus.RUNNING, session.failure_message
    # The session runs once its debug container does; the copy's worker starts beside it.
    deadline = time.monotonic() + 20
    while True:
        copy = client.get_pod_raw("payments", session.pod)
        worker = next(c for c in copy["status"]["containerStatuses"] if c["name"] == "worker")
        if "running" in worker["state"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "running" in worker["state"], worker  # the crashing entrypoint was replaced
    time.sleep(1.5)  # past the moment the original's entrypoint crashes
    worker = next(c for c in client.get_pod_raw("payments", session.pod)["status"]["containerStatuses"]
                  if c["name"] == "worker")
    assert "running" in worker["state"] and worker["restartCount"] == 0, worker
    # The debug shell shares the copy's process namespace: the worker's `sleep infinity` is there.
    code, out = client.exec_command("payments", session.pod, session.container_name, ["ps", "-o", "args"])
    assert code == 0 and "sleep infinity" in out, out
    # Files come from the target, not PID 1 (the pause process) nor the debug container: the
    # target's pid is found by its container id. A file only the worker has:
    code, out = client.exec_command("payments", session.pod, "worker", ["sh", "-c", "echo only-in-the-worker > /tmp/where"])
    assert code == 0, out
    files = APIClient()
    files.force_authenticate(alice)
    resp = files.get(f"/api/v1/sessions/{session.pk}/files", {"path": "/tmp/where"})
    assert resp.status_code == 200, getattr(resp, "data", resp)
    assert body(resp) == b"only-in-the-worker\n"
    event = AuditEvent.objects.get(session=session, action="session.created")
    assert event.request.copy_options["command"] == ["sleep", "infinity"]

    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)
    with pytest.raises(KubeNotFound):
        client.get_pod_raw("payments", session.pod)
    session.refresh_from_db()
    assert session.cluster_clean_at is not None
    # The original is untouched: same pod, same uid, still crashing as before.
    still = client.get_pod_raw("payments", LEDGER)
    assert still["metadata"]["uid"] == original["metadata"]["uid"]


def test_a_copy_without_shared_processes_says_why_its_targets_files_cant_be_read(kube: Any, alice: Any, bob: Any) -> None:
    session = provision(copy_request(alice, bob, pod=PAYMENTS_API, container="api", copy={"share_processes": False}))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    files = APIClient()
    files.force_authenticate(alice)
    resp = files.get(f"/api/v1/sessions/{session.pk}/files", {"path": "/etc/hostname"})
    assert resp.status_code == 400 and "share_processes: false" in resp.json()["detail"], resp.content
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)


def test_the_reaper_deletes_a_copy_a_crash_left_behind(kube: Any, alice: Any, bob: Any) -> None:
    client = get_client()
    session = provision(copy_request(alice, bob, pod=PAYMENTS_API, container="envoy"))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    # Oversight knows the copy as ours: it carries Ephemera's labels, so a stranger's would be flagged.
    from sessions.models import Finding
    from sessions.oversight import scan

    scan()
    assert not Finding.objects.filter(pod=session.pod).exists()
    # The portal died right after the session ended: nothing stopped the copy.
    DebugSession.objects.filter(pk=session.pk).update(status=SessionStatus.ENDED, ended_at=session.started_at,
                                                      end_reason=EndReason.USER)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reap_once()
        try:
            client.get_pod_raw("payments", session.pod)
        except KubeNotFound:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the reaper left the copy")
    assert client.get_pod_raw("payments", PAYMENTS_API)  # never the original


def test_copy_requests_are_checked(kube: Any, alice: Any, api_client_for: Any) -> None:
    client = api_client_for(alice)
    base = {"namespace": "payments", "container": "api", "image": "busybox", "profile": "general", "reason": "why",
            "duration_minutes": 10, "ticket": "INC-1"}
    ok = client.post("/api/v1/requests", {**base, "copy_of": PAYMENTS_API, "command": ["sleep", "infinity"],
                                          "share_processes": True}, format="json")
    assert ok.status_code == 201, ok.content
    body = ok.json()
    assert (body["kind"], body["pod"], body["copy_options"]["command"]) == ("copy", PAYMENTS_API, ["sleep", "infinity"])
    unknown = client.post("/api/v1/requests", {**base, "copy_of": PAYMENTS_API, "set_image": {"ghost": "busybox"}}, format="json")
    assert unknown.status_code == 400 and "ghost" in unknown.json()["set_image"][0]
    image = client.post("/api/v1/requests", {**base, "copy_of": PAYMENTS_API, "set_image": {"*": "evil/miner"}}, format="json")
    assert image.status_code == 400 and "evil/miner" in image.json()["set_image"][0]
    both = client.post("/api/v1/requests", {**base, "copy_of": PAYMENTS_API, "node": "debian-11"}, format="json")
    assert both.status_code == 400
    bad_command = client.post("/api/v1/requests", {**base, "copy_of": PAYMENTS_API, "command": "sleep"}, format="json")
    assert bad_command.status_code == 400
    assert AuditEvent.objects.filter(action="request.created").count() == 1
