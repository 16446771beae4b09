"""Watch semantics over raw HTTP: replay, watch-list bookmarks, 410 Gone, timeouts, Tables."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from kubesim.testing import RunningCluster, run_cluster

pytestmark = [pytest.mark.timeout(60)]

PODS = "/api/v1/namespaces/default/pods"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def request(cluster: RunningCluster, method: str, path: str, body: Any = None, accept: str = "application/json") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.url + path, data=data, method=method)  # noqa: S310 - always the cluster\'s own URL
    req.add_header("Authorization", f"Bearer {cluster.token}")
    req.add_header("Accept", accept)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    return urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(cluster.ca_file)), timeout=20)  # noqa: S310


def get(cluster: RunningCluster, path: str, accept: str = "application/json") -> Any:
    with request(cluster, "GET", path, accept=accept) as resp:
        return json.loads(resp.read())


def events(cluster: RunningCluster, path: str, accept: str = "application/json") -> Iterator[dict[str, Any]]:
    with request(cluster, "GET", path, accept=accept) as resp:
        for line in resp:
            yield json.loads(line)


def new_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "w"}},
        "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}]},
    }


def test_watch_list_sends_initial_events_then_the_end_bookmark(kubesim_session_cluster: RunningCluster) -> None:
    stream = events(
        kubesim_session_cluster,
        "/api/v1/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2",
    )
    seen: list[dict[str, Any]] = []
    for event in stream:
        seen.append(event)
        if event["type"] == "BOOKMARK":
            break
    added = [e["object"]["metadata"]["name"] for e in seen if e["type"] == "ADDED"]
    assert len(added) >= 4 and "coredns-6f6b679f8f-7xk2p" in added
    bookmark = seen[-1]["object"]
    assert bookmark["kind"] == "Pod"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in seen if e["type"] == "ADDED"
    )


def test_watch_from_resource_version_replays_and_follows(kubesim_cluster: RunningCluster) -> None:
    rv = get(kubesim_cluster, PODS)["metadata"]["resourceVersion"]
    with request(kubesim_cluster, "POST", PODS, new_pod("watched")) as resp:
        assert resp.status == 201
        created = json.loads(resp.read())
    assert created["metadata"]["uid"] and created["status"]["phase"] == "Pending"
    assert int(created["metadata"]["resourceVersion"]) > int(rv)
    request(
        kubesim_cluster, "DELETE", f"{PODS}/watched", {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 1}
    ).close()
    types: list[str] = []
    started = time.monotonic()
    for event in events(kubesim_cluster, f"{PODS}?watch=true&labelSelector=app%3Dw&resourceVersion={rv}&timeoutSeconds=10"):
        assert event["object"]["metadata"]["name"] == "watched"
        types.append(event["type"])
        if event["type"] == "DELETED":
            break
    assert types[0] == "ADDED" and types[-1] == "DELETED" and set(types[1:-1]) <= {"MODIFIED"}
    assert time.monotonic() - started < 8, "deletion must finish promptly"
    assert "MODIFIED" in types  # at least the deletionTimestamp update


def test_watch_ends_after_timeout_seconds(kubesim_session_cluster: RunningCluster) -> None:
    rv = get(kubesim_session_cluster, "/api/v1/nodes")["metadata"]["resourceVersion"]
    started = time.monotonic()
    assert list(events(kubesim_session_cluster, f"/api/v1/nodes?watch=true&resourceVersion={rv}&timeoutSeconds=1")) == []
    assert 0.9 < time.monotonic() - started < 5


def test_expired_resource_version_is_410_gone(tmp_path: Any) -> None:
    with run_cluster(tmp_path, history=3) as cluster:
        for i in range(5):
            request(cluster, "POST", PODS, new_pod(f"churn-{i}")).close()
        stream = list(events(cluster, f"{PODS}?watch=true&resourceVersion=2"))
        assert len(stream) == 1 and stream[0]["type"] == "ERROR"
        status = stream[0]["object"]
        assert status["code"] == 410 and status["reason"] == "Expired"
        assert status["message"].startswith("too old resource version: 2 (")


def test_tables_for_get(kubesim_session_cluster: RunningCluster) -> None:
    table = get(kubesim_session_cluster, "/api/v1/namespaces/payments/pods", accept=TABLE)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [c["priority"] for c in table["columnDefinitions"]][5:7] == [1, 1]
    row = next(r for r in table["rows"] if r["cells"][0].startswith("payments-api"))
    assert row["cells"][1] == "2/2" and row["object"]["kind"] == "PartialObjectMetadata"
    ns = get(kubesim_session_cluster, "/api/v1/namespaces", accept=TABLE)
    assert sorted(r["cells"][0] for r in ns["rows"]) == ["default", "kube-system", "payments"]
    plain = get(kubesim_session_cluster, "/api/v1/namespaces/payments/pods")
    assert plain["kind"] == "PodList"


def test_discovery(kubesim_session_cluster: RunningCluster) -> None:
    version = get(kubesim_session_cluster, "/version")
    assert version["major"] == "1" and version["minor"] == "37" and version["gitVersion"].startswith("v1.37.")
    assert get(kubesim_session_cluster, "/api")["versions"] == ["v1"]
    resources = {r["name"]: r for r in get(kubesim_session_cluster, "/api/v1")["resources"]}
    for name in (
        "pods",
        "pods/ephemeralcontainers",
        "pods/attach",
        "pods/exec",
        "pods/log",
        "pods/status",
        "nodes",
        "namespaces",
    ):
        assert name in resources
    assert resources["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
    assert get(kubesim_session_cluster, "/apis") == {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
    result = kubesim_session_cluster.kubectl("api-resources", "--no-headers")
    assert result.returncode == 0 and "ephemeral" not in result.stdout and "pods" in result.stdout
    assert "v1.37" in kubesim_session_cluster.kubectl("version").stdout


def test_kubectl_get_watch_prints_changes(kubesim_cluster: RunningCluster) -> None:
    import subprocess

    from kubesim.testing import KUBECTL

    proc = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(kubesim_cluster.kubeconfig), "get", "pods", "-w", "--request-timeout=4s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    request(kubesim_cluster, "POST", PODS, new_pod("late-arrival")).close()
    out, _ = proc.communicate(timeout=20)
    assert out.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert any(line.startswith("late-arrival") for line in out.splitlines())


def test_label_change_moves_a_pod_in_and_out_of_a_watch(kubesim_cluster: RunningCluster) -> None:
    rv = get(kubesim_cluster, PODS)["metadata"]["resourceVersion"]
    name = "distroless-nginx-7c9d8f6b5d-x2k4q"

    def label(value: str | None) -> None:
        req = urllib.request.Request(  # noqa: S310 - always the cluster's own URL
            f"{kubesim_cluster.url}{PODS}/{name}",
            data=json.dumps({"metadata": {"labels": {"tier": value}}}).encode(),
            method="PATCH",
        )
        req.add_header("Authorization", f"Bearer {kubesim_cluster.token}")
        req.add_header("Content-Type", "application/merge-patch+json")
        ctx = ssl.create_default_context(cafile=str(kubesim_cluster.ca_file))
        urllib.request.urlopen(req, context=ctx, timeout=10).close()  # noqa: S310

    label("front")
    label("back")
    label("front")
    seen = [
        e["type"]
        for e in events(kubesim_cluster, f"{PODS}?watch=true&labelSelector=tier%3Dfront&resourceVersion={rv}&timeoutSeconds=1")
    ]
    # (status updates from the runtime may add MODIFIED events while the pod is selected)
    assert [t for t in seen if t != "MODIFIED"] == ["ADDED", "DELETED", "ADDED"] and seen[0] == "ADDED"
