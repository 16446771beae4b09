"""kubesim's isolation over a pod's life and kubesim's own (issue 14): shared PID namespaces,
host networking, attach to a stopped container, and nothing left behind, even after SIGKILL.

Under the real kubectl v1.37. Like test_isolation.py these fail, never skip, where kubesim
can't isolate (not root, no namespaces).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubesim.testing import RunningCluster, run_cluster, spawn_cluster

pytestmark = [pytest.mark.timeout(120)]

NGINX_POD = "distroless-nginx-7c9d8f6b5d-x2k4q"


def _wait(what: str, check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {seconds} s"
        time.sleep(0.2)


def _running(cluster: RunningCluster, pod: str) -> bool:
    return cluster.kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout == "Running"


def _create(cluster: RunningCluster, name: str, spec: dict) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    created = cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(pod))
    assert created.returncode == 0, created.stderr
    _wait(f"{name} running", lambda: _running(cluster, name))


def _pause_holders() -> set[int]:
    """This machine's pod holders (`/pause`, as kubesim names them), by pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if args and args[0] == b"/pause" and state != "Z":
                found.add(int(entry.name))
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path) as running:
        assert running.sim is not None and running.sim.cluster.runtime.sandbox is not None, (  # type: ignore[attr-defined,union-attr]
            "kubesim runs containers unisolated here (see its start-up warning)")
        yield running


def test_a_shared_process_namespace_has_pause_as_pid_1_and_it_ends_with_the_pod(cluster: RunningCluster) -> None:
    before = _pause_holders()
    _create(cluster, "shared", {"shareProcessNamespace": True, "containers": [
        {"name": "one", "image": "busybox", "command": ["sleep", "1111"]},
        {"name": "two", "image": "busybox", "command": ["sleep", "2222"]},
    ]})
    ours = _pause_holders() - before
    assert len(ours) == 1, ours
    ps = cluster.kubectl("exec", "shared", "-c", "one", "--", "ps", "-o", "pid,args")
    assert ps.returncode == 0, ps.stderr
    rows = [line.split(None, 1) for line in ps.stdout.splitlines()[1:]]
    assert rows[0][0] == "1" and rows[0][1].endswith("/pause"), rows
    assert {args for _pid, args in rows} >= {"sleep 1111", "sleep 2222"}
    # Each container still has its own root filesystem and identity; hostname is the pod's.
    assert cluster.kubectl("exec", "shared", "-c", "two", "--", "hostname").stdout == "shared\n"
    deleted = cluster.kubectl("delete", "pod", "shared", "--wait=true")
    assert deleted.returncode == 0, deleted.stderr
    _wait("the pod's /pause holder gone", lambda: not (ours & _pause_holders()), 15)


def test_a_host_network_pod_is_named_like_its_node_and_a_plain_one_like_itself(cluster: RunningCluster) -> None:
    _create(cluster, "onhost", {"nodeName": "debian-12", "hostNetwork": True,
                                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "600"]}]})
    _create(cluster, "plain", {"nodeName": "debian-12", "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "600"]}]})
    assert cluster.kubectl("exec", "onhost", "--", "hostname").stdout == "debian-12\n"
    assert cluster.kubectl("exec", "plain", "--", "hostname").stdout == "plain\n"


def test_attach_to_a_stopped_container_upgrades_then_says_why_on_the_status_channel(cluster: RunningCluster) -> None:
    result = cluster.kubectl("debug", NGINX_POD, "-c", "finished", "--image=busybox", "--", "true")
    assert result.returncode == 0, result.stderr
    _wait("the debug container ended", lambda: cluster.kubectl(
        "get", "pod", NGINX_POD, "-o",
        "jsonpath={.status.ephemeralContainerStatuses[?(@.name=='finished')].state.terminated.exitCode}").stdout == "0")
    attached = cluster.kubectl("attach", NGINX_POD, "-c", "finished")
    assert attached.returncode != 0
    assert re.search(r'container not found \("finished"\)', attached.stderr), attached.stderr
    assert "unable to upgrade connection" not in attached.stderr  # it upgraded; the Status said why


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


def test_a_sigkilled_kubesim_leaves_no_process_or_mount_and_the_next_start_clears_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_parent = tmp_path / "run"
    monkeypatch.setenv("KUBESIM_RUN_DIR", str(run_parent))
    with spawn_cluster(tmp_path / "first") as first:
        result = first.kubectl("debug", NGINX_POD, "-c", "dbg", "--image=busybox",
                               "--target=distroless-nginx-ctr", "--", "sleep", "600")
        assert result.returncode == 0, result.stderr
        _wait("the debug container runs", lambda: first.kubectl("exec", NGINX_POD, "-c", "dbg", "--", "true").returncode == 0)
        assert first.process is not None
        pid = first.process.pid
        processes = _descendants(pid)
        assert len(processes) >= 10, processes  # node inits, pod holders, nginx, coredns, the debug container...
        (run_dir,) = run_parent.glob(f"kubesim-{pid}-*")
        assert not _mounts_under(run_dir)  # every container's mounts live in its own mount namespace
        os.kill(pid, signal.SIGKILL)
        first.process.wait(10)
        _wait("every container process gone", lambda: not [p for p in processes if _alive(p)], 15)
        assert not _mounts_under(run_dir) and not _mounts_under(run_parent)
        assert run_dir.exists()  # what a SIGKILL can't clean up...
    with spawn_cluster(tmp_path / "second"):
        assert not run_dir.exists()  # ...the next start does
        assert len(list(run_parent.glob("kubesim-*"))) == 1


def test_where_namespaces_are_off_kubesim_says_so_when_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBESIM_ISOLATION", "off")
    with spawn_cluster(tmp_path) as cluster:
        assert cluster.process is not None and cluster.process.stderr is not None
        cluster.process.send_signal(signal.SIGTERM)
        cluster.process.wait(20)
        stderr = cluster.process.stderr.read()
    assert "containers are plain processes on this machine" in stderr, stderr
