"""Terminal benchmark: Ephemera's websocket vs kubesim's attach stream directly, in the same run.

    .venv/bin/python bench/terminal.py                       # the default: a few minutes on 2 cores
    .venv/bin/python bench/terminal.py --streams 50,100,300  # the many-sessions probe at big N
    .venv/bin/python bench/terminal.py --only relay          # one part: idle, echo, flood, probe, relay, ttyd

Starts kubesim (subprocess), migrates a temporary SQLite database (or, with a PostgreSQL
DATABASE_URL, a scratch database of its own next to the one named, dropped at the end),
creates a user, an API token and auto-approved debug sessions through the services, starts
the portal under Daphne on 127.0.0.1, then measures, each through Ephemera and directly
against kubesim's attach:
  - idle: Daphne's RSS before/after opening --idle terminal websockets (per terminal), and
    its CPU over 10 s of nothing happening, with one terminal open and with all of them;
  - echo: one byte in, wait for its echo, --keystrokes times (p50, p99);
  - flood: bulk output through the terminal, median of --runs, for three kinds of output:
    `zeros` (`head -c | tr`: compresses 1000:1, flatters the recorder), `seq` (`seq 1 N`)
    and `mixed` (log-like text with UTF-8 and colour escapes, `cat` of a file), each with
    Daphne's peak RSS during the flood; and Ctrl-C during a `seq` flood: time until the
    prompt is back and the bytes drained meanwhile;
  - probe: N sessions each streaming `seq` output while one more types a key every 20 ms:
    its echo p50/p99, for each N in --streams (the streamers run in a child process, so the
    typist's numbers are not the load generator's own lag);
  - relay: the portal alone, pointed at a fast fake upstream (bench/fake_upstream.py, a
    local websocket server speaking the v5 channel protocol that floods): a second Daphne
    whose KUBECONFIG names the fake, the same sessions, recording on as always; next to the
    fake read directly (the client's and fake's own ceiling); and the probe again with the fake
    flooding --relay-streams sessions (no pty, shell or kubesim: the portal's own share);
  - ttyd as the outside anchor, when a `ttyd` binary is on PATH (else a note says so).
Goals (issue 10): echo +2 ms p50 / +10 ms p99; flood >= 0.80 of direct on realistic output;
probe p99 <= 50 ms at 100 streams, <= 100 ms at 300; relay >= 100 MB/s; idle <= 128 KiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

MB = 1_000_000
KIND_NAMES = ("zeros", "seq", "mixed")
PARTS = ("idle", "echo", "flood", "probe", "relay", "ttyd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu_percent(pid: int, seconds: float) -> float:
    """The share of one core a process used over `seconds` of doing nothing asked of it."""
    start = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pid) - start) / seconds


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


class PeakRss:
    """Samples a process's RSS every 10 ms in a thread; `peak` is the highest since `reset()`.

    A thread, not a task: the bench's event loop is busiest exactly when memory peaks.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, rss_kib(self.pid))

    def reset(self) -> None:
        self.peak = rss_kib(self.pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- realistic output ----------------------------------------------------------------------


def seq_count(size: int) -> int:
    """The N for which `seq 1 N` prints about `size` bytes (before the tty's CR per line)."""
    n, total, digits, bound = 0, 0, 1, 10
    while total < size:
        step = min(bound - 1 - n, (size - total) // (digits + 1) + 1)
        n += step
        total += step * (digits + 1)
        if n == bound - 1:
            digits, bound = digits + 1, bound * 10
    return n


def mixed_text(size: int, seed: int = 10) -> bytes:
    """Log-like lines: timestamps, levels, paths, ids, JSON, some UTF-8 and colour escapes.

    zlib shrinks it about 3-4x, like real logs; `/dev/zero` shrinks 1000:1.
    """
    rng = random.Random(seed)
    words = "request handled upstream timeout retry cache miss hit pool worker shard lease renew commit rollback".split()
    paths = ["/api/v1/orders", "/healthz", "/static/app.js", "/api/v1/users/{}", "/metrics", "/login"]
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "\x1b[31mERROR\x1b[0m"]
    out: list[bytes] = []
    total = 0
    t = 1_764_000_000.0
    while total < size:
        t += rng.random() / 10
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
        kind = rng.random()
        if kind < 0.5:
            line = (
                f"{stamp} {rng.choice(levels)} {rng.choice(paths).format(rng.randint(1, 99999))} "
                f"status={rng.choice((200, 200, 200, 201, 304, 404, 500))} dur={rng.random() * 300:.1f}ms "
                f"trace={rng.getrandbits(64):016x}"
            )
        elif kind < 0.8:
            line = f"{stamp} {rng.choice(levels)} " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))
        elif kind < 0.95:
            line = json.dumps(
                {"ts": stamp, "user": f"u{rng.randint(1, 500)}", "msg": rng.choice(words), "n": rng.randint(0, 10**6), "ok": rng.random() < 0.9}
            )
        else:
            line = f"{stamp} INFO café ✓ résumé naïve 日本語 — {rng.choice(words)} {rng.randint(0, 9999)}"
        data = line.encode() + b"\n"
        out.append(data)
        total += len(data)
    return b"".join(out)[:size]


def flood_command(kind: str, size: int, files: dict[str, Path]) -> str:
    if kind == "zeros":
        body = f"head -c {size} /dev/zero | tr '\\000' a; echo"
    elif kind == "seq":
        body = f"seq 1 {seq_count(size)}"
    else:
        body = f"cat {files['mixed']}"
    return f"{body}; echo BENCH''DONE\r"


# --- setup through the portal's own services ---------------------------------------------


def setup_django(env: dict[str, str], *, migrate: bool = True) -> None:
    os.environ.update(env)
    import django

    django.setup()
    if not migrate:
        return
    from django.db import connection

    if connection.vendor == "postgresql":
        # A scratch database of our own next to the one named (created, migrated; dropped by
        # drop_scratch_database), and every process of the bench pointed at it.
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        name = connection.settings_dict["NAME"]
        url = urlsplit(env["DATABASE_URL"])
        env["DATABASE_URL"] = os.environ["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}"))
        print(f"PostgreSQL, scratch database {name}", flush=True)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def drop_scratch_database() -> None:
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return
    name = connection.settings_dict["NAME"]
    connections.close_all()
    with connection._nodb_cursor() as cursor:  # WITH (FORCE): the provisioner's threads may hold connections
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


# --- clients: the same operations over Ephemera's protocol, kubesim's and ttyd's ----------


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
                return bytes(payload)

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
    async def open(cls, namespace: str, pod: str, container: str, conn: Any = None) -> DirectTerm:
        from portal.kube.attach import open_attach
        from portal.kube.config import load_connection

        stream = await open_attach(conn or load_connection(), namespace=namespace, pod=pod, container=container)
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
                return bytes(event.data)

    async def flush_ack(self) -> None:
        pass

    async def close(self) -> None:
        await self.stream.close()


class TtydTerm:
    """ttyd's protocol (1.7): subprotocol `tty`, a JSON hello, then '0'+input / '0'+output."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws

    @classmethod
    async def open(cls, port: int) -> TtydTerm:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws", protocols=("tty",), max_msg_size=0)
        await ws.send_str(json.dumps({"AuthToken": "", "columns": 120, "rows": 40}))
        return cls(http, ws)

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(b"0" + data)

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                raise RuntimeError(f"ttyd closed: {msg.type}")
            data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            if data[:1] == b"0" and len(data) > 1:
                return data[1:]

    async def flush_ack(self) -> None:
        pass

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


async def read_until(term: Any, needle: bytes, timeout: float = 120) -> int:
    """Read until `needle` appears; returns the bytes read."""
    seen = b""
    total = 0
    try:
        async with asyncio.timeout(timeout):
            while needle not in seen:
                chunk = await term.read()
                total += len(chunk)
                seen = (seen + chunk)[-(len(needle) + 64) :]
    except TimeoutError:
        raise TimeoutError(f"no {needle!r} in {timeout} s; {total} bytes came, ending {seen[-80:]!r}") from None
    await term.flush_ack()
    return total


async def drain(term: Any, quiet: float = 0.3) -> None:
    with contextlib.suppress(TimeoutError):
        while True:
            async with asyncio.timeout(quiet):
                await term.read()


async def settle(term: Any, attempts: int = 6) -> None:
    for attempt in range(attempts):
        marker = f"SETTLE{time.monotonic_ns()}"
        await term.write(b"\x03")  # a separate write: an interrupt flushes the tty's pending input
        await asyncio.sleep(0.1 * (attempt + 1))
        await term.write(f"stty sane; echo {marker[:3]}''{marker[3:]}\r".encode())
        try:
            await read_until(term, marker.encode(), timeout=20)
            break
        except TimeoutError:
            # A shell slow to take the interrupt (a busy machine) drops the line typed after
            # it along with the old one: say it again, with more time between the two.
            if attempt == attempts - 1:
                raise
    await asyncio.sleep(0.2)
    await drain(term)  # the prompt that follows


async def echo_latencies(term: Any, n: int, *, every: float = 0.0) -> list[float]:
    """`n` keystrokes, each timed to its echo; with `every`, one key per `every` seconds."""
    await settle(term)
    samples = []
    for i in range(n):
        ch = b"abcdefghij"[i % 10 : i % 10 + 1]
        start = time.perf_counter()
        await term.write(ch)
        got = b""
        while ch not in got:
            got += await term.read()
        elapsed = time.perf_counter() - start
        samples.append(elapsed * 1000)
        if i % 200 == 199:
            await term.write(b"\x15")  # kill the line: keep the tty line buffer short
            await asyncio.sleep(0.05)
        if every > elapsed:
            await asyncio.sleep(every - elapsed)
    await term.flush_ack()
    await term.write(b"\x03")
    return samples


async def flood(term: Any, command: str, size: int) -> float:
    """MB/s of the bytes that arrived (a tty adds a CR per line: counted, it was sent)."""
    await settle(term)
    start = time.perf_counter()
    await term.write(command.encode())
    total = await read_until(term, b"BENCHDONE", timeout=600)
    elapsed = time.perf_counter() - start
    if total < size:
        raise RuntimeError(f"only {total} of {size} bytes arrived")
    return total / MB / elapsed


async def interrupt(term: Any) -> tuple[float, int]:
    """Ctrl-C 1 s into a `seq` flood: ms until the prompt answers, bytes that arrived meanwhile."""
    await settle(term)
    await term.write(b"seq 1 2000000000\r")
    got = 0
    async with asyncio.timeout(30):
        while got < 2 * MB:
            got += len(await term.read())
    start = time.perf_counter()
    await term.write(b"\x03")
    await term.write(b"echo INT''DONE\r")
    drained = await read_until(term, b"INTDONE", timeout=60)
    return (time.perf_counter() - start) * 1000, drained


def fmt_runs(values: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


# --- the many-sessions probe's load: a child process streaming N terminals -----------------


async def stream_worker() -> None:
    """Child mode: open the terminals named on stdin, stream `seq` in all at "go", stop at "stop"."""
    spec = json.loads(sys.stdin.readline())
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    gate = asyncio.Semaphore(25)  # Twisted listens with a backlog of 50

    async def open_one(s: list[str]) -> Any:
        async with gate:
            if spec["mode"] == "ephemera":
                return await EphemeraTerm.open(http, f"ws://127.0.0.1:{spec['port']}/ws/sessions/{s[0]}/terminal", spec["token"])
            return await DirectTerm.open(s[1], s[2], s[3])

    if spec["mode"] == "direct":
        setup_django({}, migrate=False)
    terms = await asyncio.gather(*(open_one(s) for s in spec["sessions"]))
    for t in terms:
        await t.write(b"\x03")
    await asyncio.sleep(0.5)
    received = [0]
    stop = asyncio.Event()

    async def pump(t: Any) -> None:
        await t.write(spec["command"].encode())
        while not stop.is_set():
            received[0] += len(await t.read())

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    await reader.readline()  # go
    start = time.perf_counter()
    tasks = [asyncio.create_task(pump(t)) for t in terms]
    await reader.readline()  # stop
    elapsed = time.perf_counter() - start
    total = received[0]
    stop.set()
    for t in terms:
        with contextlib.suppress(Exception):
            await t.write(b"\x03")
    await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(t.close() for t in terms), return_exceptions=True)
    await http.close()
    print(json.dumps({"bytes": total, "seconds": elapsed}), flush=True)


# What each streaming session runs: `seq` as fast as it goes, or paced (a busy `tail -f`:
# about 57 KB every 0.1 s, at most ~570 KB/s per session).
# "fake": bench/fake_upstream.py's own flood (the relay part).
STREAM_COMMANDS = {
    "flood": "seq 1 2000000000\r",
    "paced": "while :; do seq 1 9000; sleep 0.1; done\r",
    "fake": "flood seq 1000000000000\r",
}


async def probe(ctx: Ctx, mode: str, n: int, keys: int, pace: str) -> tuple[list[float], float, int]:
    """Echo of one typist while `n` other sessions stream; (latencies, streamed MB/s, peak KiB)."""
    streamers = [[str(s.pk), s.namespace, s.pod, s.container_name] for s in ctx.sessions[1 : 1 + n]]
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--stream-worker", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env={**os.environ}, cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    spec = {"mode": mode, "port": ctx.port, "token": ctx.token, "sessions": streamers, "command": STREAM_COMMANDS[pace]}
    child.stdin.write((json.dumps(spec) + "\n").encode())
    await child.stdin.drain()
    typist = None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 300)
        if line.strip() != b"ready":
            raise RuntimeError(f"stream worker failed to start: {line!r}")
        typist = await ctx.open(mode)
        await settle(typist)
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        await asyncio.sleep(1)  # let the floods get going
        ctx.rss.reset()
        samples = await echo_latencies(typist, keys, every=0.02)
        peak = ctx.rss.peak
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        result = json.loads(await asyncio.wait_for(child.stdout.readline(), 120))
        await child.wait()
    finally:
        if typist is not None:
            await typist.close()
        if child.returncode is None:
            child.kill()
            await child.wait()
    return samples, result["bytes"] / MB / result["seconds"], peak


# --- the run -----------------------------------------------------------------------------


@dataclass
class Ctx:
    port: int
    token: str
    sessions: list[Any]
    daphne_pid: int
    files: dict[str, Path]
    http: aiohttp.ClientSession
    rss: PeakRss = field(init=False)

    def __post_init__(self) -> None:
        self.rss = PeakRss(self.daphne_pid)

    async def open(self, mode: str, index: int = 0) -> Any:
        s = self.sessions[index]
        if mode == "ephemera":
            return await EphemeraTerm.open(self.http, f"ws://127.0.0.1:{self.port}/ws/sessions/{s.pk}/terminal", self.token)
        return await DirectTerm.open(s.namespace, s.pod, s.container_name)


IDLE_CPU_SECONDS = 10.0


async def part_idle(ctx: Ctx, count: int) -> None:
    # The main terminal first: it warms Daphne up (lazy imports, first cluster connection), so
    # the idle measurement only sees the per-terminal cost.
    warm = await ctx.open("ephemera")
    await settle(warm)
    await asyncio.sleep(1)
    before = rss_kib(ctx.daphne_pid)
    cpu_before = await idle_cpu_percent(ctx.daphne_pid, IDLE_CPU_SECONDS)
    http_idle = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    # 25 handshakes at a time: Twisted listens with a backlog of 50, and 200 connects in the
    # same millisecond overflow it (resets); browsers don't arrive that way.
    gate = asyncio.Semaphore(25)

    async def open_idle(s: Any) -> EphemeraTerm:
        async with gate:
            return await EphemeraTerm.open(http_idle, f"ws://127.0.0.1:{ctx.port}/ws/sessions/{s.pk}/terminal", ctx.token)

    terms = await asyncio.gather(*(open_idle(s) for s in ctx.sessions[1 : 1 + count]))
    await asyncio.sleep(3)
    after = rss_kib(ctx.daphne_pid)
    print(f"idle terminals: {len(terms)}  daphne RSS before {before} KiB  after {after} KiB")
    print(f"idle memory per terminal session: {(after - before) / len(terms):.0f} KiB (goal <= 128)", flush=True)
    # What the open terminals cost while nobody types and nothing prints: their timers.
    cpu_after = await idle_cpu_percent(ctx.daphne_pid, IDLE_CPU_SECONDS)
    print(f"daphne CPU while idle, {IDLE_CPU_SECONDS:.0f} s: {cpu_before:.1f}% of a core with one terminal, "
          f"{cpu_after:.1f}% with {len(terms) + 1}", flush=True)
    await asyncio.gather(*(t.close() for t in terms))
    await http_idle.close()
    await warm.close()


async def part_echo(ctx: Ctx, keystrokes: int) -> None:
    lat = {}
    for mode in ("direct", "ephemera"):
        term = await ctx.open(mode)
        lat[mode] = await echo_latencies(term, keystrokes)
        await term.close()
    d50, d99 = percentile(lat["direct"], 0.5), percentile(lat["direct"], 0.99)
    e50, e99 = percentile(lat["ephemera"], 0.5), percentile(lat["ephemera"], 0.99)
    print(f"echo latency direct    (n={keystrokes}): p50 {d50:.2f} ms  p99 {d99:.2f} ms")
    print(f"echo latency ephemera  (n={keystrokes}): p50 {e50:.2f} ms  p99 {e99:.2f} ms")
    print(f"echo latency added by ephemera: p50 +{e50 - d50:.2f} ms (goal <= 2)  p99 +{e99 - d99:.2f} ms (goal <= 10)", flush=True)


MIXED_IN_CONTAINER = Path("/tmp/bench-mixed.txt")


def put_file(session: Any, local: Path, remote: Path) -> None:
    """Copy a file into the session's debug container as a user would (`kubectl exec -i ... cat >`):
    kubesim's containers have root filesystems of their own, so this machine's files aren't there."""
    with local.open("rb") as source:
        subprocess.run(
            [str(ROOT / ".venv/bin/kubectl"), "exec", "-i", "-n", session.namespace, session.pod, "-c", session.container_name,
             "--", "sh", "-c", f"cat > {remote}"],
            stdin=source, check=True, timeout=300, env={**os.environ},
        )


async def part_flood(ctx: Ctx, mb: int, runs: int, kinds: list[str]) -> None:
    size = mb * MB
    files = ctx.files
    if "mixed" in kinds:
        await asyncio.to_thread(put_file, ctx.sessions[0], ctx.files["mixed"], MIXED_IN_CONTAINER)
        files = {**ctx.files, "mixed": MIXED_IN_CONTAINER}
    for kind in kinds:
        command = flood_command(kind, size, files)
        speeds: dict[str, list[float]] = {}
        peaks: list[int] = []
        for mode in ("direct", "ephemera"):
            term = await ctx.open(mode)
            speeds[mode] = []
            for _ in range(runs):
                ctx.rss.reset()
                speeds[mode].append(await flood(term, command, size))
                if mode == "ephemera":
                    peaks.append(ctx.rss.peak)
            await term.close()
        dm, em = statistics.median(speeds["direct"]), statistics.median(speeds["ephemera"])
        print(f"flood {kind:<5} ({mb} MB x {runs}): direct {dm:.1f} MB/s [{fmt_runs(speeds['direct'])}]  "
              f"ephemera {em:.1f} MB/s [{fmt_runs(speeds['ephemera'])}]  ratio {em / dm:.2f} (goal >= 0.80)  "
              f"daphne peak RSS {max(peaks) // 1024} MiB", flush=True)
    for mode in ("direct", "ephemera"):
        term = await ctx.open(mode)
        results = [await interrupt(term) for _ in range(runs)]
        await term.close()
        ms = statistics.median(r[0] for r in results)
        kib = max(r[1] for r in results) // 1024
        print(f"ctrl-c in a seq flood, {mode:<8}: prompt back in {ms:.0f} ms (median; goal <= 300)  "
              f"drained at most {kib} KiB (window 1024)", flush=True)


async def part_probe(ctx: Ctx, streams: list[int], keys: int, pace: str) -> None:
    for n in streams:
        goal = " (goal p99 <= 50)" if n == 100 else " (goal p99 <= 100)" if n == 300 else ""
        rates = {}
        for mode in ("direct", "ephemera"):
            # Each line as soon as it is measured: at big N one side may fail (kubesim, 2 cores).
            lat, rates[mode], peak = await probe(ctx, mode, n, keys, pace)
            extra = f", {rates[mode] / rates['direct']:.2f} of direct, daphne peak RSS {peak // 1024} MiB" if mode == "ephemera" else ""
            print(f"probe {n:>3} streaming ({pace}), typist every 20 ms (n={keys}), {mode:<8}: p50 {percentile(lat, 0.5):.1f} ms "
                  f"p99 {percentile(lat, 0.99):.1f} ms{goal if mode == 'ephemera' else ''}, streams {rates[mode]:.1f} MB/s{extra}  "
                  f"[load {load()}]", flush=True)


async def part_relay(
    ctx: Ctx, env: dict[str, str], tmp: Path, mb: int, runs: int, keystrokes: int, streams: list[int], probe_keys: int
) -> None:
    kubeconfig = tmp / "fake.kubeconfig"
    fake = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench/fake_upstream.py"), "--kubeconfig", str(kubeconfig), stdout=subprocess.PIPE
    )
    try:
        assert fake.stdout is not None
        ready = await asyncio.wait_for(fake.stdout.readline(), 30)
        if b"ready" not in ready:
            raise RuntimeError(f"fake upstream did not start: {ready!r}")
        port = free_port()
        with daphne(port, {**env, "KUBECONFIG": str(kubeconfig)}, tmp / "daphne-relay.log") as pid:
            rctx = Ctx(port, ctx.token, ctx.sessions, pid, ctx.files, ctx.http)
            from portal.kube.config import _load

            fake_conn = await asyncio.to_thread(_with_kubeconfig, kubeconfig, _load)
            size = mb * MB
            for kind in ("seq", "zeros"):
                command = f"flood {kind} {size}; echo BENCH''DONE\r"
                direct = await DirectTerm.open("default", "fake", "fake", conn=fake_conn)
                d = [await flood(direct, command, size) for _ in range(runs)]
                await direct.close()
                term = await rctx.open("ephemera")
                e = []
                rctx.rss.reset()
                for _ in range(runs):
                    e.append(await flood(term, command, size))
                await term.close()
                print(f"relay {kind:<5} ({mb} MB x {runs}), fast fake upstream: fake read directly {statistics.median(d):.1f} MB/s "
                      f"[{fmt_runs(d)}]  through the portal {statistics.median(e):.1f} MB/s [{fmt_runs(e)}] "
                      f"(goal >= 100), daphne peak RSS {rctx.rss.peak // 1024} MiB", flush=True)
            term = await rctx.open("ephemera")
            lat = await echo_latencies(term, keystrokes)
            await term.close()
            print(f"relay echo through the portal, fake upstream (n={keystrokes}): p50 {percentile(lat, 0.5):.2f} ms  "
                  f"p99 {percentile(lat, 0.99):.2f} ms", flush=True)
            # The many-sessions probe with no pty, shell or kubesim in the way: N sessions flooded
            # by the fake, one more typing every 20 ms. What is left is the portal's own share.
            for n in streams:
                lat, rate, peak = await probe(rctx, "ephemera", n, probe_keys, "fake")
                goal = " (goal p99 <= 50)" if n == 100 else " (goal p99 <= 100)" if n == 300 else ""
                print(f"relay probe {n:>3} sessions flooded by the fake, typist every 20 ms (n={probe_keys}): p50 "
                      f"{percentile(lat, 0.5):.1f} ms p99 {percentile(lat, 0.99):.1f} ms{goal}, streams {rate:.1f} MB/s, "
                      f"daphne peak RSS {peak // 1024} MiB  [load {load()}]", flush=True)
            rctx.rss.stop()
    finally:
        fake.terminate()
        await fake.wait()


def _with_kubeconfig(path: Path, fn: Callable[[], Any]) -> Any:
    from django.test import override_settings

    with override_settings(EPHEMERA_KUBECONFIG=str(path), EPHEMERA_KUBE_CONTEXT=""):
        return fn()


async def part_ttyd(ctx: Ctx, files: dict[str, Path], mb: int, runs: int, keystrokes: int, log_path: Path) -> None:
    binary = shutil.which("ttyd")
    if binary is None:
        print("ttyd: skipped, no `ttyd` on PATH (Debian 12 has no ttyd package; docs/performance.md says how to build one)",
              flush=True)
        return
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115, ASYNC230 (a local file, closed with the process)
    proc = await asyncio.create_subprocess_exec(
        binary, "-W", "-i", "127.0.0.1", "-p", str(port), "sh", stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.sleep(1)
        term = await TtydTerm.open(port)
        # ttyd starts the shell when the websocket opens: wait for its prompt, or the first Ctrl-C
        # of settle() reaches sh before it ignores SIGINT and ends it (exit code 130).
        await asyncio.wait_for(term.read(), 10)
        lat = await echo_latencies(term, keystrokes)
        size = mb * MB
        for kind in ("seq", "mixed"):
            speeds = [await flood(term, flood_command(kind, size, files), size) for _ in range(runs)]
            print(f"ttyd flood {kind:<5} ({mb} MB x {runs}, this machine's sh, no container): {statistics.median(speeds):.1f} MB/s [{fmt_runs(speeds)}]")
        await term.close()
        print(f"ttyd echo (n={keystrokes}): p50 {percentile(lat, 0.5):.2f} ms  p99 {percentile(lat, 0.99):.2f} ms", flush=True)
    except Exception as exc:  # an outside anchor: its failure is a note, not the bench's end
        print(f"ttyd: failed ({type(exc).__name__}: {exc}; its log: {log_path})", flush=True)
    finally:
        proc.terminate()
        await proc.wait()
        log.close()


@contextlib.contextmanager
def daphne(port: int, env: dict[str, str], log_path: Path) -> Iterator[int]:
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"daphne did not start, see {log_path}") from None
                time.sleep(0.1)
        print(f"portal (daphne pid {proc.pid}) on 127.0.0.1:{port}; log {log_path}", flush=True)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def measure(args: argparse.Namespace, port: int, token: str, sessions: list[Any], pid: int, files: dict[str, Path],
                  env: dict[str, str], tmp: Path) -> None:
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    async with aiohttp.ClientSession() as http:
        ctx = Ctx(port, token, sessions, pid, files, http)
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("idle", lambda: part_idle(ctx, args.idle)),
            ("echo", lambda: part_echo(ctx, args.keystrokes)),
            ("flood", lambda: part_flood(ctx, args.mb, args.runs, args.kinds.split(","))),
            ("probe", lambda: part_probe(ctx, args.stream_counts, args.probe_keys, args.stream_pace)),
            ("relay", lambda: part_relay(ctx, env, tmp, args.relay_mb, args.runs, args.keystrokes, args.relay_counts, args.probe_keys)),
            ("ttyd", lambda: part_ttyd(ctx, files, args.mb, args.runs, args.keystrokes, tmp / "ttyd.log")),
        ]
        for name, step in steps:
            if name in parts:
                try:
                    await step()
                except Exception as exc:  # one part's failure is a line in the report, not the end of it
                    print(f"{name}: failed ({type(exc).__name__}: {exc}) [load {load()}]", flush=True)
        ctx.rss.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keystrokes", type=int, default=500)
    parser.add_argument("--mb", type=int, default=20, help="MB per flood run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KIND_NAMES), help="flood kinds: zeros,seq,mixed")
    parser.add_argument("--idle", type=int, default=50)
    parser.add_argument("--streams", default="50", help="the probe's streaming session counts, e.g. 50,100,300")
    parser.add_argument("--probe-keys", type=int, default=150)
    parser.add_argument("--stream-pace", choices=("flood", "paced"), default="flood",
                        help="the probe's streams: `seq` flat out (flood) or a busy tail -f (paced)")
    parser.add_argument("--relay-mb", type=int, default=50)
    parser.add_argument("--relay-streams", default="50", help="the relay's probe: sessions flooded by the fake upstream")
    parser.add_argument("--only", default="", help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument("--stream-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_worker:
        asyncio.run(stream_worker())
        return
    args.stream_counts = [int(x) for x in args.streams.split(",") if x]
    args.relay_counts = [int(x) for x in args.relay_streams.split(",") if x]
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    needed = 1 + max([
        args.idle if "idle" in parts else 0,
        *(args.stream_counts if "probe" in parts else [0]),
        *(args.relay_counts if "relay" in parts else [0]),
    ])

    from kubesim.testing import spawn_cluster

    tmp = Path(tempfile.mkdtemp(prefix="ephemera-bench-"))
    files = {"mixed": tmp / "mixed.txt"}
    files["mixed"].write_bytes(mixed_text(args.mb * MB))
    # The bench's sessions approve themselves: a self-service rule for baseline pods in default.
    (tmp / "policy.yaml").write_text(
        "rules:\n  - {name: bench, match: {namespace: [default], kind: [pod], profile: [baseline]}, approvals: 0}\n"
        "  - {name: default}\n"
    )
    print(f"{os.cpu_count()} CPUs, load average {load()}", flush=True)
    try:
        with spawn_cluster(tmp / "kubesim") as cluster:
            env = {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "EPHEMERA_DEMO": "1",
                "EPHEMERA_VAR_DIR": str(tmp),
                "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
                "KUBECONFIG": str(cluster.kubeconfig),
                "EPHEMERA_POLICY_FILE": str(tmp / "policy.yaml"),
                "LOG_LEVEL": "WARNING",
            }
            setup_django(env)
            try:
                user, token = make_user_and_token()
                print(f"kubesim on {cluster.url}; provisioning {needed} sessions...", flush=True)
                sessions = make_sessions(user, needed)
                port = free_port()
                with daphne(port, env, tmp / "daphne.log") as pid:
                    asyncio.run(measure(args, port, token, sessions, pid, files, env, tmp))
            finally:
                drop_scratch_database()
        print(f"done, load average {load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
