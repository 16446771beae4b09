"""dryRun=All as kube-apiserver honours it: every check runs, nothing is stored, started or watched.

Driven by the real kubectl (`--dry-run=server`) and the official Python client. Before kubesim
knew dryRun, `kubectl patch --subresource=ephemeralcontainers --dry-run=server` really added the
container and `kubectl delete --dry-run=server` really deleted the pod.
"""

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
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim.testing import RunningCluster, run_cluster

pytestmark = [pytest.mark.timeout(90)]

MIRROR = "kube-apiserver-debian-11"
STATE = {
    "namespaces": [
        "default",
        "kube-system",
        {"metadata": {"name": "secure", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
    ],
    "pods": [
        {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "600"]}]},
        },
        {
            "metadata": {"name": "api", "namespace": "secure"},
            "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "600"]}]},
        },
        {
            # What the kubelet posts for a static pod: the mirror annotation names the manifest's hash.
            "metadata": {
                "name": MIRROR,
                "namespace": "kube-system",
                "annotations": {"kubernetes.io/config.mirror": "5d1c8e3f", "kubernetes.io/config.source": "file"},
            },
            "spec": {
                "nodeName": "debian-11",
                "containers": [{"name": "kube-apiserver", "image": "busybox", "command": ["sleep", "600"]}],
            },
        },
    ],
    "users": [
        {
            "name": "viewer",
            "token": "viewer-token",
            "rules": [{"verbs": ["get", "list", "watch"], "resources": ["pods"]}],
        }
    ],
}


@pytest.fixture(scope="module")
def audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dryrun-audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, audit_log: Path) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("dryrun"), state=STATE, audit_log=audit_log) as c:
        core = client.CoreV1Api(c.api_client())
        # Steady state first: a pod still starting would send its own MODIFIED events.
        deadline = time.monotonic() + 20
        while any(p.status.phase != "Running" for p in core.list_pod_for_all_namespaces().items):
            assert time.monotonic() < deadline, "seed pods did not start"
            time.sleep(0.1)
        yield c


@pytest.fixture
def core(cluster: RunningCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    yield client.CoreV1Api(api)
    api.close()


def call(
    cluster: RunningCluster, method: str, path: str, body: Any = None, *, content_type: str = "application/json", token: str = ""
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.url + path, data=data, method=method)  # noqa: S310 - the cluster's own URL
    req.add_header("Authorization", f"Bearer {token or cluster.token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
            text = resp.read().decode()
            code = resp.status
    except urllib.error.HTTPError as e:
        text, code = e.read().decode(), e.code
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    # A watch answers one JSON object per line; anything else is one object.
    return code, lines if "watch=" in path else (lines[0] if lines else None)


def resource_version(cluster: RunningCluster) -> str:
    code, listing = call(cluster, "GET", "/api/v1/pods")
    assert code == 200
    return str(listing["metadata"]["resourceVersion"])


def events_since(cluster: RunningCluster, rv: str) -> list[dict[str, Any]]:
    """Every pod watch event after `rv` (replayed from the history, so nothing can slip by)."""
    code, events = call(cluster, "GET", f"/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert code == 200
    return list(events)


def running(cluster: RunningCluster, namespace: str, pod: str, container: str) -> bool:
    assert cluster.sim is not None and cluster.sim.cluster.runtime is not None
    return cluster.sim.cluster.runtime.is_running((namespace, pod, container))


def debug_container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["sleep", "600"], "stdin": True, "targetContainerName": "app", **extra}


def ec_path(namespace: str, pod: str, query: str = "dryRun=All") -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/ephemeralcontainers?{query}"


POD_JSON = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dry-web", "labels": {"app": "dry"}},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "600"]}]},
    }
)


# --- pod create ----------------------------------------------------------------------------


def test_kubectl_create_dry_run_server_answers_the_pod_and_stores_nothing(cluster: RunningCluster) -> None:
    rv = resource_version(cluster)
    # kubectl create validates against OpenAPI, which kubesim does not serve.
    said = cluster.kubectl("create", "--dry-run=server", "--validate=false", "-n", "default", "-f", "-", input=POD_JSON)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "pod/dry-web created (server dry run)"
    shown = cluster.kubectl(
        "create", "--dry-run=server", "--validate=false", "-n", "default", "-o", "json", "-f", "-", input=POD_JSON
    )
    assert shown.returncode == 0, shown.stderr
    pod = json.loads(shown.stdout)
    # As the apiserver would store it: defaulted, with a uid, but never written (no
    # resourceVersion) and never seen by the scheduler or a kubelet.
    assert pod["metadata"]["name"] == "dry-web" and pod["metadata"]["namespace"] == "default"
    assert pod["metadata"]["uid"] and pod["metadata"]["creationTimestamp"]
    assert "resourceVersion" not in pod["metadata"]
    assert (
        pod["spec"]["restartPolicy"] == "Always"
        and pod["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    )
    assert "nodeName" not in pod["spec"]
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}

    missing = cluster.kubectl("get", "pod", "dry-web", "-n", "default")
    assert missing.returncode == 1 and 'pods "dry-web" not found' in missing.stderr
    assert not running(cluster, "default", "dry-web", "app")
    assert resource_version(cluster) == rv
    assert events_since(cluster, rv) == []


def test_dry_run_create_names_from_generate_name_and_still_refuses_a_taken_name(core: client.CoreV1Api) -> None:
    body = {
        "metadata": {"generateName": "node-debugger-debian-11-"},
        "spec": {"containers": [{"name": "debugger", "image": "busybox"}]},
    }
    pod = core.api_client.sanitize_for_serialization(core.create_namespaced_pod("default", body, dry_run="All"))
    assert (
        pod["metadata"]["name"].startswith("node-debugger-debian-11-")
        and len(pod["metadata"]["name"]) == len("node-debugger-debian-11-") + 5
    )
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod("default", {**body, "metadata": {"name": "web"}}, dry_run="All")
    assert info.value.status == 409
    assert json.loads(info.value.body)["message"] == 'pods "web" already exists'


def test_dry_run_create_runs_pod_security_admission(cluster: RunningCluster) -> None:
    privileged = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "root"},
            "spec": {"hostPID": True, "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
        }
    )
    dry = cluster.kubectl("create", "--dry-run=server", "--validate=false", "-n", "secure", "-f", "-", input=privileged)
    real = cluster.kubectl("create", "--validate=false", "-n", "secure", "-f", "-", input=privileged)
    assert dry.returncode == real.returncode == 1
    assert dry.stderr == real.stderr
    assert dry.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "root" is forbidden: violates PodSecurity '
        '"baseline:latest": host namespaces (hostPID=true), privileged (container "c" must not set securityContext.privileged=true)'
    )


# --- the ephemeral-container patch ------------------------------------------------------------


def test_kubectl_patch_ephemeralcontainers_dry_run_server_adds_nothing(cluster: RunningCluster) -> None:
    rv = resource_version(cluster)
    patch = json.dumps({"spec": {"ephemeralContainers": [debug_container("dbg-kubectl")]}})
    result = cluster.kubectl(
        "patch", "pod", "web", "-n", "default", "--subresource=ephemeralcontainers", "--dry-run=server", "-o", "json", "-p", patch
    )
    assert result.returncode == 0, result.stderr
    answered = json.loads(result.stdout)
    assert [c["name"] for c in answered["spec"]["ephemeralContainers"]] == ["dbg-kubectl"]
    stored = json.loads(cluster.kubectl("get", "pod", "web", "-n", "default", "-o", "json").stdout)
    assert "ephemeralContainers" not in stored["spec"]
    assert not running(cluster, "default", "web", "dbg-kubectl")
    assert events_since(cluster, rv) == []


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [
        ("PATCH", "application/strategic-merge-patch+json", {"spec": {"ephemeralContainers": [debug_container("dbg")]}}),
        ("PATCH", "application/merge-patch+json", {"spec": {"ephemeralContainers": [debug_container("dbg")]}}),
        (
            "PATCH",
            "application/json-patch+json",
            [{"op": "add", "path": "/spec/ephemeralContainers", "value": [debug_container("dbg")]}],
        ),
        ("PUT", "application/json", None),  # the pod as read, plus the container
    ],
)
def test_every_ephemeral_write_answers_the_pod_as_it_would_be_and_changes_nothing(
    cluster: RunningCluster, method: str, content_type: str, body: Any
) -> None:
    code, before = call(cluster, "GET", "/api/v1/namespaces/default/pods/web")
    assert code == 200
    if body is None:
        body = {**before, "spec": {**before["spec"], "ephemeralContainers": [debug_container("dbg")]}}
    rv = resource_version(cluster)
    code, answered = call(cluster, method, ec_path("default", "web"), body, content_type=content_type)
    assert code == 200, answered
    (ec,) = answered["spec"]["ephemeralContainers"]
    # Defaulted as it would be stored...
    assert ec["name"] == "dbg" and ec["terminationMessagePath"] == "/dev/termination-log" and ec["imagePullPolicy"] == "Always"
    # ...yet not written: the resourceVersion is the stored one, and the stored pod is unchanged.
    assert answered["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    code, after = call(cluster, "GET", "/api/v1/namespaces/default/pods/web")
    assert after == before
    assert not running(cluster, "default", "web", "dbg")
    assert events_since(cluster, rv) == []


def test_python_client_dry_run_patch_as_the_portal_sends_it(core: client.CoreV1Api, cluster: RunningCluster) -> None:
    rv = resource_version(cluster)
    body = {"spec": {"ephemeralContainers": [debug_container("dbg-client", tty=True)]}}
    pod = core.patch_namespaced_pod_ephemeralcontainers("web", "default", body, dry_run="All")
    assert [c.name for c in pod.spec.ephemeral_containers] == ["dbg-client"]
    assert core.read_namespaced_pod("web", "default").spec.ephemeral_containers is None
    assert events_since(cluster, rv) == []


def test_dry_run_patch_runs_validation_and_pod_security(cluster: RunningCluster) -> None:
    # kubectl debug's default `general` profile adds SYS_PTRACE: refused under baseline, dry run or not.
    general = debug_container("dbg", securityContext={"capabilities": {"add": ["SYS_PTRACE"]}})
    code, status = call(
        cluster,
        "PATCH",
        ec_path("secure", "api"),
        {"spec": {"ephemeralContainers": [general]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods "api" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities '
        '(container "dbg" must not include "SYS_PTRACE" in securityContext.capabilities.add)'
    )
    code, status = call(
        cluster,
        "PATCH",
        ec_path("secure", "api"),
        {"spec": {"ephemeralContainers": [debug_container("dbg", targetContainerName="nope")]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert (
        code == 422
        and status["message"] == 'Pod "api" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: "nope"'
    )
    code, _ = call(
        cluster,
        "PATCH",
        ec_path("secure", "api"),
        {"spec": {"ephemeralContainers": [debug_container("dbg")]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 200  # the baseline profile passes...
    code, pod = call(cluster, "GET", "/api/v1/namespaces/secure/pods/api")
    assert "ephemeralContainers" not in pod["spec"]  # ...and is not added


def test_static_pods_refuse_ephemeral_containers_with_or_without_dry_run(cluster: RunningCluster) -> None:
    message = 'Pod "kube-apiserver-debian-11" is invalid: []: Forbidden: static pods do not support ephemeral containers'
    code, status = call(
        cluster,
        "PATCH",
        ec_path("kube-system", MIRROR),
        {"spec": {"ephemeralContainers": [debug_container("dbg", targetContainerName="kube-apiserver")]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 422 and status["message"] == message
    assert status["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": "Forbidden: static pods do not support ephemeral containers", "field": "[]"}
    ]
    result = cluster.kubectl("debug", "-n", "kube-system", MIRROR, "-c", "dbg", "--image=busybox", "--profile=baseline")
    assert result.returncode == 1
    assert f'The Pod "{MIRROR}" is invalid: []: Forbidden: static pods do not support ephemeral containers' in result.stderr


def test_a_dry_run_needs_the_same_rbac_as_the_real_request(cluster: RunningCluster) -> None:
    code, status = call(
        cluster,
        "PATCH",
        ec_path("default", "web"),
        {"spec": {"ephemeralContainers": [debug_container("dbg")]}},
        content_type="application/strategic-merge-patch+json",
        token="viewer-token",
    )
    assert code == 403
    assert status["message"] == (
        'pods "web" is forbidden: User "viewer" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "default"'
    )
    code, status = call(cluster, "POST", "/api/v1/namespaces/default/pods?dryRun=All", json.loads(POD_JSON), token="viewer-token")
    assert code == 403 and 'cannot create resource "pods"' in status["message"]


# --- bad values, the other writes, the audit log -----------------------------------------------


def test_an_unknown_dry_run_value_is_refused_before_anything_happens(cluster: RunningCluster) -> None:
    code, status = call(cluster, "POST", "/api/v1/namespaces/default/pods?dryRun=true", json.loads(POD_JSON))
    assert code == 422
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"true"}: supported values: "All"',
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "CreateOptions",
            "causes": [
                {
                    "reason": "FieldValueNotSupported",
                    "message": 'Unsupported value: []string{"true"}: supported values: "All"',
                    "field": "dryRun",
                }
            ],
        },
        "code": 422,
    }
    rv = resource_version(cluster)
    code, status = call(
        cluster,
        "PATCH",
        ec_path("default", "web", "dryRun=All&dryRun=server"),
        {"spec": {"ephemeralContainers": [debug_container("dbg")]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 422
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"All", "server"}: supported values: "All"'
    )
    code, status = call(cluster, "PUT", "/api/v1/namespaces/default/pods/web?dryRun=", {})
    assert code == 422 and status["message"].startswith(
        'UpdateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{""}'
    )
    code, status = call(cluster, "DELETE", "/api/v1/namespaces/default/pods/web", {"dryRun": ["Al"]})
    assert code == 422 and status["message"].startswith('DeleteOptions.meta.k8s.io "" is invalid: dryRun')
    assert events_since(cluster, rv) == []
    assert running(cluster, "default", "web", "app")


def test_kubectl_delete_and_label_dry_run_server_change_nothing(cluster: RunningCluster) -> None:
    rv = resource_version(cluster)
    deleted = cluster.kubectl("delete", "pod", "web", "-n", "default", "--dry-run=server")
    assert deleted.returncode == 0, deleted.stderr
    assert "(server dry run)" in deleted.stdout
    labelled = cluster.kubectl("label", "pod", "web", "-n", "default", "debugged=yes", "--dry-run=server", "-o", "json")
    assert labelled.returncode == 0, labelled.stderr
    assert json.loads(labelled.stdout)["metadata"]["labels"] == {"debugged": "yes"}
    ns = cluster.kubectl("label", "namespace", "default", "pod-security.kubernetes.io/enforce=restricted", "--dry-run=server")
    assert ns.returncode == 0, ns.stderr
    node = cluster.kubectl("delete", "node", "debian-12", "--dry-run=server")
    assert node.returncode == 0, node.stderr
    code, status = call(cluster, "POST", "/api/v1/namespaces?dryRun=All", {"metadata": {"name": "dry-ns"}})
    assert code == 201 and status["metadata"]["name"] == "dry-ns" and "resourceVersion" not in status["metadata"]

    pod = json.loads(cluster.kubectl("get", "pod", "web", "-n", "default", "-o", "json").stdout)
    assert "deletionTimestamp" not in pod["metadata"] and "labels" not in pod["metadata"]
    assert running(cluster, "default", "web", "app")
    assert (
        "pod-security.kubernetes.io/enforce"
        not in json.loads(cluster.kubectl("get", "ns", "default", "-o", "json").stdout)["metadata"]["labels"]
    )
    assert cluster.kubectl("get", "node", "debian-12").returncode == 0
    assert cluster.kubectl("get", "ns", "dry-ns").returncode == 1
    assert resource_version(cluster) == rv


def test_the_audit_log_shows_each_dry_run(cluster: RunningCluster, audit_log: Path) -> None:
    code, _ = call(
        cluster,
        "PATCH",
        ec_path("default", "web"),
        {"spec": {"ephemeralContainers": [debug_container("dbg-audit")]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 200
    code, _ = call(cluster, "POST", "/api/v1/namespaces/default/pods?dryRun=All", json.loads(POD_JSON))
    assert code == 201
    events = [json.loads(line) for line in audit_log.read_text().splitlines()]
    patch = next(
        e for e in reversed(events) if e["verb"] == "patch" and e["objectRef"].get("subresource") == "ephemeralcontainers"
    )
    assert patch["requestURI"] == "/api/v1/namespaces/default/pods/web/ephemeralcontainers?dryRun=All"
    assert patch["responseStatus"]["code"] == 200
    assert patch["requestObject"]["spec"]["ephemeralContainers"][0]["name"] == "dbg-audit"
    create = next(e for e in reversed(events) if e["verb"] == "create")
    assert create["requestURI"] == "/api/v1/namespaces/default/pods?dryRun=All"
    assert create["responseStatus"]["code"] == 201 and create["objectRef"] == {
        "resource": "pods",
        "apiVersion": "v1",
        "namespace": "default",
    }
