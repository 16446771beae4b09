"""The reaper on a cluster with leftovers: node-debugger pods of finished or unknown sessions,
vanished pods, and debug access made with the real kubectl that bypassed the portal."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from portal.kube import get_client, specs
from portal.models import AuditEvent
from sessions import oversight, services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession, Finding
from sessions.reaper import reap_once
from tests.conftest import TARGET_CONTAINER
from tests.sessions.test_node_debug import NODE, node_session, pod_gone
from tests.sessions.test_provision import approved_session, pod_name, provision, session_pids
from tests.sessions.test_reaper import wait_until


def running_node_session(alice: Any, bob: Any) -> DebugSession:
    session = provision(node_session(alice, bob))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    return session


def test_it_deletes_the_node_pod_of_a_session_a_crash_left_behind(alice: Any, bob: Any, fresh_kube: Any) -> None:
    session = running_node_session(alice, bob)
    assert wait_until(lambda: session_pids(session.pk))
    # The portal wrote "ended" and died before deleting the pod.
    DebugSession.objects.filter(pk=session.pk).update(status=SessionStatus.ENDED, ended_at=timezone.now(), end_reason="user")
    report = reap_once()
    # Deleted, and clean in the same pass: the reaper waits for the pod to be gone from the API.
    assert report.node_pods_deleted == 1 and report.marked_clean == 1, report
    assert pod_gone(session.namespace, session.pod)
    assert wait_until(lambda: not session_pids(session.pk))
    assert AuditEvent.objects.filter(session=session, action="session.node_pod_deleted").count() == 1
    again = reap_once()
    assert again.marked_clean == 0 and again.node_pods_deleted == 0


def test_a_labelled_pod_no_session_knows_is_reported_never_deleted(fresh_kube: Any, db: Any) -> None:
    stranger = str(uuid.uuid4())
    name = specs.node_pod_name(NODE)
    body = specs.node_debugger_pod(name=name, node=NODE, image="busybox", profile="general",
                                   session_id=stranger, labels=specs.session_labels(stranger))
    get_client().create_pod("default", body)
    report = reap_once()
    assert report.node_pods_deleted == 0
    assert not pod_gone("default", name)
    finding = Finding.objects.get(pod=name)
    assert finding.kind == "debug_pod" and finding.detail["claims_instance"] == "ephemera"


def test_our_labels_on_someone_elses_pod_neither_hide_it_nor_get_it_deleted(alice: Any, bob: Any, fresh_kube: Any) -> None:
    # The attack: a pod (here a production-like one) given the labels of a real, ended session.
    ended = running_node_session(alice, bob)
    services.session_end(session_id=ended.pk, actor=alice, reason=EndReason.USER)
    assert wait_until(lambda: pod_gone(ended.namespace, ended.pod))
    labels = specs.session_labels(str(ended.pk))
    for name in ("payments-db-0", ended.pod):  # a new pod, and one reusing the ended session's pod name
        get_client().create_pod("default", {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": specs.NODE_CONTAINER, "image": "busybox", "command": ["sleep", "1000"]}],
                     "hostPID": True},
        })
    before = AuditEvent.objects.filter(action="session.node_pod_deleted").count()
    for _ in range(2):
        report = reap_once()
        assert report.node_pods_deleted == 0, report
    assert not pod_gone("default", "payments-db-0") and not pod_gone("default", ended.pod)
    assert AuditEvent.objects.filter(action="session.node_pod_deleted").count() == before
    assert {f.pod for f in Finding.objects.filter(kind="debug_pod")} == {"payments-db-0", ended.pod}


def test_a_privileged_or_host_pid_pod_without_any_label_is_a_finding(fresh_kube: Any, db: Any, settings: Any) -> None:
    for name, extra in (("plain-privileged", {"securityContext": {"privileged": True}}), ("plain-hostpid", {})):
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"], **extra}]}
        if name == "plain-hostpid":
            spec["hostPID"] = True
        get_client().create_pod("default", {"metadata": {"name": name}, "spec": spec})
    reap_once()
    risks = {f.pod: f.detail["risks"] for f in Finding.objects.filter(kind="debug_pod")}
    assert risks == {"plain-privileged": ["privileged"], "plain-hostpid": ["hostPID"]}
    # A cluster's own privileged daemons can be left out by namespace (privileges alone only).
    settings.EPHEMERA_OVERSIGHT_IGNORE_NAMESPACES = ["default"]
    Finding.objects.all().delete()
    reap_once()
    assert not Finding.objects.exists()


def test_another_installations_pod_is_left_alone_but_reported(fresh_kube: Any, db: Any) -> None:
    # Staging's portal made this pod on the same cluster; its session isn't in our database.
    # Its label says so, but labels prove nothing: reported (with the claim), never deleted.
    stranger = str(uuid.uuid4())
    name = specs.node_pod_name(NODE)
    body = specs.node_debugger_pod(name=name, node=NODE, image="busybox", profile="general",
                                   session_id=stranger, labels=specs.session_labels(stranger, instance="staging"))
    get_client().create_pod("default", body)
    report = reap_once()
    assert report.node_pods_deleted == 0
    assert not pod_gone("default", name)
    assert Finding.objects.get(pod=name).detail["claims_instance"] == "staging"


def test_a_bad_instance_name_stops_start_up() -> None:
    from tests.portal.test_settings import start

    result = start({"EPHEMERA_DEMO": "1", "EPHEMERA_INSTANCE": "not a label!"})
    assert result.returncode != 0 and "EPHEMERA_INSTANCE='not a label!' must be a Kubernetes label value" in result.stderr


def test_it_leaves_a_live_node_session_alone_and_ends_one_whose_pod_vanished(alice: Any, bob: Any, fresh_kube: Any) -> None:
    session = running_node_session(alice, bob)
    report = reap_once()
    assert report.node_pods_deleted == 0 and report.sessions_gone == 0
    assert not pod_gone(session.namespace, session.pod)
    result = fresh_kube.kubectl("delete", "pod", session.pod, "-n", session.namespace, "--grace-period=0")
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: reap_once().sessions_gone == 1 or DebugSession.objects.get(pk=session.pk).status == "ended")
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.POD_GONE


def test_debug_access_made_with_the_real_kubectl_is_reported_once(alice: Any, bob: Any, fresh_kube: Any) -> None:
    pod = pod_name()
    ours = provision(approved_session(alice, bob, pod))
    assert ours.status == SessionStatus.RUNNING, ours.failure_message
    assert fresh_kube.kubectl("debug", pod, "-n", "default", "-i", "-t", "--attach=false", "-c", "sneaky",
                              "--image=busybox", f"--target={TARGET_CONTAINER}").returncode == 0
    # Copying our env var doesn't make a container ours: the session row must name it.
    assert fresh_kube.kubectl("debug", pod, "-n", "default", "-i", "--attach=false", "-c", "spoof", "--image=busybox",
                              f"--env=EPHEMERA_SESSION={ours.pk}").returncode == 0
    created = fresh_kube.kubectl("debug", f"node/{NODE}", "-n", "default", "-i", "-t", "--attach=false",
                                 "--image=busybox", "--profile=sysadmin")
    assert created.returncode == 0, created.stderr
    report = reap_once()
    assert report.findings == 3, report
    found = {(f.kind, f.container) for f in Finding.objects.all()}
    assert ("ephemeral_container", "sneaky") in found and ("ephemeral_container", "spoof") in found
    node_finding = Finding.objects.get(kind="debug_pod")
    assert node_finding.pod.startswith(f"node-debugger-{NODE}-") and node_finding.detail["privileged"] is True
    assert not Finding.objects.filter(container=ours.container_name).exists()
    assert AuditEvent.objects.filter(action="oversight.unmanaged_found").count() == 3
    assert reap_once().findings == 0  # the same things, seen again: no new events
    assert AuditEvent.objects.filter(action="oversight.unmanaged_found").count() == 3
    # The kubectl-made node pod is reported, never deleted (it isn't ours to delete).
    assert not pod_gone("default", node_finding.pod)
    assert fresh_kube.kubectl("delete", "pod", node_finding.pod, "-n", "default", "--grace-period=0").returncode == 0
    reap_once()
    node_finding.refresh_from_db()
    assert node_finding.gone_at is not None


def test_long_running_sessions_are_flagged_once(alice: Any, bob: Any, fresh_kube: Any, settings: Any) -> None:
    settings.EPHEMERA_LONG_SESSION_MINUTES = 30
    session = provision(approved_session(alice, bob, pod_name()))
    assert oversight.scan() == 0
    DebugSession.objects.filter(pk=session.pk).update(started_at=timezone.now() - timedelta(minutes=31))
    assert oversight.scan() == 1
    assert oversight.scan() == 0
    event = AuditEvent.objects.get(action="oversight.long_session")
    assert event.session_id == session.pk and event.data["requester"] == "alice"


class _Hook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
        code = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"answers": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_is_told_once_and_retried_after_a_failure(
    fresh_kube: Any, db: Any, settings: Any, webhook: Any, caplog: Any
) -> None:
    url, hook = webhook
    settings.EPHEMERA_UNMANAGED_WEBHOOK_URL = f"{url}/hooks/s3cr3t-token"
    hook.answers = [500]
    pod = pod_name()
    assert fresh_kube.kubectl("debug", pod, "-n", "default", "-i", "--attach=false", "-c", "bypass",
                              "--image=busybox").returncode == 0
    with caplog.at_level(logging.WARNING, logger="sessions.oversight"):
        assert oversight.scan() == 1
    finding = Finding.objects.get()
    assert finding.notified_at is None and finding.notify_error == "HTTP 500"
    assert "oversight webhook to http://127.0.0.1 failed" in caplog.text and "s3cr3t" not in caplog.text
    oversight.scan()  # next pass: retried, answered 200
    finding.refresh_from_db()
    assert finding.notified_at is not None
    oversight.scan()  # and never sent again
    assert len(hook.received) == 2
    sent = hook.received[-1]
    assert sent["path"] == "/hooks/s3cr3t-token" and sent["type"] == "application/json"
    assert sent["body"]["kind"] == "ephemeral_container" and sent["body"]["pod"] == pod
    assert sent["body"]["container"] == "bypass" and sent["body"]["event"] == "ephemera.finding"


def test_an_unreachable_webhook_is_retried_without_breaking_the_pass(fresh_kube: Any, db: Any, settings: Any) -> None:
    settings.EPHEMERA_UNMANAGED_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens"
    assert fresh_kube.kubectl("debug", pod_name(), "-n", "default", "-i", "--attach=false", "-c", "bypass2",
                              "--image=busybox").returncode == 0
    reap_once()
    reap_once()
    finding = Finding.objects.get()
    assert finding.notified_at is None and finding.notify_attempts == 2 and finding.notify_error


def test_only_admins_see_the_oversight_page(people: Any, fresh_kube: Any) -> None:
    assert fresh_kube.kubectl("debug", pod_name(), "-n", "default", "-i", "--attach=false", "-c", "bypass3",
                              "--image=busybox").returncode == 0
    oversight.scan()
    for who, expected in ((people.admin, 200), (people.bob, 403), (people.dave, 403), (people.alice, 403)):
        client = Client()
        client.force_login(who)
        resp = client.get("/sessions/oversight/")
        assert resp.status_code == expected, who
        if expected == 200:
            assert "bypass3" in resp.content.decode()
    assert Client().get("/sessions/oversight/").status_code == 302


def test_a_same_named_pod_with_another_uid_is_not_ours(alice: Any, make_request: Any) -> None:
    req = make_request(alice)
    DebugSession.objects.create(request=req, status=SessionStatus.ENDED, created_at=timezone.now(), namespace="default",
                                pod="web-1", container_name="debugger-abc", pod_uid="uid-then")

    def pod(uid: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "default", "name": "web-1", "uid": uid},
                "spec": {"containers": [{"name": "web"}], "ephemeralContainers": [{"name": "debugger-abc", "image": "busybox"}]}}

    assert oversight.unmanaged_in_cluster([pod("uid-then")]) == []
    found = oversight.unmanaged_in_cluster([pod("uid-now")])  # deleted and recreated since
    assert [(f["kind"], f["container"]) for f in found] == [("ephemeral_container", "debugger-abc")]
