"""Provisioning against kubesim (a real HTTPS apiserver running real processes): the PATCH
Ephemera sends, reaching running, each way it fails, and ending a session for real."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from approvals import services as request_services
from kubesim.testing import NONROOT_IMAGE, debug_image, run_cluster
from portal.audit import verify_chain
from portal.kube import get_client, specs
from portal.models import AuditEvent
from sessions import services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from tests.conftest import TARGET_CONTAINER, _forget, _point_at
from tests.sessions.conftest import kubectl_command

FORBIDDEN = (
    'pods "{pod}" is forbidden: User "system:serviceaccount:ephemera:portal" cannot patch resource '
    '"pods/ephemeralcontainers" in API group "" in the namespace "default"'
)


def approved_session(
    alice: Any, bob: Any, pod: str, *, profile: str = "general", image: str = "busybox", duration: int = 15
) -> DebugSession:
    req = request_services.request_create(
        requester=alice,
        namespace="default",
        pod=pod,
        container=TARGET_CONTAINER,
        image=image,
        profile=profile,
        reason="checkout 502s",
        duration_minutes=duration,
        origin=None,
    )
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    return DebugSession.objects.get(request=req)


def provision(session: DebugSession) -> DebugSession:
    services.session_provision(session_id=session.pk)
    session.refresh_from_db()
    return session


def session_pids(session_id: Any) -> list[int]:
    """Host processes (kubesim runs containers as local processes) carrying the session's marker."""
    marker = f"EPHEMERA_SESSION={session_id}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry))
    return pids


def pod_name(prefix: str = "distroless-nginx-") -> str:
    return next(p.name for p in get_client().list_pods("default") if p.name.startswith(prefix))


# --- the PATCH body, compared with the real kubectl ---------------------------------------


def _patches(log: Path, *, dry_run: bool = False) -> list[dict[str, Any]]:
    """PATCH bodies of pods/ephemeralcontainers from the apiserver audit log, in order: the real
    ones, or (dry_run) the pre-flight dry runs the request check sent before them."""
    found = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["verb"] == "patch" and event.get("objectRef", {}).get("subresource") == "ephemeralcontainers":
            if ("dryRun=All" in event.get("requestURI", "")) == dry_run:
                found.append(event["requestObject"])
    return found


@pytest.mark.parametrize("profile", ["general", "baseline", "restricted", "netadmin", "sysadmin"])
def test_the_patches_equal_the_ones_kubectl_sends(profile: str, settings: Any, alice: Any, bob: Any, tmp_path: Path, nonroot_image_allowed: None) -> None:
    """Two identical clusters: Ephemera adds two debug containers to the pod in one, the real
    kubectl adds the same two (same names, same env) in the other. The apiserver audit logs
    must show the same PATCH bodies, including kubectl's $setElementOrder on the second."""
    ours_log, theirs_log = tmp_path / "ours.log", tmp_path / "theirs.log"
    sessions: list[DebugSession] = []
    with run_cluster(tmp_path / "ours", audit_log=ours_log) as ours:
        _point_at(ours, settings)
        try:
            pod = pod_name()
            for _ in range(2):
                session = provision(approved_session(alice, bob, pod, profile=profile, image=debug_image(profile)))
                assert session.status == SessionStatus.RUNNING, session.failure_message
                sessions.append(session)
            for session in sessions:
                services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
        finally:
            _forget()
    with run_cluster(tmp_path / "theirs", audit_log=theirs_log) as theirs:
        pod = json.loads(theirs.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"][0]["metadata"]["name"]
        for session in sessions:
            result = theirs.kubectl(
                "debug",
                pod,
                "-n",
                "default",
                "-i",
                "-t",
                "--attach=false",
                "-c",
                session.container_name,
                f"--image={debug_image(profile)}",
                f"--target={TARGET_CONTAINER}",
                f"--profile={profile}",
                f"--env=EPHEMERA_SESSION={session.pk}",
                # the in-cluster time limit Ephemera wraps a busybox shell in
                *kubectl_command(debug_image(profile), services.cluster_time_limit_seconds(session.request)),
            )
            assert result.returncode == 0, result.stderr
    ours_patches, theirs_patches = _patches(ours_log), _patches(theirs_log)
    assert len(ours_patches) == 2
    assert ours_patches == theirs_patches
    # Each request was dry-run first with the same object (stand-ins only for the session's
    # name, marker and time limit, which admission doesn't judge).
    dry = _patches(ours_log, dry_run=True)
    assert len(dry) == 2
    for tried, sent in zip(dry, ours_patches, strict=True):
        tried_c, sent_c = tried["spec"]["ephemeralContainers"][-1], sent["spec"]["ephemeralContainers"][-1]
        assert {k: v for k, v in tried_c.items() if k not in ("name", "env", "command")} == {
            k: v for k, v in sent_c.items() if k not in ("name", "env", "command")}
    assert "$setElementOrder/ephemeralContainers" in ours_patches[1]["spec"]
    assert ours_patches[0]["spec"]["ephemeralContainers"][0]["command"][:3] == ["timeout", "-s", "KILL"]


# The bodies kubectl v1.37.1 sent to a recording server (docs/kube-debug-wire.md, section 1),
# for `kubectl debug -i web --image=busybox --target=app -c dbg --profile=P` (no -t).
WIRE_DOC_SECURITY = {
    "legacy": None,
    "general": {"capabilities": {"add": ["SYS_PTRACE"]}},
    "baseline": None,
    "restricted": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "netadmin": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
    "sysadmin": {"privileged": True},
}


@pytest.mark.parametrize("profile", list(WIRE_DOC_SECURITY))
def test_the_patch_equals_the_wire_docs_captured_body(profile: str) -> None:
    expected = json.loads(
        '{"spec":{"ephemeralContainers":[{"image":"busybox","name":"dbg","resources":{},"stdin":true,'
        '"targetContainerName":"app","terminationMessagePolicy":"File"}]}}'
    )
    if WIRE_DOC_SECURITY[profile] is not None:
        expected["spec"]["ephemeralContainers"][0]["securityContext"] = WIRE_DOC_SECURITY[profile]
    body = specs.ephemeral_patch(
        specs.ephemeral_container(name="dbg", image="busybox", target_container="app", profile=profile, tty=False)
    )
    assert body == expected


def test_container_names_are_drawn_like_kubectl() -> None:
    name = specs.random_container_name([])
    assert name.startswith("debugger-") and len(name) == 14
    assert set(name[len("debugger-") :]) <= set(specs.NAME_ALPHABET)
    # Re-drawn until unique: with all but one name taken, it must find the free one.
    everything = {f"debugger-{a}{b}{c}{d}{e}" for a in "bc" for b in "b" for c in "b" for d in "b" for e in "b"}
    assert specs.random_container_name(everything) not in everything


# --- reaching running, and the ways it fails -----------------------------------------------


def test_it_provisions_to_running(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = provision(approved_session(alice, bob, nginx_pod, duration=20))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    assert session.started_at is not None and session.expires_at is not None
    assert abs((session.expires_at - session.started_at).total_seconds() - 20 * 60) < 1
    assert session.progress == "running"
    event = AuditEvent.objects.get(session=session, action="session.provisioned")
    assert event.data["container"] == session.container_name
    assert get_client().ephemeral_container_state("default", nginx_pod, session.container_name).state == "running"
    verify_chain()
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)


def test_an_image_that_cant_be_pulled_fails_clearly(alice: Any, bob: Any, nginx_pod: str, use_policy: Any) -> None:
    use_policy("{images: [busybox, busybox-does-not-exist], rules: [{name: default}]}")
    session = provision(approved_session(alice, bob, nginx_pod, image="busybox-does-not-exist"))
    assert session.status == SessionStatus.FAILED
    assert session.failure_message.startswith("image busybox-does-not-exist can't be pulled: ImagePullBackOff: "), (
        session.failure_message
    )
    assert AuditEvent.objects.get(session=session, action="session.failed").data["message"] == session.failure_message


def test_restricted_with_an_image_that_runs_as_root_fails_with_the_kubelets_reason_and_a_way_out(
    alice: Any, bob: Any, nginx_pod: str, nonroot_image_allowed: None
) -> None:
    session = provision(approved_session(alice, bob, nginx_pod, profile="restricted", image="busybox"))
    assert session.status == SessionStatus.FAILED
    assert session.failure_message.startswith(
        "the debug container can't start: waiting: CreateContainerConfigError: container has runAsNonRoot and image "
        f'will run as root (pod: "{nginx_pod}_default('), session.failure_message
    assert "restricted profile runs the debug container as non-root" in session.failure_message
    assert "gcr.io/distroless/base:debug-nonroot" in session.failure_message
    # The image it names works: non-root, no capabilities.
    session = provision(approved_session(alice, bob, nginx_pod, profile="restricted", image=NONROOT_IMAGE))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)


def test_a_forbidden_patch_names_the_missing_permission(alice: Any, bob: Any, nginx_pod: str, kube: Any) -> None:
    session = approved_session(alice, bob, nginx_pod)
    kube.faults.add(403, method="PATCH", path="/ephemeralcontainers$", message=FORBIDDEN.format(pod=nginx_pod))
    session = provision(session)
    assert session.status == SessionStatus.FAILED
    assert 'cannot patch resource "pods/ephemeralcontainers"' in session.failure_message
    assert "Bearer" not in session.failure_message and kube.token not in session.failure_message


def test_an_apiserver_error_fails_the_session_with_its_message(alice: Any, bob: Any, nginx_pod: str, kube: Any) -> None:
    session = approved_session(alice, bob, nginx_pod)
    kube.faults.add(500, method="PATCH", path="/ephemeralcontainers$", message="etcdserver: request timed out")
    session = provision(session)
    assert session.status == SessionStatus.FAILED
    assert "HTTP 500" in session.failure_message and "etcdserver: request timed out" in session.failure_message


def test_a_pod_gone_before_provisioning_fails_clearly(alice: Any, bob: Any, fresh_kube: Any) -> None:
    pod = pod_name()
    session = approved_session(alice, bob, pod)
    result = fresh_kube.kubectl("delete", "pod", pod, "-n", "default", "--grace-period=0", "--wait=true")
    assert result.returncode == 0, result.stderr
    session = provision(session)
    assert session.status == SessionStatus.FAILED
    assert session.failure_message == f"pod default/{pod} no longer exists"


def test_provisioning_times_out(alice: Any, bob: Any, settings: Any, tmp_path: Path) -> None:
    with run_cluster(tmp_path, pull_delay=30) as slow:
        _point_at(slow, settings)
        try:
            settings.EPHEMERA_PROVISION_TIMEOUT_SECONDS = 2
            session = approved_session(alice, bob, pod_name())
            started = time.monotonic()
            session = provision(session)
            assert time.monotonic() - started < 15
            assert session.status == SessionStatus.FAILED
            assert session.failure_message.startswith("timed out: the debug container did not start within 2 seconds"), (
                session.failure_message
            )
        finally:
            _forget()


# --- ending a session ---------------------------------------------------------------------


def test_ending_a_session_kills_its_processes_and_spares_the_target(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = provision(approved_session(alice, bob, nginx_pod))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    deadline = time.monotonic() + 10
    while not session_pids(session.pk) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_pids(session.pk), "the debug shell should carry EPHEMERA_SESSION"
    # A second process of the session, as if the engineer had started something in the shell.
    code, _ = get_client().exec_command(
        "default", nginx_pod, session.container_name, ["/bin/sh", "-c", "sleep 300 & echo started"]
    )
    assert code == 0
    ended = services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    assert ended.status == SessionStatus.ENDED and ended.end_reason == "user" and ended.ended_by == alice
    deadline = time.monotonic() + 10
    while session_pids(session.pk) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_pids(session.pk) == []
    pod = get_client().get_pod("default", nginx_pod)
    assert pod.phase == "Running" and all(c.ready for c in pod.containers)
    assert not AuditEvent.objects.filter(session=session, action="session.stop_failed").exists()


def test_session_end_is_idempotent_and_checks_who_asks(alice: Any, bob: Any, eve: Any, dave: Any, make_request: Any) -> None:
    req = make_request(alice)
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = DebugSession.objects.get(request=req)
    from django.core.exceptions import PermissionDenied

    for outsider in (eve, dave):
        with pytest.raises(PermissionDenied):
            services.session_end(session_id=session.pk, actor=outsider, reason=EndReason.USER)
    services.session_end(session_id=session.pk, actor=bob, reason=EndReason.REVOKED, comment="incident over")
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    session.refresh_from_db()
    assert session.end_reason == "revoked" and session.ended_by == bob
    assert AuditEvent.objects.filter(session=session, action="session.ended").count() == 1


def test_a_session_ended_while_provisioning_stays_ended(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = approved_session(alice, bob, nginx_pod)
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    session = provision(session)
    assert session.status == SessionStatus.ENDED


def test_expired_sessions_are_ended(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = provision(approved_session(alice, bob, nginx_pod))
    assert session.status == SessionStatus.RUNNING
    DebugSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
    assert services.end_expired_sessions() == 1
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.EXPIRED
