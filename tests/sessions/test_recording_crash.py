"""SIGKILL the portal mid-session: the stored recording keeps all but (at most) the last second.

Everything is real: kubesim, a Daphne process serving portal.asgi on a SQLite file, a
terminal websocket client printing a counter every 100 ms, then SIGKILL of the portal.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from sessions.bridge import protocol
from tests.sessions.test_recording_units import ASCIINEMA

REPO = Path(__file__).resolve().parents[2]

SETUP = """
import json, time
from django.contrib.auth.models import User
from approvals.services import request_approve, request_create
from portal.kube import get_client
from portal.tokens import create_token
from sessions.models import DebugSession
alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
req = request_create(requester=alice, namespace="default", pod=pod, container="distroless-nginx-ctr", image="busybox",
                     profile="general", reason="crash test", duration_minutes=30, origin=None)
request_approve(request_id=req.pk, approver=bob, origin=None)
for _ in range(300):
    s = DebugSession.objects.get(request=req)
    if s.status != "provisioning":
        break
    time.sleep(0.1)
print(json.dumps({"session": str(s.pk), "status": s.status, "token": create_token(alice, name="crash")}))
"""

# Reads the recording through the portal's own code, in a fresh process after the crash.
DUMP = """
import sys
from sessions.recording.selectors import iter_cast
with open(sys.argv[-1], "wb") as fh:
    for part in iter_cast("{sid}", title="crash"):
        fh.write(part)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


async def _stream_then_kill(url: str, token: str, daphne: subprocess.Popen[bytes]) -> tuple[dict[int, float], float]:
    """Run a 100 ms counter in the shell; return when each line arrived, and the kill time."""
    seen: dict[int, float] = {}
    buf = b""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send_bytes(protocol.resize(100, 30))
            await ws.send_bytes(protocol.input_(b'i=0; while true; do echo "tick-$i"; i=$((i+1)); sleep 0.1; done\r'))
            killed_at = 0.0
            while True:
                msg = await asyncio.wait_for(ws.receive(), 10)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                if msg.data[:1] != bytes([protocol.OUTPUT]):
                    continue
                await ws.send_bytes(protocol.ack(len(msg.data) - 1))
                now = time.time()
                buf += msg.data[1:]
                for m in re.finditer(rb"tick-(\d+)\r\n", buf):
                    seen.setdefault(int(m.group(1)), now)
                if not killed_at and len(seen) >= 40:  # about 4 s of output
                    killed_at = time.time()
                    os.killpg(daphne.pid, signal.SIGKILL)
                    break
    return seen, killed_at


def test_sigkill_mid_session_keeps_all_but_the_last_second(kubesim_session_cluster: Any, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "EPHEMERA_DEMO": "1",
        "EPHEMERA_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "KUBECONFIG": str(kubesim_session_cluster.kubeconfig),
    }
    env.pop("REDIS_URL", None)
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed_demo")
    setup = json.loads(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    assert setup["status"] == "running", setup
    sid = setup["session"]
    port = _free_port()
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and daphne.poll() is None, "daphne did not start"
                time.sleep(0.2)
        seen, killed_at = asyncio.run(
            _stream_then_kill(f"ws://127.0.0.1:{port}/ws/sessions/{sid}/terminal", setup["token"], daphne)
        )
        daphne.wait(10)
    finally:
        if daphne.poll() is None:
            os.killpg(daphne.pid, signal.SIGKILL)
            daphne.wait(10)
    assert daphne.returncode == -signal.SIGKILL

    cast_path = tmp_path / "after-crash.cast"
    subprocess.run(
        [sys.executable, "-c", "import django,sys; django.setup(); exec(sys.argv[1])", DUMP.format(sid=sid), str(cast_path)],
        cwd=REPO,
        env=env,
        check=True,
        timeout=60,
    )
    played = subprocess.run([ASCIINEMA, "cat", str(cast_path)], capture_output=True, timeout=30)
    assert played.returncode == 0, played.stderr
    recorded = {int(n) for n in re.findall(rb"tick-(\d+)\r\n", played.stdout)}
    must_have = {n for n, at in seen.items() if at <= killed_at - 1.0}
    assert len(must_have) >= 25, f"the test streamed too little before the kill: {len(seen)} lines"
    missing = sorted(must_have - recorded)
    assert not missing, f"lines shown more than 1 s before the kill but not recorded: {missing}"
    assert recorded <= set(seen) | {max(seen) + 1}, "nothing recorded that the terminal never showed"
