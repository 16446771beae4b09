"""Errors come back as metav1.Status with the apiserver's reasons, codes and messages."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim.testing import RunningCluster, run_cluster

pytestmark = [pytest.mark.timeout(60)]

POD = "distroless-nginx-7c9d8f6b5d-x2k4q"
EC_PATH = f"/api/v1/namespaces/default/pods/{POD}/ephemeralcontainers"


def call(
    cluster: RunningCluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "admin",  # noqa: S107
    content_type: str = "application/json",
    timeout: float = 10,
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(cluster.url + path, data=data, method=method)  # noqa: S310 - always the cluster\'s own URL
    if token is not None:
        req.add_header("Authorization", f"Bearer {cluster.token if token == 'admin' else token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_kubectl_unknown_pod(kubesim_session_cluster: RunningCluster) -> None:
    result = kubesim_session_cluster.kubectl("get", "pod", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    code, status = call(kubesim_session_cluster, "GET", "/api/v1/namespaces/default/pods/nope")
    assert code == 404
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


def test_kubectl_debug_with_a_taken_name_is_invalid(kubesim_cluster: RunningCluster) -> None:
    result = kubesim_cluster.kubectl("debug", "-c", "distroless-nginx-ctr", "--image=busybox", POD)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'The Pod "{POD}" is invalid: spec.ephemeralContainers[0].name: Duplicate value: "distroless-nginx-ctr"'
    )


def test_ephemeral_container_rules(kubesim_cluster: RunningCluster) -> None:
    smp = "application/strategic-merge-patch+json"
    code, pod = call(
        kubesim_cluster,
        "PATCH",
        EC_PATH,
        {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox:1.36", "stdin": True}]}},
        content_type=smp,
    )
    assert code == 200
    assert pod["spec"]["ephemeralContainers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"

    # A JSON patch appending a copy of "dbg": duplicate at index 1 (and, being identical, no "changed" error).
    code, status = call(
        kubesim_cluster,
        "PATCH",
        EC_PATH,
        [{"op": "add", "path": "/spec/ephemeralContainers/-", "value": pod["spec"]["ephemeralContainers"][0]}],
        content_type="application/json-patch+json",
    )
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == f'Pod "{POD}" is invalid: spec.ephemeralContainers[1].name: Duplicate value: "dbg"'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueDuplicate", "message": 'Duplicate value: "dbg"', "field": "spec.ephemeralContainers[1].name"}
    ]

    # Existing entries are immutable.
    code, status = call(
        kubesim_cluster,
        "PATCH",
        EC_PATH,
        {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "alpine"}]}},
        content_type=smp,
    )
    assert code == 422
    assert status["message"].endswith(
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be changed'
    )

    # Missing image, forbidden fields, bad name and unknown target, all in one error.
    code, status = call(
        kubesim_cluster,
        "PATCH",
        EC_PATH,
        {
            "spec": {
                "ephemeralContainers": [
                    {
                        "name": "Bad_Name",
                        "targetContainerName": "nope",
                        "ports": [{"containerPort": 80}],
                        "readinessProbe": {"exec": {"command": ["true"]}},
                    },
                ]
            }
        },
        content_type=smp,
    )
    assert code == 422
    fields = [(c["field"], c["reason"]) for c in status["details"]["causes"]]
    assert fields == [
        ("spec.ephemeralContainers[1].name", "FieldValueInvalid"),
        ("spec.ephemeralContainers[1].image", "FieldValueRequired"),
        ("spec.ephemeralContainers[1].targetContainerName", "FieldValueNotFound"),
        ("spec.ephemeralContainers[1].ports", "FieldValueForbidden"),
        ("spec.ephemeralContainers[1].readinessProbe", "FieldValueForbidden"),
    ]
    assert "spec.ephemeralContainers[1].image: Required value" in status["message"]
    assert "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container" in status["message"]
    assert 'spec.ephemeralContainers[1].targetContainerName: Not found: "nope"' in status["message"]

    # Removing one is forbidden too (merge patch replaces the list).
    code, status = call(
        kubesim_cluster, "PATCH", EC_PATH, {"spec": {"ephemeralContainers": []}}, content_type="application/merge-patch+json"
    )
    assert code == 422 and "may not be removed" in status["message"]

    code, status = call(kubesim_cluster, "PATCH", EC_PATH, {"spec": {}}, content_type="text/plain")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"


def test_kubectl_patch_without_image_is_required_value(kubesim_cluster: RunningCluster) -> None:
    result = kubesim_cluster.kubectl(
        "patch",
        "pod",
        POD,
        "--subresource=ephemeralcontainers",
        "--type=strategic",
        "-p",
        '{"spec":{"ephemeralContainers":[{"name":"noimg"}]}}',
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f'The Pod "{POD}" is invalid: spec.ephemeralContainers[0].image: Required value'


def test_put_ephemeralcontainers_with_stale_resource_version_conflicts(kubesim_cluster: RunningCluster) -> None:
    code, pod = call(kubesim_cluster, "GET", EC_PATH)
    assert code == 200
    pod["spec"]["ephemeralContainers"] = [{"name": "put1", "image": "busybox"}]
    code, updated = call(kubesim_cluster, "PUT", EC_PATH, pod)
    assert code == 200 and updated["spec"]["ephemeralContainers"][0]["name"] == "put1"
    code, status = call(kubesim_cluster, "PUT", EC_PATH, pod)  # same, now stale, resourceVersion
    assert code == 409 and status["reason"] == "Conflict"


def test_pod_create_validation_and_conflicts(kubesim_session_cluster: RunningCluster) -> None:
    c = kubesim_session_cluster
    code, status = call(
        c,
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "Bad_Pod"}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}},
    )
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"
    assert "a lowercase RFC 1123 subdomain must consist of" in status["message"]
    code, status = call(
        c,
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "dup"}, "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "a"}]}},
    )
    assert code == 422
    assert status["message"] == (
        'Pod "dup" is invalid: [spec.containers[1].image: Required value, spec.containers[1].name: Duplicate value: "a"]'
    )
    code, status = call(
        c,
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": POD}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}},
    )
    assert code == 409 and status["reason"] == "AlreadyExists" and status["message"] == f'pods "{POD}" already exists'
    code, status = call(
        c,
        "POST",
        "/api/v1/namespaces/nowhere/pods",
        {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}},
    )
    assert code == 404 and status["message"] == 'namespaces "nowhere" not found'
    code, status = call(c, "POST", "/api/v1/namespaces/default/pods", b"{not json")
    assert code == 400 and status["reason"] == "BadRequest"
    protobuf = "application/vnd.kubernetes.protobuf"
    code, status = call(c, "POST", "/api/v1/namespaces/default/pods", b"\x00", content_type=protobuf)
    assert code == 400 and "magic number" in status["message"]  # pods are decoded, this is not one
    code, status = call(c, "POST", "/api/v1/namespaces", b"k8s\x00", content_type=protobuf)
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    code, status = call(c, "POST", "/api/v1/namespaces", b"<ns/>", content_type="application/xml")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    code, status = call(c, "POST", f"/api/v1/namespaces/default/pods/{POD}/log")
    assert code == 405 and status["reason"] == "MethodNotAllowed"
    code, status = call(c, "GET", "/api/v1/namespaces/default/pods?labelSelector=a+in+(")
    assert code == 400 and status["reason"] == "BadRequest"
    code, status = call(c, "GET", "/api/v1/namespaces/default/widgets")
    assert code == 404 and status["message"] == "the server could not find the requested resource"


def test_unauthorized_without_or_with_a_wrong_token(kubesim_session_cluster: RunningCluster) -> None:
    for token in (None, "wrong"):
        code, status = call(kubesim_session_cluster, "GET", "/api/v1/namespaces/default/pods", token=token)
        assert code == 401
        assert status == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    result = kubesim_session_cluster.kubectl("get", "pods", "--token=wrong")
    assert result.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr


RESTRICTED_STATE = {
    "users": [
        {
            "name": "viewer",
            "token": "viewer-token",
            "rules": [
                {"verbs": ["get", "list", "watch"], "resources": ["pods"], "namespaces": ["default"]},
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def restricted_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("restricted"), state=RESTRICTED_STATE) as cluster:
        yield cluster


def test_restricted_user_gets_rbac_forbidden(restricted_cluster: RunningCluster) -> None:
    k = restricted_cluster.kubectl
    assert k("get", "pods", "--token=viewer-token").returncode == 0
    result = k("debug", "--token=viewer-token", "-c", "dbg", "--image=busybox", POD)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): pods "{POD}" is forbidden: User "viewer" cannot patch resource '
        f'"pods/ephemeralcontainers" in API group "" in the namespace "default"'
    )
    result = k("get", "pods", "-n", "payments", "--token=viewer-token")
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "viewer" cannot list resource "pods" '
        'in API group "" in the namespace "payments"'
    )
    result = k("get", "nodes", "--token=viewer-token")
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in result.stderr
    code, status = call(
        restricted_cluster, "GET", f"/api/v1/namespaces/default/pods/{POD}/exec?command=ls&stdout=true", token="viewer-token"
    )
    assert code == 403 and 'cannot get resource "pods/exec"' in status["message"]
    # The admin token from the kubeconfig can do everything.
    assert k("get", "nodes").returncode == 0


def test_fault_injection_status_delay_and_times(kubesim_cluster: RunningCluster) -> None:
    faults = kubesim_cluster.faults
    faults.add(500, path=r"/pods/nope$", message="etcd is on fire", times=1)
    code, status = call(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods/nope")
    assert code == 500 and status["message"] == "etcd is on fire" and status["reason"] == "InternalError"
    code, _ = call(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods/nope")
    assert code == 404  # times=1 used up

    faults.add(403, method="PATCH", path="ephemeralcontainers", message="denied by policy webhook")
    result = kubesim_cluster.kubectl("debug", "-c", "dbg", "--image=busybox", POD)
    assert result.returncode == 1 and "denied by policy webhook" in result.stderr
    faults.clear()

    faults.add(path="/api/v1/namespaces/default/pods$", delay=1.0, times=1)
    started = time.monotonic()
    code, body = call(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods")
    assert code == 200 and body["kind"] == "PodList"
    assert time.monotonic() - started >= 1.0


@pytest.mark.slow
def test_unreachable_then_back(kubesim_cluster: RunningCluster) -> None:
    # An open watch is dropped too.
    req = urllib.request.Request(  # noqa: S310 - always the cluster's own URL
        kubesim_cluster.url + "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=30"
    )
    req.add_header("Authorization", f"Bearer {kubesim_cluster.token}")
    ctx = ssl.create_default_context(cafile=str(kubesim_cluster.ca_file))
    watch = urllib.request.urlopen(req, context=ctx, timeout=10)  # noqa: S310
    watch.readline()  # the first synthetic ADDED event: the watch is established
    kubesim_cluster.faults.unreachable(2)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - EOF mid-chunk or reset, depending on timing
        while watch.readline():
            pass
        raise ConnectionError("watch ended")
    assert time.monotonic() - started < 2
    watch.close()
    time.sleep(0.3)
    assert not kubesim_cluster.faults.healthz(timeout=1)
    result = kubesim_cluster.kubectl("get", "pods", "--request-timeout=1s")
    assert result.returncode == 1
    deadline = time.monotonic() + 10
    while not kubesim_cluster.faults.healthz(timeout=1):
        assert time.monotonic() < deadline, "server did not come back"
        time.sleep(0.2)
    assert kubesim_cluster.kubectl("get", "pods").returncode == 0


def test_cut_streams_endpoint_counts_cut_streams(kubesim_cluster: RunningCluster) -> None:
    # Nothing attached: nothing to cut, but the endpoint answers.
    assert kubesim_cluster.faults.cut_streams(namespace="default") == 0


def test_kubeconfig_is_private(kubesim_session_cluster: RunningCluster) -> None:
    assert Path(kubesim_session_cluster.kubeconfig).stat().st_mode & 0o777 == 0o600
