"""Nothing survives stop_pod or shutdown; backpressure keeps memory bounded and ^C prompt."""

from __future__ import annotations

import asyncio
import os
import resource

import pytest

from kubesim.runtime.harness import Harness, make_pod
from kubesim.runtime.process import session_members

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
KEY = ("default", "box", "sh")


def _proc_file(pid: int, name: str) -> bytes:
    with open(f"/proc/{pid}/{name}", "rb") as f:
        return f.read()


def _state(pid: int) -> str:
    """The one-letter state from /proc/PID/stat ("" if the process is gone)."""
    try:
        return _proc_file(pid, "stat").rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    return _state(pid) not in ("", "Z")


async def test_stop_pod_kills_the_whole_group_including_background_children() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "tty": True}]))
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        await c.stdin("trap '' TERM HUP; sleep 1000 & echo bg=$!\n")  # ignores the polite signals
        await c.read_until(rb"bg=\d+")
        shell = h.runtime.processes(KEY)[0]
        main = h.runtime.main_pid(KEY)
        assert main is not None
        # Every process of the container, as this machine sees them (the pids typed inside are the
        # container's own PID namespace's): its wrapper, the shell and the background sleep.
        everyone = {shell.pid, main, *session_members(shell.sid)}
        assert len(everyone) >= 3 and all(_alive(pid) for pid in everyone)
        await h.runtime.stop_pod("default", "box", grace_seconds=0.3)
        assert [pid for pid in everyone if _alive(pid)] == []
        assert session_members(shell.sid) == []
        assert not h.runtime.is_running(KEY)
        await c.read_to_end()


async def test_shutdown_kills_containers_and_execs() -> None:
    pids: list[int] = []
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "command": ["sleep", "1000"]}]))
        await h.runtime.start_pod(make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx"}]))
        await h.wait_running(KEY)
        await h.wait_running(("default", "web", "nginx"))
        c = await h.exec(KEY, ["sleep", "1000"])
        await c.read_one()
        procs = h.runtime.processes(KEY) + h.runtime.processes(("default", "web", "nginx"))
        await asyncio.sleep(0.3)  # let nginx fork its workers
        for p in procs:
            pids += [p.pid, *session_members(p.sid)]
        assert len(set(pids)) >= 7
        await h.runtime.shutdown()
    assert [pid for pid in pids if _alive(pid)] == []


async def test_a_slow_reader_holds_yes_back_and_ctrl_c_stops_it_promptly() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "tty": True}]))
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        await c.stdin("yes\n")
        await c.read_until(rb"y\r\ny\r\n")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Stop reading for a while: yes must block on the PTY instead of us buffering its output.
        await asyncio.sleep(1.5)
        shell = h.runtime.processes(KEY)[0]
        yes_pids = [p for p in session_members(shell.sid) if p != shell.pid]
        assert _state(yes_pids[0]) == "S"  # sleeping in write(), not spinning
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert rss_after - rss_before < 20 * 1024  # KiB: nothing piled up
        # Catch up (drain what is in flight), then ^C: the prompt must come back quickly.
        await c.stdin(b"\x03")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await c.stdin("echo back-$((40+2))\n")
        await c.read_until(rb"back-42", within=10)
        assert loop.time() - start < 3
        await c.close()


async def test_the_log_buffer_is_bounded() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(
            make_pod(
                "box",
                [
                    {
                        "name": "sh",
                        "image": "busybox",
                        "command": ["sh", "-c", "head -c 3000000 /dev/zero; echo tail-marker; sleep 100"],
                    }
                ],
            )
        )
        await h.wait_running(KEY)
        for _ in range(100):
            if h.runtime.logs(KEY).endswith(b"tail-marker\n"):
                break
            await asyncio.sleep(0.05)
        logs = h.runtime.logs(KEY)
        assert logs.endswith(b"tail-marker\n") and len(logs) == 1024 * 1024
        assert h.runtime.log_bytes_written(KEY) == 3000000 + len(b"tail-marker\n")


async def test_starting_a_pod_twice_does_not_orphan_processes() -> None:
    pod = make_pod("box", [{"name": "sh", "image": "busybox"}])
    async with Harness() as h:
        await h.runtime.start_pod(pod)
        await h.wait_running(KEY)
        first = h.runtime.processes(KEY)[0].pid
        await h.runtime.start_pod(pod)
        await asyncio.sleep(0.1)
        assert h.runtime.processes(KEY)[0].pid == first
        assert len([s for k, _, s in h.statuses if k == KEY and "running" in s["state"]]) == 1


async def test_pid_of_a_container_is_a_real_process() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox"}]))
        await h.wait_running(KEY)
        pid = h.runtime.main_pid(KEY)
        assert pid is not None
        assert _proc_file(pid, "cmdline").split(b"\0")[:2] == [b"sleep", b"infinity"]
        env = dict(kv.split(b"=", 1) for kv in _proc_file(pid, "environ").split(b"\0") if kv)
        assert env[b"HOSTNAME"] == b"box"
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
