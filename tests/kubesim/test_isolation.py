"""What each debug profile really grants, under the real kubectl v1.37 (issue 14).

kubesim's containers have their own PID, mount, UTS, IPC and network namespaces, root
filesystems and capability sets (kubesim/runtime/isolation.py), so these outputs are the
ones a cluster gives. Where isolation can't work (not root, no namespaces) kubesim falls back
to plain processes and these tests fail: they don't skip, in CI or anywhere.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from kubesim.runtime.rootfs import NGINX_CONF
from kubesim.testing import KUBECTL, RunningCluster, run_cluster

pytestmark = [pytest.mark.timeout(120)]

NGINX_POD = "distroless-nginx-7c9d8f6b5d-x2k4q"
TARGET = "distroless-nginx-ctr"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("isolation")) as running:
        assert running.sim is not None and running.sim.cluster.runtime.sandbox is not None, (  # type: ignore[attr-defined,union-attr]
            "kubesim runs containers unisolated here (see its start-up warning)")
        yield running


NONROOT_IMAGE = "gcr.io/distroless/base:debug-nonroot"  # a busybox shell whose image runs as uid 65532


def _debug(cluster: RunningCluster, name: str, profile: str, *, target: bool = True) -> None:
    # `restricted` sets runAsNonRoot: a kubelet refuses an image that runs as root (busybox).
    image = NONROOT_IMAGE if profile == "restricted" else "busybox"
    args = ["debug", NGINX_POD, "-c", name, f"--image={image}", f"--profile={profile}"]
    if target:
        args.append(f"--target={TARGET}")
    result = cluster.kubectl(*args, "--", "sleep", "600")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 20
    while cluster.kubectl("exec", NGINX_POD, "-c", name, "--", "true").returncode != 0:
        assert time.monotonic() < deadline, f"{name} never ran"
        time.sleep(0.2)


def _exec(cluster: RunningCluster, container: str, *command: str) -> tuple[int, str, str]:
    result = cluster.kubectl("exec", NGINX_POD, "-c", container, "--", *command)
    return result.returncode, result.stdout, result.stderr


def _ps(cluster: RunningCluster, container: str) -> list[tuple[int, str]]:
    code, out, err = _exec(cluster, container, "ps", "-o", "pid,args")
    assert code == 0, err
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines()[1:]]


def test_with_target_pid_1_is_the_nginx_master_and_nothing_of_the_machine(cluster: RunningCluster) -> None:
    _debug(cluster, "withtarget", "general")
    rows = _ps(cluster, "withtarget")
    assert rows[0] == (1, "nginx: master process /usr/sbin/nginx -g daemon off;")
    commands = [args for _, args in rows]
    assert commands.count("nginx: worker process") == 4
    assert set(commands) == {"nginx: master process /usr/sbin/nginx -g daemon off;", "nginx: worker process",
                             "sleep 600", "ps -o pid,args"}
    assert _exec(cluster, "withtarget", "hostname")[1] == NGINX_POD + "\n"


def test_without_target_only_its_own_processes(cluster: RunningCluster) -> None:
    _debug(cluster, "notarget", "general", target=False)
    rows = _ps(cluster, "notarget")
    assert rows == [(1, "sleep 600"), (rows[1][0], "ps -o pid,args")]


# restricted reads them: its only image that can start runs as nonroot, the target's own uid,
# and the kernel lets a process without capabilities into another of its uid (as on a node).
@pytest.mark.parametrize(("profile", "readable"), [("general", True), ("sysadmin", True), ("baseline", False),
                                                   ("restricted", True), ("netadmin", False)])
def test_the_targets_files_per_profile(cluster: RunningCluster, profile: str, readable: bool) -> None:
    name = f"files-{profile}"
    _debug(cluster, name, profile)
    code, out, err = _exec(cluster, name, "ls", "/proc/1/root/etc/nginx")
    if readable:
        assert (code, out.split()) == (0, ["mime.types", "nginx.conf"]), err
        # Copying a file out of the distroless target through the debug container: its bytes.
        code, conf, err = _exec(cluster, name, "cat", "/proc/1/root/etc/nginx/nginx.conf")
        assert (code, conf) == (0, NGINX_CONF), err
    else:
        assert code != 0 and "Permission denied" in err, (code, out, err)


def test_restricted_with_an_image_that_runs_as_root_never_starts(cluster: RunningCluster) -> None:
    """As a kubelet: runAsNonRoot and busybox's root user give CreateContainerConfigError."""
    result = cluster.kubectl("debug", NGINX_POD, "-c", "rootimage", "--image=busybox", "--profile=restricted",
                             f"--target={TARGET}", "--", "sleep", "600")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while True:
        pod = json.loads(cluster.kubectl("get", "pod", NGINX_POD, "-o", "json").stdout)
        state = next(s for s in pod["status"]["ephemeralContainerStatuses"] if s["name"] == "rootimage")["state"]
        if "waiting" in state and state["waiting"]["reason"] != "ContainerCreating":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["waiting"] == {
        "reason": "CreateContainerConfigError",
        "message": f'container has runAsNonRoot and image will run as root (pod: "{NGINX_POD}_default'
                   f'({pod["metadata"]["uid"]})", container: rootimage)',
    }
    assert _exec(cluster, "rootimage", "true")[0] != 0


def test_capabilities_follow_the_profile(cluster: RunningCluster) -> None:
    def bounding(container: str) -> int:
        code, out, err = _exec(cluster, container, "grep", "CapBnd", "/proc/self/status")
        assert code == 0, err
        return int(out.split()[1], 16)

    sys_ptrace, net_admin, net_raw, sys_admin = 1 << 19, 1 << 12, 1 << 13, 1 << 21
    _debug(cluster, "caps-netadmin", "netadmin")
    _debug(cluster, "caps-general", "general")
    general, netadmin = bounding("caps-general"), bounding("caps-netadmin")
    assert netadmin & net_admin and netadmin & net_raw and not netadmin & sys_ptrace and not netadmin & sys_admin
    assert general & sys_ptrace and not general & net_admin and not general & sys_admin
    _debug(cluster, "caps-restricted", "restricted")
    assert bounding("caps-restricted") == 0
    assert _exec(cluster, "caps-restricted", "id", "-u")[1] == "65532\n"  # non-root
    _debug(cluster, "caps-sysadmin", "sysadmin")
    assert bounding("caps-sysadmin") & sys_admin


def test_the_debug_shell_sees_none_of_the_machines_files(cluster: RunningCluster) -> None:
    _debug(cluster, "rootfs", "general")
    code, out, _ = _exec(cluster, "rootfs", "ls", "/")
    assert code == 0
    assert "work" not in out.split() and "bin" in out.split()
    assert _exec(cluster, "rootfs", "ls", "/etc/nginx")[0] != 0  # the busybox image has no nginx
    checkout = str(Path(__file__).resolve().parents[2])
    assert _exec(cluster, "rootfs", "ls", checkout)[0] != 0  # the machine's checkout is not there


def _spawn(cluster: RunningCluster, *args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "PS1": "# "}
    return pexpect.spawn(KUBECTL, ["--kubeconfig", str(cluster.kubeconfig), *args], env=env, encoding="utf-8",
                         timeout=30, dimensions=(40, 200))


def test_node_debugger_chroots_into_the_node_and_sees_only_its_pods(cluster: RunningCluster) -> None:
    for node, seconds in (("debian-11", "1111"), ("debian-12", "4242")):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"marker-{node}"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", seconds]}]}}
        created = cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(pod))
        assert created.returncode == 0, created.stderr
    deadline = time.monotonic() + 20
    while "Running Running" not in " ".join(
            cluster.kubectl("get", "pod", f"marker-{n}", "-o", "jsonpath={.status.phase}").stdout for n in ("debian-11", "debian-12")):
        assert time.monotonic() < deadline, "the marker pods never ran"
        time.sleep(0.2)
    child = _spawn(cluster, "debug", "node/debian-11", "-it", "--image=busybox", "--profile=sysadmin")
    try:
        child.expect("If you don't see a command prompt")
        child.sendline("")
        child.expect(r"# ")
        child.sendline("ps -o args > /tmp/ps.txt; echo PS-$((40+2))")
        child.expect("PS-42")
        child.expect(r"# ")
        child.sendline("grep -c -e '^sleep 1111' -e '^sleep 4242' -e '^nginx: master' /tmp/ps.txt; echo M-$((40+2))")
        child.expect(r"(\d+)\r\nM-42")
        assert int(child.match.group(1)) == 2, "sleep 1111 and the nginx master run on debian-11"
        child.sendline("grep -c '^sleep 4242' /tmp/ps.txt; echo O-$((40+2))")
        child.expect(r"(\d+)\r\nO-42")
        assert int(child.match.group(1)) == 0, "sleep 4242 runs on debian-12, not here"
        child.sendline("chroot /host")
        child.expect(r"# ")
        child.sendline("cat /etc/hostname; grep PRETTY /etc/os-release; echo HOST-DONE")
        child.expect(r"debian-11\r\nPRETTY_NAME=\"Debian GNU/Linux 12 \(bookworm\)\"\r\nHOST-DONE")
        child.sendline("hostname; echo NAME-DONE")
        child.expect(r"debian-11\r\nNAME-DONE")  # hostNetwork: the node's name
        child.sendline("exit")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_detach_with_ctrl_p_ctrl_q_and_attach_again_to_the_same_shell(cluster: RunningCluster) -> None:
    child = _spawn(cluster, "debug", NGINX_POD, "-it", "-c", "detacher", f"--target={TARGET}", "--image=busybox")
    try:
        child.expect("If you don't see a command prompt")
        child.sendline("")
        child.expect(r"# ")
        child.sendline("MARK=kept-$$; echo set-$MARK")
        child.expect(r"set-kept-(\d+)")
        shell = child.match.group(1)
        child.send("\x10\x11")
        child.expect("Session ended")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    again = _spawn(cluster, "attach", "-it", NGINX_POD, "-c", "detacher")
    try:
        again.sendline("echo back-$MARK")
        again.expect(rf"back-kept-{shell}")
        again.sendline("exit")
        again.expect(pexpect.EOF)
    finally:
        again.close(force=True)


def test_exec_into_a_stopped_container_answers_on_the_status_channel(cluster: RunningCluster) -> None:
    result = cluster.kubectl("debug", NGINX_POD, "-c", "finished", "--image=busybox", "--", "true")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 20
    while True:
        out = cluster.kubectl("get", "pod", NGINX_POD, "-o",
                              "jsonpath={.status.ephemeralContainerStatuses[?(@.name=='finished')].state.terminated.exitCode}")
        if out.stdout == "0":
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    exec_result = cluster.kubectl("exec", NGINX_POD, "-c", "finished", "--", "true")
    assert exec_result.returncode != 0
    assert re.search(r'container not found \("finished"\)', exec_result.stderr)
    assert "unable to upgrade connection" not in exec_result.stderr  # it upgraded; the Status said why
