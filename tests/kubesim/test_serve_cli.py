"""`python -m kubesim serve` as a real subprocess: ready line, loopback only, clean SIGTERM, audit log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kubesim.testing import REPO_ROOT, spawn_cluster

pytestmark = [pytest.mark.timeout(60)]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_serve_prints_ready_line_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    with spawn_cluster(tmp_path, audit_log=audit) as cluster:
        assert cluster.process is not None
        assert cluster.url.startswith("https://127.0.0.1:")
        config = yaml.safe_load(cluster.kubeconfig.read_text())
        assert config["current-context"] == "kubesim"
        assert config["contexts"][0]["context"] == {"cluster": "kubesim", "user": "kubesim", "namespace": "default"}
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        assert cluster.kubeconfig.stat().st_mode & 0o777 == 0o600

        result = cluster.kubectl("get", "pods", "-l", "app=distroless-nginx", "-o", "jsonpath={.items[0].metadata.name}")
        assert result.returncode == 0 and result.stdout.startswith("distroless-nginx-")
        patch = cluster.kubectl("debug", "-c", "dbg", "--image=busybox", result.stdout, "--", "sleep", "300")
        assert patch.returncode == 0, patch.stderr
        deadline = time.monotonic() + 10
        while len(descendants(cluster.process.pid)) < 5:  # the 4 seeded pods' processes and the debug container
            assert time.monotonic() < deadline
            time.sleep(0.1)
        children = descendants(cluster.process.pid)
        cluster.process.send_signal(signal.SIGTERM)
        assert cluster.process.wait(20) == 0
        assert cluster.process.stdout is not None
        assert "kubesim stopped" in cluster.process.stdout.read()
    time.sleep(0.2)
    assert [pid for pid in children if alive(pid)] == []

    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert lines and all(e["stage"] == "ResponseComplete" and e["kind"] == "Event" for e in lines)
    verbs = {(e["verb"], e["objectRef"].get("subresource", "")) for e in lines if "objectRef" in e}
    assert ("list", "") in verbs and ("patch", "ephemeralcontainers") in verbs
    patch_event = next(e for e in lines if e["verb"] == "patch")
    assert patch_event["requestObject"]["spec"]["ephemeralContainers"][0]["name"] == "dbg"
    assert patch_event["responseStatus"]["code"] == 200
    assert patch_event["user"]["username"] == "kubernetes-admin"
    assert cluster.token not in audit.read_text()


def test_serve_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubesim", "serve", "--kubeconfig", str(tmp_path / "kc"), "--address", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 2
    assert "only 127.0.0.1 is allowed" in result.stderr
    assert not (tmp_path / "kc").exists()


def test_plain_http_and_state_file(tmp_path: Path) -> None:
    state = {
        "nodes": [{"metadata": {"name": "solo"}}],
        "namespaces": ["default", "team-a"],
        "pods": [
            {
                "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
                "spec": {"nodeName": "solo", "containers": [{"name": "web", "image": "busybox", "command": ["sleep", "60"]}]},
            }
        ],
    }
    with spawn_cluster(tmp_path, state=state, plain_http=True) as cluster:
        assert cluster.url.startswith("http://127.0.0.1:")
        out = cluster.kubectl("get", "pods", "-A", "--no-headers")
        assert out.returncode == 0, out.stderr
        assert [line.split()[:2] for line in out.stdout.splitlines()] == [["team-a", "web"]]
        assert cluster.kubectl("get", "nodes", "-o", "name").stdout.split() == ["node/solo"]
