"""Exec: exit status on channel 3, stdin half-close, and distroless failures shaped like containerd's."""

from __future__ import annotations

import asyncio
import re

import pytest

from kubesim.runtime.harness import Harness, make_pod
from kubesim.runtime.streams import V1, V4, V5

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
SH = ("default", "box", "sh")
NGINX = ("default", "web", "nginx")


async def _box(h: Harness) -> None:
    await h.runtime.start_pod(make_pod("box", [{"name": "sh", "image": "busybox"}]))
    await h.wait_running(SH)


async def test_exec_success_sends_a_success_status() -> None:
    async with Harness() as h:
        await _box(h)
        c = await (await h.exec(SH, ["sh", "-c", "echo out; echo err >&2"])).read_to_end()
        assert (c.out, c.err) == (b"out\n", b"err\n")
        assert c.status == {"metadata": {}, "status": "Success"}


@pytest.mark.parametrize("protocol", [V5, V4])
async def test_exec_non_zero_exit_reports_the_code_like_kubelet(protocol: str) -> None:
    async with Harness() as h:
        await _box(h)
        c = await (await h.exec(SH, ["sh", "-c", "exit 3"], protocols=(protocol,))).read_to_end()
        assert c.protocol == protocol
        assert c.status == {
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }


async def test_exec_with_tty_has_no_stderr_and_gets_term() -> None:
    async with Harness() as h:
        await _box(h)
        c = await (await h.exec(SH, ["sh", "-c", "echo $TERM; echo e >&2; tty; true"], tty=True)).read_to_end()
        assert c.err == b""
        # (runc would also give the exec a /dev/pts/N of the container's own; kubesim's terminal is
        # the machine's, deliberately not mounted into the container: `tty` says "not a tty".)
        assert b"xterm-256color" in c.out and b"e\r\n" in c.out
        assert c.status is not None and c.status["status"] == "Success"


async def test_exec_stdin_half_close_gives_eof() -> None:
    async with Harness() as h:
        await _box(h)
        c = await h.exec(SH, ["wc", "-c"], stdin=True)
        await c.stdin(b"12345")
        await c.close_stdin()
        await c.read_to_end()
        assert c.out.strip() == b"5"
        assert c.status is not None and c.status["status"] == "Success"


async def test_exec_of_a_missing_binary_fails_like_runc() -> None:
    async with Harness() as h:
        await _box(h)
        c = await (await h.exec(SH, ["no-such-binary-here"])).read_to_end()
        assert c.status is not None and c.status["code"] == 500
        assert c.status["message"].endswith('exec: "no-such-binary-here": executable file not found in $PATH: unknown')


async def test_closing_an_exec_kills_its_process() -> None:
    async with Harness() as h:
        await _box(h)
        c = await h.exec(SH, ["sleep", "1000"])
        await c.read_one()
        for _ in range(200):  # the stream opens before the exec's sandbox is set up
            if len(h.runtime.processes(SH)) == 2:
                break
            await asyncio.sleep(0.01)
        procs = h.runtime.processes(SH)
        assert len(procs) == 2
        await c.close()
        exec_proc = procs[1]
        await exec_proc.finished.wait()
        for _ in range(100):  # the exec is forgotten once its reaper is done
            if len(h.runtime.processes(SH)) == 1:
                break
            await asyncio.sleep(0.01)
        assert len(h.runtime.processes(SH)) == 1
        assert exec_proc.exit_code == 128 + 15


async def test_exec_into_distroless_nginx_fails_exactly_like_containerd() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx:latest"}]))
        await h.wait_running(NGINX)
        c = await (await h.exec(NGINX, ["bash"], stdin=True, tty=True)).read_to_end()
        status = c.status
        assert status is not None
        err = status["details"]["causes"][0]["message"]
        assert re.fullmatch(
            r'error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": '
            r"OCI runtime exec failed: exec failed: unable to start container process: "
            r'exec: "bash": executable file not found in \$PATH: unknown',
            err,
        )
        assert status == {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: {err}",
            "reason": "InternalError",
            "details": {"causes": [{"message": err}]},
            "code": 500,
        }
        assert c.ws.close_code == 1000
        assert h.runtime.is_running(NGINX)


async def test_exec_of_nginx_itself_works_in_distroless() -> None:
    async with Harness() as h:
        await h.runtime.start_pod(make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx"}]))
        await h.wait_running(NGINX)
        c = await (await h.exec(NGINX, ["nginx", "-v"])).read_to_end()
        assert c.err.startswith(b"nginx version: nginx/")
        assert c.status == {"metadata": {}, "status": "Success"}


async def test_v1_channel_protocol_sends_the_error_as_text() -> None:
    async with Harness() as h:
        await _box(h)
        c = await h.exec(SH, ["sh", "-c", "echo v1; exit 4"], protocols=(V1,))
        assert c.protocol == V1
        while await c.read_one_raw():
            pass
        assert c.out == b"v1\n"
        assert (
            c.raw_status
            == b"command terminated with non-zero exit code: error executing command [sh -c echo v1; exit 4], exit code 4"
        )
