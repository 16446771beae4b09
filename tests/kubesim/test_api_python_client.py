"""The official Python client (kubernetes 37) against kubesim: list, watch, patch, attach/exec streams."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from kubesim.testing import RunningCluster

pytestmark = [pytest.mark.timeout(60)]

POD = "distroless-nginx-7c9d8f6b5d-x2k4q"


@pytest.fixture
def core(kubesim_cluster: RunningCluster) -> Iterator[client.CoreV1Api]:
    api = kubesim_cluster.api_client()
    yield client.CoreV1Api(api)
    api.close()


def add_debug_container(core: client.CoreV1Api, name: str, command: list[str], **extra: Any) -> Any:
    body = {"spec": {"ephemeralContainers": [{"name": name, "image": "busybox", "command": command, **extra}]}}
    return core.patch_namespaced_pod_ephemeralcontainers(POD, "default", body)


def wait_running(core: client.CoreV1Api, name: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(POD, "default")
        for s in pod.status.ephemeral_container_statuses or []:
            if s.name == name and s.state.running:
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} never ran")


def test_list_with_selectors(core: client.CoreV1Api) -> None:
    pods = core.list_pod_for_all_namespaces(label_selector="app in (payments-api, distroless-nginx)")
    assert sorted(p.metadata.name for p in pods.items) == [POD, "payments-api-5f7b9c6d4-q8wzt"]
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=debian-12,metadata.namespace=payments")
    assert len(pods.items) == 2
    pods = core.list_namespaced_pod("default", label_selector="!app")
    assert pods.items == []
    assert [n.metadata.name for n in core.list_node().items] == ["debian-11", "debian-12"]
    assert sorted(n.metadata.name for n in core.list_namespace().items) == ["default", "kube-system", "payments"]
    pod = core.read_namespaced_pod(POD, "default")
    assert pod.status.phase == "Running" and pod.status.pod_ip and pod.spec.node_name == "debian-11"
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", "default")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"


def test_watch_sees_ephemeral_container_start(core: client.CoreV1Api) -> None:
    initial = core.list_namespaced_pod("default", field_selector=f"metadata.name={POD}")
    events: list[tuple[str, Any]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(
            core.list_namespaced_pod,
            "default",
            field_selector=f"metadata.name={POD}",
            resource_version=initial.metadata.resource_version,
            timeout_seconds=15,
        ):
            events.append((event["type"], event["object"]))
            statuses = event["object"].status.ephemeral_container_statuses or []
            if any(s.name == "watched" and s.state.running for s in statuses):
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    add_debug_container(core, "watched", ["sleep", "30"])
    thread.join(20)
    assert not thread.is_alive()
    assert events and all(t == "MODIFIED" for t, _ in events)
    last = events[-1][1]
    assert [c.name for c in last.spec.ephemeral_containers] == ["watched"]
    versions = [int(o.metadata.resource_version) for _, o in events]
    assert versions == sorted(versions) and versions[0] > int(initial.metadata.resource_version)


def test_exec_stream_with_v5(core: client.CoreV1Api) -> None:
    add_debug_container(core, "shell", ["sleep", "60"])
    wait_running(core, "shell")
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        POD,
        "default",
        container="shell",
        command=["sh", "-c", "echo out; echo err >&2; exit 5"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    assert resp.subprotocol == "v5.channel.k8s.io"
    assert resp.read_stdout() == "out\n"
    assert resp.read_stderr() == "err\n"
    assert resp.returncode == 5
    resp.close()
    # The simple form returns stdout.
    out = stream(
        core.connect_get_namespaced_pod_exec,
        POD,
        "default",
        container="shell",
        command=["echo", "hello"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert out == "hello\n"


def test_attach_stream(core: client.CoreV1Api) -> None:
    add_debug_container(core, "cat", ["cat"], stdin=True)
    wait_running(core, "cat")
    resp = stream(
        core.connect_get_namespaced_pod_attach,
        POD,
        "default",
        container="cat",
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        # bytes go as a binary frame, a str as a text frame: the kubelet takes both.
        resp.write_stdin(b"ping\n")
        resp.write_stdin("pong\n")
        deadline = time.monotonic() + 10
        out = ""
        while "pong" not in out and time.monotonic() < deadline:
            resp.update(timeout=1)
            out += resp.read_stdout()
        assert out == "ping\npong\n"
    finally:
        resp.close()


def test_exec_into_unknown_container_is_bad_request(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        stream(
            core.connect_get_namespaced_pod_exec,
            POD,
            "default",
            container="ghost",
            command=["true"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
    # The client reports a failed websocket handshake with status 0 and the HTTP status in the reason.
    assert "400" in str(err.value)


def test_logs(core: client.CoreV1Api) -> None:
    add_debug_container(core, "talker", ["sh", "-c", "echo one; echo two; sleep 30"])
    wait_running(core, "talker")
    deadline = time.monotonic() + 10
    text = ""
    while "two" not in text and time.monotonic() < deadline:
        text = core.read_namespaced_pod_log(POD, "default", container="talker")
        time.sleep(0.1)
    assert text == "one\ntwo\n"
    assert core.read_namespaced_pod_log(POD, "default", container="talker", tail_lines=1) == "two\n"


def test_paginated_list(core: client.CoreV1Api) -> None:
    first = core.list_pod_for_all_namespaces(limit=3)
    assert len(first.items) == 3 and first.metadata.remaining_item_count == 1 and first.metadata._continue
    rest = core.list_pod_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    assert len(rest.items) == 1 and not rest.metadata._continue
    names = [p.metadata.name for p in first.items + rest.items]
    assert names == [p.metadata.name for p in core.list_pod_for_all_namespaces().items]
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=1, _continue="!!!")
    assert err.value.status == 400
