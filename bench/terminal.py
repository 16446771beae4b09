"""Terminal benchmark: Ephemera's websocket vs kubesim's attach stream directly, plus idle memory.

    .venv/bin/python bench/terminal.py [--keystrokes 500] [--mb 100] [--runs 3] [--idle 200]

In one run: starts kubesim (subprocess), migrates a temporary SQLite database, creates a user
and an API token, creates auto-approved debug sessions through the services, starts the
portal under Daphne on 127.0.0.1, then measures
  - keystroke echo latency (p50, p99): one byte in, wait for its echo, N times;
  - bulk output throughput: `head -c N /dev/zero | tr` in the debug shell, median of runs;
  - idle memory: Daphne's RSS before/after opening --idle terminal websockets.
The same measurements run directly against kubesim's attach websocket for comparison.
Targets: +2 ms p50 and +10 ms p99 echo, >= 60% of direct throughput, < 256 KiB per idle session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

MB = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- setup through the portal's own services ---------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_user_and_token() -> tuple[Any, str]:
    from django.contrib.auth.models import User

    from portal.tokens import create_token

    user = User.objects.create_user("alice", "alice@example.com", "alice-demo-pass")
    return user, create_token(user, "bench")


def make_sessions(user: Any, count: int, *, batch: int = 20, timeout: float = 120) -> list[Any]:
    """Auto-approved requests (policy set in the env); the provisioner makes them run."""
    from approvals.services import request_create
    from portal.kube import get_client
    from sessions.models import DebugSession

    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    done: list[Any] = []
    while len(done) < count:
        ids = []
        for _ in range(min(batch, count - len(done))):
            req = request_create(
                requester=user, namespace="default", pod=pod, container="distroless-nginx-ctr", image="busybox",
                profile="baseline", reason="benchmark", duration_minutes=60, origin=None,
            )
            ids.append(req.pk)
        deadline = time.monotonic() + timeout
        while True:
            sessions = list(DebugSession.objects.filter(request_id__in=ids))
            if len(sessions) == len(ids) and all(s.status == "running" for s in sessions):
                break
            bad = [s for s in sessions if s.status not in ("provisioning", "running")]
            if bad:
                raise RuntimeError(f"provisioning failed: {bad[0].failure_message}")
            if time.monotonic() > deadline:
                raise RuntimeError("provisioning timed out")
            time.sleep(0.2)
        done += sessions
    return done


# --- clients: the same operations over Ephemera's protocol and kubesim's ------------------


class EphemeraTerm:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.unacked = 0

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, token: str) -> EphemeraTerm:
        ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"}, max_msg_size=0)
        term = cls(ws)
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"terminal closed: {msg}")
            if msg.data[0] == 0x02:
                status = json.loads(msg.data[1:])
                if status["event"] == "connected":
                    break
                raise RuntimeError(f"terminal refused: {status}")
        await ws.send_bytes(b"\x04" + (120).to_bytes(2, "big") + (40).to_bytes(2, "big"))
        return term

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(b"\x00" + data)

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"terminal closed: {msg.type} {msg.data!r} {msg.extra!r}")
            if msg.data[0] == 0x01:
                payload = msg.data[1:]
                self.unacked += len(payload)
                if self.unacked >= 64 * 1024:  # as the browser does
                    await self.ws.send_bytes(b"\x06" + self.unacked.to_bytes(4, "big"))
                    self.unacked = 0
                return payload

    async def flush_ack(self) -> None:
        if self.unacked:
            await self.ws.send_bytes(b"\x06" + self.unacked.to_bytes(4, "big"))
            self.unacked = 0

    async def close(self) -> None:
        await self.ws.close()


class DirectTerm:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    @classmethod
    async def open(cls, namespace: str, pod: str, container: str) -> DirectTerm:
        from portal.kube.attach import open_attach
        from portal.kube.config import load_connection

        stream = await open_attach(load_connection(), namespace=namespace, pod=pod, container=container)
        await stream.resize(120, 40)
        return cls(stream)

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    async def read(self) -> bytes:
        while True:
            event = await self.stream.read()
            if event is None:
                raise RuntimeError("attach stream closed")
            if event.data:
                return event.data

    async def flush_ack(self) -> None:
        pass

    async def close(self) -> None:
        await self.stream.close()


async def read_until(term: Any, needle: bytes, timeout: float = 60) -> int:
    """Read until `needle` appears; returns the bytes read."""
    seen = b""
    total = 0
    async with asyncio.timeout(timeout):
        while needle not in seen:
            chunk = await term.read()
            total += len(chunk)
            seen = (seen + chunk)[-(len(needle) + 64) :]
    await term.flush_ack()
    return total


async def settle(term: Any) -> None:
    marker = f"SETTLE{time.monotonic_ns()}"
    await term.write(b"\x03")  # a separate write: an interrupt flushes the tty's pending input
    await asyncio.sleep(0.1)
    await term.write(f"stty sane; echo {marker[:3]}''{marker[3:]}\r".encode())
    await read_until(term, marker.encode())
    await asyncio.sleep(0.2)
    # Drain the prompt that follows.
    try:
        async with asyncio.timeout(0.3):
            while True:
                await term.read()
    except TimeoutError:
        pass


async def echo_latencies(term: Any, n: int) -> list[float]:
    await settle(term)
    samples = []
    for i in range(n):
        ch = b"abcdefghij"[i % 10 : i % 10 + 1]
        start = time.perf_counter()
        await term.write(ch)
        got = b""
        while ch not in got:
            got += await term.read()
        samples.append((time.perf_counter() - start) * 1000)
        if i % 200 == 199:
            await term.write(b"\x15")  # kill the line: keep the tty line buffer short
            await asyncio.sleep(0.05)
    await term.flush_ack()
    await term.write(b"\x03")
    return samples


async def throughput(term: Any, size: int) -> float:
    await settle(term)
    start = time.perf_counter()
    await term.write(f"head -c {size} /dev/zero | tr '\\000' a; echo; echo BENCH''DONE\r".encode())
    total = await read_until(term, b"BENCHDONE", timeout=600)
    elapsed = time.perf_counter() - start
    if total < size:
        raise RuntimeError(f"only {total} of {size} bytes arrived")
    return size / MB / elapsed


async def measure(args: argparse.Namespace, port: int, token: str, session: Any, idle: list[Any], daphne_pid: int) -> None:
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session.pk}/terminal"
    size = args.mb * MB
    async with aiohttp.ClientSession() as http:
        # The main terminal first: it warms Daphne up (lazy imports, first cluster
        # connection), so the idle measurement below only sees the per-terminal cost.
        eph = await EphemeraTerm.open(http, url, token)
        await settle(eph)
        if idle:
            await asyncio.sleep(1)
            before = rss_kib(daphne_pid)
            http_idle = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            # 25 handshakes at a time: Twisted listens with a backlog of 50, and 200 connects
            # in the same millisecond overflow it (resets); browsers don't arrive that way.
            gate = asyncio.Semaphore(25)

            async def open_idle(s: Any) -> EphemeraTerm:
                async with gate:
                    return await EphemeraTerm.open(http_idle, f"ws://127.0.0.1:{port}/ws/sessions/{s.pk}/terminal", token)

            terms = await asyncio.gather(*(open_idle(s) for s in idle))
            await asyncio.sleep(3)
            after = rss_kib(daphne_pid)
            per = (after - before) / len(terms)
            print(f"idle terminals: {len(terms)}  daphne RSS before {before} KiB  after {after} KiB")
            print(f"idle memory per terminal session: {per:.0f} KiB (target < 256)", flush=True)
            await asyncio.gather(*(t.close() for t in terms))
            await http_idle.close()

        e_lat = await echo_latencies(eph, args.keystrokes)
        e_tp = [await throughput(eph, size) for _ in range(args.runs)]
        await eph.close()

        direct = await DirectTerm.open(session.namespace, session.pod, session.container_name)
        d_lat = await echo_latencies(direct, args.keystrokes)
        d_tp = [await throughput(direct, size) for _ in range(args.runs)]
        await direct.close()

        d50, d99, e50, e99 = (percentile(d_lat, 0.5), percentile(d_lat, 0.99), percentile(e_lat, 0.5), percentile(e_lat, 0.99))
        print(f"echo latency direct    (n={args.keystrokes}): p50 {d50:.2f} ms  p99 {d99:.2f} ms")
        print(f"echo latency ephemera  (n={args.keystrokes}): p50 {e50:.2f} ms  p99 {e99:.2f} ms")
        print(f"echo latency added by ephemera: p50 +{e50 - d50:.2f} ms (target <= 2)  p99 +{e99 - d99:.2f} ms (target <= 10)")
        dm, em = statistics.median(d_tp), statistics.median(e_tp)
        print(f"throughput direct   ({args.mb} MB x {args.runs}): median {dm:.1f} MB/s  runs {', '.join(f'{x:.1f}' for x in d_tp)}")
        print(f"throughput ephemera ({args.mb} MB x {args.runs}): median {em:.1f} MB/s  runs {', '.join(f'{x:.1f}' for x in e_tp)}")
        print(f"throughput ratio ephemera/direct: {em / dm:.2f} (target >= 0.60)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keystrokes", type=int, default=500)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args()

    from kubesim.testing import spawn_cluster

    tmp = Path(tempfile.mkdtemp(prefix="ephemera-bench-"))
    # The bench's sessions approve themselves: a self-service rule for baseline pods in default.
    (tmp / "policy.yaml").write_text(
        "rules:\n  - {name: bench, match: {namespace: [default], kind: [pod], profile: [baseline]}, approvals: 0}\n"
        "  - {name: default}\n"
    )
    with spawn_cluster(tmp / "kubesim") as cluster:
        port = free_port()
        env = {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "EPHEMERA_DEMO": "1",
            "EPHEMERA_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "KUBECONFIG": str(cluster.kubeconfig),
            "EPHEMERA_POLICY_FILE": str(tmp / "policy.yaml"),
            "LOG_LEVEL": "WARNING",
        }
        setup_django(env)
        user, token = make_user_and_token()
        print(f"kubesim on {cluster.url}; provisioning {1 + args.idle} sessions...", flush=True)
        session, *idle = make_sessions(user, 1 + args.idle)
        log_path = tmp / "daphne.log"
        daphne_log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
        daphne = subprocess.Popen(
            [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
            cwd=ROOT, env={**os.environ, **env}, stdout=daphne_log, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or daphne.poll() is not None:
                        raise RuntimeError("daphne did not start") from None
                    time.sleep(0.1)
            print(f"portal (daphne pid {daphne.pid}) on 127.0.0.1:{port}; log {log_path}", flush=True)
            asyncio.run(measure(args, port, token, session, idle, daphne.pid))
        finally:
            daphne.terminate()
            try:
                daphne.wait(10)
            except subprocess.TimeoutExpired:
                daphne.kill()
            daphne_log.close()


if __name__ == "__main__":
    main()
