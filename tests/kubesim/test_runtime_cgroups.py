# ruff: noqa: ASYNC240
"""A container's processes are one cgroup, as under runc: they die together when its main
process exits, whatever they did to their session, and an exec joins the same group.

kubesim runs as root in CI and on these machines; where cgroup v2 isn't writable the runtime
falls back to session tracking, and these tests fail under CI=true rather than skip.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubesim.runtime import cgroups
from kubesim.runtime.harness import Harness, make_pod

# /proc and cgroupfs reads are in-memory and instant: blocking calls are fine in these tests.
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
KEY = ("default", "box", "sh")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def _require_cgroups(h: Harness) -> None:
    if h.runtime.cgroups is None:
        message = "kubesim found no writable cgroup v2 hierarchy (run as root on a cgroup v2 host)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


async def test_when_the_main_process_exits_everything_it_left_dies_with_it() -> None:
    async with Harness() as h:
        _require_cgroups(h)
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "tty": True}]))
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        # A daemon in a session of its own (which escaped the old session-based sweep) and a
        # plain background job, then the shell exits.
        await c.stdin("setsid sleep 1001 & sleep 1002 & echo pids=$!\n")
        await c.read_until(rb"pids=\d+")
        await asyncio.sleep(0.2)
        group = h.runtime._find(KEY).cgroup  # type: ignore[union-attr]
        assert group is not None
        members = group.members()
        assert len(members) >= 3, members  # the shell and both sleeps
        await c.stdin("exit\n")
        status = await h.wait_status(KEY, lambda s: "terminated" in s["state"])
        assert status["state"]["terminated"]["exitCode"] == 0
        assert [pid for pid in members if _alive(pid)] == []
        assert not group.path.exists()  # removed once empty


async def test_an_exec_joins_the_containers_cgroup_and_dies_with_the_container() -> None:
    async with Harness() as h:
        _require_cgroups(h)
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "command": ["sleep", "1000"]}]))
        await h.wait_running(KEY)
        main = h.runtime.processes(KEY)[0]
        c = await h.exec(KEY, ["sh", "-c", "cat /proc/self/cgroup; echo pid=$$; sleep 1000"])
        out = await c.read_until(rb"pid=\d+")
        assert Path(f"/proc/{main.pid}/cgroup").read_bytes() in out
        container = h.runtime._find(KEY)
        assert container is not None and container.cgroup is not None
        group = container.cgroup
        execs = [p.pid for p in h.runtime.processes(KEY)[1:]]
        assert execs and set(execs) <= set(group.members())
        os.kill(main.pid, 9)
        await h.wait_status(KEY, lambda s: "terminated" in s["state"])
        assert [pid for pid in execs if _alive(pid)] == []
        assert not group.path.exists()
        # And the container takes no new execs once it is over.
        with pytest.raises(Exception, match="not running"):
            await container.exec(["true"], tty=False, stdin=False)


async def test_a_kubesim_that_died_leaves_its_cgroups_to_the_next_start(tmp_path: Path) -> None:
    mount = cgroups.cgroup2_mount()
    async with Harness() as h:
        _require_cgroups(h)
    assert mount is not None
    parent = mount / cgroups.own_cgroup().lstrip("/")
    # What a SIGKILLed kubesim leaves: its tree with a live process in a container's cgroup.
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    dead_pid = gone.pid  # a kubesim that is no more
    stale = parent / f"{cgroups.PREFIX}{dead_pid}-1" / "default_box_sh-1"
    stale.mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec("sleep", "1000")
    (stale / "cgroup.procs").write_text(str(proc.pid))
    root = cgroups.CgroupRoot.create()
    assert root is not None
    try:
        assert not stale.parent.exists()
        assert await asyncio.wait_for(proc.wait(), 5) == -9
    finally:
        root.close()
    assert not root.path.exists()
