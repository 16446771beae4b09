"""The real kubectl v1.37 against kubesim over HTTPS: the demo walkthrough and the debug workflows."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pexpect
import pytest

from kubesim.testing import KUBECTL, RunningCluster

pytestmark = [pytest.mark.timeout(90)]

NGINX_POD = "distroless-nginx-7c9d8f6b5d-x2k4q"


def pod_json(cluster: RunningCluster, name: str, namespace: str = "default") -> dict[str, Any]:
    result = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(predicate: Any, timeout: float = 15, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def ephemeral_state(cluster: RunningCluster, pod: str, container: str) -> dict[str, Any]:
    statuses = pod_json(cluster, pod)["status"].get("ephemeralContainerStatuses") or []
    return next((s["state"] for s in statuses if s["name"] == container), {})


def test_seed_pod_is_found_by_label(kubesim_cluster: RunningCluster) -> None:
    result = kubesim_cluster.kubectl("get", "pods", "-l", "app=distroless-nginx", "-o", "jsonpath={.items[0].metadata.name}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == NGINX_POD


def test_get_pods_prints_the_server_side_table(kubesim_cluster: RunningCluster) -> None:
    result = kubesim_cluster.kubectl("get", "pods", "-A", "-o", "wide")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:8] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    by_name = {r.split()[1]: r.split() for r in rows}
    assert by_name[NGINX_POD][0] == "default" and by_name[NGINX_POD][7] == "debian-11"
    assert by_name["payments-api-5f7b9c6d4-q8wzt"][2] == "2/2"
    assert {r.split()[0] for r in rows} == {"default", "payments", "kube-system"}
    nodes = kubesim_cluster.kubectl("get", "nodes")
    assert [line.split()[:2] for line in nodes.stdout.splitlines()[1:]] == [["debian-11", "Ready"], ["debian-12", "Ready"]]


def test_crashlooping_pod_shows_crashloopbackoff(kubesim_cluster: RunningCluster) -> None:
    def status() -> str:
        out = kubesim_cluster.kubectl("get", "pod", "-n", "payments", "ledger-worker-6b8d7f9c5-m4n7p", "--no-headers").stdout
        return out.split()[2] if out else ""

    assert wait_for(lambda: status() == "CrashLoopBackOff", timeout=20)


def test_exec_bash_into_distroless_fails_like_containerd(kubesim_cluster: RunningCluster) -> None:
    result = kubesim_cluster.kubectl("exec", NGINX_POD, "--", "bash")
    assert result.returncode != 0
    assert 'exec: "bash": executable file not found in $PATH' in result.stderr
    # The same through a real terminal, as a user types it.
    child = pexpect.spawn(
        KUBECTL,
        ["--kubeconfig", str(kubesim_cluster.kubeconfig), "exec", "-it", NGINX_POD, "--", "bash"],
        encoding="utf-8",
        timeout=20,
    )
    child.expect('exec: "bash": executable file not found in \\$PATH')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0


def test_logs_follow_until_the_container_exits(kubesim_cluster: RunningCluster) -> None:
    started = kubesim_cluster.kubectl(
        "debug",
        "-c",
        "counter",
        "--image=busybox",
        NGINX_POD,
        "--",
        "sh",
        "-c",
        "sleep 0.5; for i in 1 2 3; do echo line $i; sleep 0.3; done",
    )
    assert started.returncode == 0, started.stderr
    wait_for(lambda: ephemeral_state(kubesim_cluster, NGINX_POD, "counter").get("running") is not None)
    result = kubesim_cluster.kubectl("logs", "-f", "-c", "counter", NGINX_POD, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line 1\nline 2\nline 3\n"
    payments = kubesim_cluster.kubectl("logs", "-n", "payments", "payments-api-5f7b9c6d4-q8wzt")
    assert payments.stdout == "payments-api listening on :8080\n"  # the default-container annotation picks `api`


@pytest.mark.slow
def test_debug_interactive_shell_sees_target_processes(kubesim_cluster: RunningCluster) -> None:
    env = {**os.environ, "TERM": "xterm", "PS1": "# "}
    child = pexpect.spawn(
        KUBECTL,
        [
            "--kubeconfig",
            str(kubesim_cluster.kubeconfig),
            "debug",
            "-it",
            "-c",
            "debugger",
            "--target=distroless-nginx-ctr",
            "--image=busybox",
            NGINX_POD,
        ],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )
    try:
        child.expect("If you don't see a command prompt")
        child.sendline("")
        child.expect(r"[#$] ")
        child.sendline("ps aux")
        child.expect("nginx: master process")
        child.expect("nginx: worker process")
        child.expect(r"[#$] ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    state = wait_for(lambda: ephemeral_state(kubesim_cluster, NGINX_POD, "debugger").get("terminated"))
    assert state["exitCode"] == 0


@pytest.mark.slow
def test_debug_exec_attach_yaml_and_delete(kubesim_cluster: RunningCluster) -> None:
    k = kubesim_cluster.kubectl
    # -i attaches stdin: it must stay open (a terminal here) for the attach to wait for the output;
    # stdin closed on a container without stdinOnce ends the attach at once, as on a cluster.
    once = pexpect.spawn(
        KUBECTL,
        ["--kubeconfig", str(kubesim_cluster.kubeconfig), "debug", "-i", "-c", "once", "--image=busybox",
         "--target=distroless-nginx-ctr", NGINX_POD, "--", "sh", "-c", "sleep 1; echo hi"],
        encoding="utf-8",
        timeout=30,
    )
    try:
        once.expect(r"\bhi\r\n")
        once.expect(pexpect.EOF)
    finally:
        once.close(force=True)
    assert once.exitstatus == 0

    # A long-running debug container, started without attaching.
    out = k(
        "debug",
        "-c",
        "shell",
        "--image=busybox",
        NGINX_POD,
        "--",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done",
    )
    assert out.returncode == 0, out.stderr
    assert wait_for(lambda: ephemeral_state(kubesim_cluster, NGINX_POD, "shell").get("running") is not None)

    exec_result = k("exec", "-c", "shell", NGINX_POD, "--", "sh", "-c", "exit 3")
    assert exec_result.returncode == 3
    assert "command terminated with exit code 3" in exec_result.stderr

    child = pexpect.spawn(
        KUBECTL,
        ["--kubeconfig", str(kubesim_cluster.kubeconfig), "attach", NGINX_POD, "-c", "shell"],
        encoding="utf-8",
        timeout=20,
    )
    try:
        child.expect(r"tick \d+")
        child.expect(r"tick \d+")
    finally:
        child.close(force=True)

    pod_yaml = k("get", "pod", NGINX_POD, "-o", "yaml").stdout
    assert "ephemeralContainers:" in pod_yaml and "name: shell" in pod_yaml
    pod = pod_json(kubesim_cluster, NGINX_POD)
    names = [c["name"] for c in pod["spec"]["ephemeralContainers"]]
    assert names == ["once", "shell"]
    shell_spec = pod["spec"]["ephemeralContainers"][1]
    assert shell_spec["terminationMessagePath"] == "/dev/termination-log"
    assert shell_spec["imagePullPolicy"] == "Always"
    statuses = {s["name"]: s for s in pod["status"]["ephemeralContainerStatuses"]}
    assert statuses["once"]["state"]["terminated"]["exitCode"] == 0
    assert "running" in statuses["shell"]["state"]

    runtime = kubesim_cluster.sim.cluster.runtime  # type: ignore[union-attr]
    keys = [("default", NGINX_POD, c) for c in ("distroless-nginx-ctr", "shell")]
    pids = [p.pid for key in keys for p in runtime.processes(key)]  # type: ignore[attr-defined]
    assert pids
    started = time.monotonic()
    deleted = k("delete", "pod", NGINX_POD, timeout=30)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f'pod "{NGINX_POD}" deleted from default namespace'
    assert time.monotonic() - started < 10
    gone = k("get", "pod", NGINX_POD)
    assert "NotFound" in gone.stderr
    for pid in pids:
        assert not _alive(pid), f"process {pid} survived the pod"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; only a live process counts.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_debug_node_creates_the_pod_from_protobuf(kubesim_cluster: RunningCluster) -> None:
    out = kubesim_cluster.kubectl(
        "debug", "-i", "node/debian-12", "--image=busybox", "--profile=sysadmin", "--", "sh", "-c", "echo on-the-node"
    )
    assert out.returncode == 0, out.stderr
    assert "on-the-node" in out.stdout
    pods = json.loads(
        kubesim_cluster.kubectl("get", "pods", "-l", "app.kubernetes.io/managed-by=kubectl-debug", "-o", "json").stdout
    )["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["name"].startswith("node-debugger-debian-12-")
    assert pod["spec"]["nodeName"] == "debian-12" and pod["spec"]["hostPID"] is True
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert pod["spec"]["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]
    assert pod["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]  # hostNetwork
