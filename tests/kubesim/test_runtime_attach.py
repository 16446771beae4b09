"""Attach to a shell container over real websockets: I/O, resize, several attachers, re-attach."""

from __future__ import annotations

import asyncio

import pytest

from kubesim.runtime.harness import Harness, make_pod
from kubesim.runtime.streams import V4, V5

KEY = ("default", "box", "sh")
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def shell_pod(tty: bool = True) -> dict:
    return make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "tty": tty}])


async def test_it_echoes_through_a_tty_attach() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        assert c.protocol == V5
        await c.stdin("echo hello-$((6*7))\n")
        await c.read_until(rb"hello-42")
        await c.close()


async def test_it_negotiates_v4_when_v5_is_not_offered() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        c = await h.attach(KEY, protocols=(V4,))
        assert c.protocol == V4
        await c.stdin("echo v4-ok\n")
        await c.read_until(rb"v4-ok")
        await c.close()


async def test_it_prefers_v5_whatever_the_client_order() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        c = await h.attach(KEY, protocols=(V4, V5))
        assert c.protocol == V5
        await c.close()


async def test_resize_is_seen_by_stty_size() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        await c.stdin("stty size\n")
        await c.read_until(rb"24 80")  # the initial size
        await c.resize(132, 43)
        await asyncio.sleep(0.05)
        await c.stdin("stty size\n")
        await c.read_until(rb"43 132")
        await c.close()


async def test_two_attachers_both_see_output_and_both_can_type() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        a = await h.attach(KEY)
        b = await h.attach(KEY)
        await a.stdin("echo from-a\n")
        await a.read_until(rb"from-a\r?\n")
        await b.read_until(rb"from-a\r?\n")
        await b.stdin("echo from-b\n")
        await a.read_until(rb"from-b\r?\n")
        await b.read_until(rb"from-b\r?\n")
        await a.close()
        await b.close()


async def test_detach_and_reattach_keeps_the_same_shell() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        pid = h.runtime.processes(KEY)[0].pid
        c = await h.attach(KEY)
        await c.stdin("MARK=kept-$((1+1))\n")
        await c.close_stdin()  # kubectl's half-close must not end the shell (no stdinOnce)
        await asyncio.sleep(0.1)
        await c.close()
        await asyncio.sleep(0.1)
        assert h.runtime.is_running(KEY)
        c2 = await h.attach(KEY)
        await c2.stdin("echo $MARK\n")
        await c2.read_until(rb"kept-2")
        assert h.runtime.processes(KEY)[0].pid == pid
        await c2.close()


async def test_a_cut_stream_leaves_the_shell_running() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(shell_pod())
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        await c.stdin("X=survived\n")
        await asyncio.sleep(0.1)
        assert h.runtime.cut_streams(namespace="default", pod="box") == 1
        await c.read_to_end()  # the client sees the connection drop
        assert c.ws.close_code != 1000
        assert h.runtime.is_running(KEY)
        c2 = await h.attach(KEY)
        await c2.stdin("echo $X\n")
        await c2.read_until(rb"survived")
        await c2.close()


async def test_exit_of_the_shell_ends_the_attach_and_sets_terminated() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(
            make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "tty": True}], restartPolicy="Never")
        )
        await h.wait_running(KEY)
        c = await h.attach(KEY)
        await c.stdin("echo bye; exit 7\n")
        await c.read_to_end()
        assert b"bye" in c.out
        assert c.status is None  # attach never reports an exit code
        assert c.ws.close_code == 1000
        status = await h.wait_status(KEY, lambda s: "terminated" in s["state"])
        term = status["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (7, "Error")
        assert b"bye" in h.runtime.logs(KEY)


async def test_pipe_attach_has_stderr_and_half_close_with_stdin_once() -> None:
    pod = make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True, "stdinOnce": True}], restartPolicy="Never")
    async with Harness() as h:
        await h.runtime.start_pod(pod)
        await h.wait_running(KEY)
        c = await h.attach(KEY, tty=False)
        await c.stdin("echo out; echo err >&2\n")
        await c.close_stdin()  # stdinOnce: EOF reaches sh, which exits
        await c.read_to_end()
        assert c.out == b"out\n" and c.err == b"err\n"
        status = await h.wait_status(KEY, lambda s: "terminated" in s["state"])
        assert status["state"]["terminated"]["reason"] == "Completed"


async def test_multibyte_utf8_arrives_intact_across_frames() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True}]))
        await h.wait_running(KEY)
        c = await h.attach(KEY, tty=False)
        # 3-byte characters in a 200 KB stream: reads of 64 KiB cannot all end on a boundary.
        await c.stdin("i=0; while [ $i -lt 20000 ]; do printf 'héllo→€ '; i=$((i+1)); done; echo; echo END\n")
        await c.read_until(rb"END\n", within=30)
        text = bytes(c.out).decode("utf-8")  # raises if a sequence was broken or lost
        assert text.count("héllo→€ ") == 20000
        assert len(c.frames) > 1
        await c.close()
