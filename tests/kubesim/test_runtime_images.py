"""Image behaviours: fake distroless nginx, pull errors, crash loops, pull delay; status shapes."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from kubesim.runtime.harness import Harness, make_pod
from kubesim.runtime.images import ImageKind, classify, normalize

pytestmark = [pytest.mark.timeout(60)]
NGINX = ("default", "web", "nginx")


def test_the_catalog_decides_by_name() -> None:
    assert classify("cgr.dev/chainguard/nginx:latest") is ImageKind.DISTROLESS_NGINX
    assert classify("gcr.io/distroless/nginx") is ImageKind.DISTROLESS_NGINX
    assert classify("nginx:1.27") is ImageKind.SHELL
    assert classify("does-not-exist") is ImageKind.PULL_ERROR
    assert classify("registry.local/crashloop:v1") is ImageKind.CRASHLOOP
    assert classify("nicolaka/netshoot") is ImageKind.SHELL
    assert normalize("busybox") == "docker.io/library/busybox:latest"
    assert normalize("nicolaka/netshoot:v0.13") == "docker.io/nicolaka/netshoot:v0.13"
    assert normalize("cgr.dev/chainguard/nginx") == "cgr.dev/chainguard/nginx:latest"


def _ps() -> list[tuple[int, int, int, str]]:
    rows = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                st = os.stat(f"/proc/{entry}")
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            rows.append((int(entry), ppid, st.st_uid, cmd))
    return rows


async def _nginx_rows(master: int) -> list[tuple[int, int, int, str]]:
    # setproctitle runs just after start: give the master and workers a moment.
    for _ in range(100):
        rows = [r for r in _ps() if r[0] == master or r[1] == master]
        if len(rows) == 5 and all(r[3].startswith("nginx:") for r in rows):
            return rows
        await asyncio.sleep(0.05)
    return rows


@pytest.mark.asyncio
async def test_fake_nginx_shows_a_master_and_four_workers_in_ps() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx"}]))
        status = await h.wait_running(NGINX)
        assert re.fullmatch(r"containerd://[0-9a-f]{64}", status["containerID"])
        assert status["ready"] is True and status["started"] is True
        master = h.runtime.main_pid(NGINX)
        assert master is not None
        rows = await _nginx_rows(master)
        titles = sorted(r[3] for r in rows)
        assert titles == ["nginx: master process /usr/sbin/nginx -g daemon off;"] + ["nginx: worker process"] * 4
        if os.getuid() == 0:
            assert {r[2] for r in rows} == {65532}
        # The debug container (a shell image) sees them with ps aux.
        await h.runtime.start_ephemeral(
            {"metadata": {"name": "web", "namespace": "default"}},
            {"name": "dbg", "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "nginx"},
        )
        await h.wait_running(("default", "web", "dbg"))
        c = await (await h.exec(("default", "web", "dbg"), ["ps", "aux"])).read_to_end()
        assert c.out.count(b"nginx: worker process") >= 4
        workers = [r[0] for r in rows if r[0] != master]
        await h.runtime.stop_pod("default", "web")
        for pid in [master, *workers]:
            assert _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.asyncio
async def test_killing_the_nginx_master_takes_the_workers_with_it() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(
            make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx"}], restartPolicy="Never")
        )
        await h.wait_running(NGINX)
        master = h.runtime.main_pid(NGINX)
        assert master is not None
        rows = await _nginx_rows(master)
        os.kill(master, 9)
        status = await h.wait_status(NGINX, lambda s: "terminated" in s["state"])
        assert status["state"]["terminated"]["exitCode"] == 137
        await asyncio.sleep(0.2)
        assert all(_is_zombie(r[0]) for r in rows)


@pytest.mark.asyncio
async def test_a_missing_image_goes_err_image_pull_then_back_off_and_never_runs() -> None:
    key = ("default", "bad", "app")
    async with Harness(backoff=0.3) as h:
        await h.runtime.start_pod(make_pod("bad", [{"name": "app", "image": "does-not-exist"}]))
        await h.wait_status(key, lambda s: s["state"].get("waiting", {}).get("reason") == "ImagePullBackOff")
        await h.wait_status(key, lambda s: s["state"].get("waiting", {}).get("reason") == "ErrImagePull" and len(h.statuses) > 3)
        reasons = [s["state"]["waiting"]["reason"] for k, _, s in h.statuses if k == key]
        assert reasons[:4] == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff", "ErrImagePull"]
        first = next(s for k, _, s in h.statuses if k == key and s["state"]["waiting"]["reason"] == "ErrImagePull")
        assert first["state"]["waiting"]["message"].startswith(
            'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/does-not-exist:latest"'
        )
        assert first["imageID"] == "" and "containerID" not in first
        assert not h.runtime.is_running(key)


@pytest.mark.asyncio
async def test_a_crashing_container_is_restarted_with_back_off() -> None:
    key = ("default", "crashy", "app")
    async with Harness(backoff=0.2) as h:
        await h.runtime.start_pod(make_pod("crashy", [{"name": "app", "image": "example.com/crashloop:1"}]))
        status = await h.wait_status(key, lambda s: s["restartCount"] >= 2 and "running" in s["state"], within=20)
        assert status["lastState"]["terminated"]["exitCode"] == 1
        assert status["lastState"]["terminated"]["reason"] == "Error"
        backoffs = [s for k, _, s in h.statuses if k == key and s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"]
        assert (
            backoffs[0]["state"]["waiting"]["message"]
            == "back-off 200ms restarting failed container=app pod=crashy_default(uid-crashy)"
        )
        assert backoffs[1]["state"]["waiting"]["message"].startswith("back-off 400ms ")
        assert backoffs[0]["restartCount"] == 0 and backoffs[1]["restartCount"] == 1
        assert b"starting up" in h.runtime.logs(key)


@pytest.mark.asyncio
async def test_pull_delay_keeps_the_container_creating_first() -> None:
    key = ("default", "slow", "app")
    async with Harness(pull_delay=0.3) as h:
        await h.runtime.start_pod(make_pod("slow", [{"name": "app", "image": "busybox", "command": ["sleep", "100"]}]))
        await asyncio.sleep(0.1)
        last = h.last_status(key)
        assert last is not None and last["state"] == {"waiting": {"reason": "ContainerCreating"}}
        assert not h.runtime.is_running(key)
        await h.wait_running(key)


@pytest.mark.asyncio
async def test_init_containers_run_first_and_regular_ones_wait_pod_initializing() -> None:
    pod = make_pod("init", [{"name": "app", "image": "busybox", "command": ["sleep", "100"]}])
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "sleep 0.2"]}]
    async with Harness() as h:
        await h.runtime.start_pod(pod)
        assert h.last_status(("default", "init", "app"))["state"]["waiting"]["reason"] == "PodInitializing"  # type: ignore[index]
        await h.wait_running(("default", "init", "app"))
        setup = h.last_status(("default", "init", "setup"))
        assert setup is not None and setup["state"]["terminated"]["reason"] == "Completed" and setup["ready"] is True
        assert [kind for _, kind, _ in h.statuses][0] == "initContainer"


@pytest.mark.asyncio
async def test_ephemeral_containers_never_restart() -> None:
    key = ("default", "p", "dbg")
    async with Harness(backoff=0.1) as h:
        await h.runtime.start_pod(make_pod("p", [{"name": "app", "image": "busybox"}]))
        await h.runtime.start_ephemeral(make_pod("p", []), {"name": "dbg", "image": "busybox", "command": ["sh", "-c", "exit 2"]})
        status = await h.wait_status(key, lambda s: "terminated" in s["state"])
        assert status["state"]["terminated"]["exitCode"] == 2 and status["ready"] is False
        await asyncio.sleep(0.3)
        assert [kind for k, kind, _ in h.statuses if k == key][-1] == "ephemeralContainer"
        assert "terminated" in h.last_status(key)["state"]  # type: ignore[index]
