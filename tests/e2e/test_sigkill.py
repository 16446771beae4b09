"""SIGKILL the portal in the middle of sessions; after a restart the reaper brings the cluster
and the database back to a clean state within a minute.

Every part is a real process: kubesim (spawn_cluster, so the debug shells belong to it, not to
the portal), Daphne serving portal.asgi on a temporary SQLite file, two `run_reaper` workers
at once. One session is killed mid-way through its end (the kill's exec is held up by a
kubesim fault), the other (a node session with a connected terminal) simply outlives its
time limit while the portal is dead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesim.testing import spawn_cluster
from sessions.bridge import protocol
from tests.sessions.test_provision import session_pids

REPO = Path(__file__).resolve().parents[2]
NODE = "debian-11"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Portal:
    """Daphne + manage.py against one temporary SQLite database and one kubesim."""

    def __init__(self, tmp: Path, kubeconfig: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "EPHEMERA_DEMO": "1",
            "EPHEMERA_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
            "KUBECONFIG": str(kubeconfig),
            "EPHEMERA_PROVISION_TIMEOUT_SECONDS": "30",
            "EPHEMERA_NODE_DEBUG_NAMESPACE": "default",
        }
        self.env.pop("REDIS_URL", None)
        self.daphne: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.url = ""

    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def query(self, code: str) -> Any:
        """Run Python in `manage.py shell` against the portal's database; it prints JSON."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def start(self) -> None:
        port = _free_port()
        log = open(self.tmp / f"daphne-{port}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.daphne.poll() is None, "daphne exited"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise AssertionError("daphne did not come up")

    def sigkill(self) -> None:
        assert self.daphne is not None
        os.killpg(self.daphne.pid, signal.SIGKILL)
        self.daphne.wait(10)

    def start_reaper(self) -> None:
        log = open(self.tmp / f"reaper-{len(self.workers)}.log", "wb")  # noqa: SIM115
        self.workers.append(subprocess.Popen(
            [sys.executable, "manage.py", "run_reaper", "--interval", "1"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))

    def stop_all(self) -> None:
        for proc in [*self.workers, *([self.daphne] if self.daphne else [])]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)

    def api(self, token: str, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 20) -> tuple[int, Any]:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (our own test server)
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[Portal, Any]]:
    with spawn_cluster(tmp_path / "kubesim") as cluster:
        p = Portal(tmp_path, cluster.kubeconfig)
        p.manage("migrate", "--noinput")
        p.manage("seed_demo")
        try:
            yield p, cluster
        finally:
            p.stop_all()


def _running_session(p: Portal, alice: str, bob: str, body: dict[str, Any]) -> dict[str, Any]:
    code, req = p.api(alice, "POST", "/api/v1/requests", {
        "image": "busybox", "profile": "sysadmin", "reason": "sigkill test", "duration_minutes": 10, **body})
    assert code == 201, req
    code, approved = p.api(bob, "POST", f"/api/v1/requests/{req['id']}/approve", {"comment": "ok"})
    assert code == 200, approved
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session = p.api(alice, "GET", f"/api/v1/requests/{req['id']}")[1]["session"]
        if session and session["status"] == "running":
            return session  # type: ignore[no-any-return]
        assert session is None or session["status"] == "provisioning", session
        time.sleep(0.3)
    raise AssertionError("the session never ran")


async def _open_terminal(p: Portal, token: str, sid: str) -> tuple[aiohttp.ClientSession, Any]:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{p.url.replace('http', 'ws')}/ws/sessions/{sid}/terminal",
                               headers={"Authorization": f"Bearer {token}"})
    out = b""
    deadline = time.monotonic() + 20
    await ws.send_bytes(protocol.input_(b"echo 'alive''-marker'\r"))
    while b"alive-marker" not in out and time.monotonic() < deadline:
        msg = await ws.receive(timeout=20)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        if msg.data[:1] == bytes([protocol.OUTPUT]):
            out += msg.data[1:]
            await ws.send_bytes(protocol.ack(len(msg.data) - 1))
    assert b"alive-marker" in out, out
    return http, ws


def _pod_exists(cluster: Any, pod: str) -> bool:
    result = cluster.kubectl("get", "pod", pod, "-n", "default", "-o", "name")
    return result.returncode == 0


def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return bool(predicate())


def test_after_a_sigkill_the_reaper_cleans_up_within_a_minute(portal: tuple[Portal, Any]) -> None:
    p, cluster = portal
    alice = p.manage("create_api_token", "alice").strip()
    bob = p.manage("create_api_token", "bob").strip()
    p.start()
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"]
    nginx = next(i["metadata"]["name"] for i in pods if i["metadata"]["name"].startswith("distroless-nginx-"))

    pod_session = _running_session(p, alice, bob, {"namespace": "default", "pod": nginx,
                                                   "container": "distroless-nginx-ctr", "profile": "general"})
    node_session = _running_session(p, alice, bob, {"node": NODE})
    pod_sid, node_sid, node_pod = pod_session["id"], node_session["id"], node_session["pod"]
    assert _wait(lambda: session_pids(pod_sid) and session_pids(node_sid), 15)

    # The websocket client gets a thread and loop of its own: pytest may already run a loop here
    # (Playwright's sync API in the browser tests does).
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    def on_loop(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    http, ws = on_loop(_open_terminal(p, alice, node_sid))
    try:
        # End the pod session, but hold up the exec that kills its shell, and die meanwhile.
        cluster.faults.add(path="/exec", delay=60)

        def end_it() -> None:
            try:
                p.api(alice, "POST", f"/api/v1/sessions/{pod_sid}/end", {}, timeout=90)
            except OSError:  # the portal is SIGKILLed while this call waits: that is the point
                pass

        ender = threading.Thread(target=end_it, daemon=True)
        ender.start()
        assert _wait(lambda: p.api(alice, "GET", f"/api/v1/sessions/{pod_sid}")[1]["status"] == "ended", 20)
        p.sigkill()
    finally:
        on_loop(ws.close())
        on_loop(http.close())
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
    cluster.faults.clear()

    # The crash left both shells and the node pod behind.
    time.sleep(1)
    assert session_pids(pod_sid) and session_pids(node_sid)
    assert _pod_exists(cluster, node_pod)
    # While the portal was down, the node session's time ran out.
    p.query(
        "from sessions.models import DebugSession; from django.utils import timezone; from datetime import timedelta;"
        f"print(DebugSession.objects.filter(pk='{node_sid}').update(expires_at=timezone.now() - timedelta(seconds=1)))"
    )

    restarted = time.monotonic()
    p.start()
    p.start_reaper()
    p.start_reaper()  # two at once must be safe
    assert _wait(lambda: not session_pids(pod_sid) and not session_pids(node_sid) and not _pod_exists(cluster, node_pod), 60), (
        session_pids(pod_sid), session_pids(node_sid), _pod_exists(cluster, node_pod))
    clean = _wait(lambda: p.query(
        "import json; from sessions.models import DebugSession;"
        "print(json.dumps(DebugSession.objects.filter(cluster_clean_at__isnull=True).count()))") == 0, 60 - (time.monotonic() - restarted))
    assert clean, "every session should be marked clean within a minute of the restart"
    assert time.monotonic() - restarted < 60
    state = p.query(
        "import json; from sessions.models import DebugSession; from portal.models import AuditEvent;"
        "print(json.dumps({str(s.pk): [s.status, s.end_reason, AuditEvent.objects.filter(session=s, action='session.ended').count()]"
        " for s in DebugSession.objects.all()}))"
    )
    assert state == {pod_sid: ["ended", "user", 1], node_sid: ["ended", "expired", 1]}
    # The restarted portal answers, and tells the requester what happened.
    code, body = p.api(alice, "GET", f"/api/v1/sessions/{node_sid}")
    assert code == 200 and body["status"] == "ended" and body["end_reason"] == "expired"
    assert p.query("from portal.audit import verify_chain; print(verify_chain())") > 0
    # The terminal the SIGKILL cut never said goodbye; its connect is closed in the trail, saying why.
    connects, disconnects, why = p.query(
        "import json; from portal.models import AuditEvent;"
        f"e = AuditEvent.objects.filter(session_id='{node_sid}');"
        "d = e.filter(action='session.disconnected');"
        "print(json.dumps([e.filter(action='session.connected').count(), d.count(), d.last().data.get('why', '') if d else '']))"
    )
    assert connects >= 1 and disconnects == connects and "stopped without closing it" in why
