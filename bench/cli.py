"""The kubectl plugin's terminal against the browser's path, in the same run.

    .venv/bin/python bench/cli.py                    # about a minute on 2 cores
    .venv/bin/python bench/cli.py --keystrokes 1000 --mb 20

Sets up as bench/terminal.py does (kubesim as a subprocess, a temporary SQLite database, a user,
an API token, self-approving debug sessions, the portal under Daphne) and reuses its clients and
measurements. For each path it measures:
  - echo: one key in, wait for its echo, --keystrokes times (p50, p99);
  - flood: bulk output (`seq` and log-like UTF-8 text), MB/s, median of --runs.
"browser" is Ephemera's websocket as the page speaks it (bench/terminal.py's client: frames,
ACKs every 64 KiB), so its numbers are the ones bench/terminal.py reports for Ephemera.
"plugin" is `.venv/bin/kubectl-ephemera attach SESSION` in a pty of its own, typed into and read
from the pty's other end the way a terminal emulator does: it adds the pty, the plugin's raw mode
and its own websocket client, which is what an engineer in a terminal gets instead of xterm.js.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

import terminal as tb  # bench/terminal.py: set-up, clients and measurements (sys.path[0] is bench/)

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-ephemera"


cpu_seconds = tb.cpu_seconds


class PluginTerm:
    """`kubectl-ephemera attach` on a pty; `write`/`read` act on the pty's master side, with the
    same interface as bench/terminal.py's EphemeraTerm so its measurements run unchanged."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 262144)
        except OSError:  # EIO: the plugin exited and closed the pty's slave side
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.chunks.put_nowait(data)

    @classmethod
    async def spawn(cls, argv: list[str], env: dict[str, str], cols: int = 120, rows: int = 40) -> PluginTerm:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )
        os.close(slave)
        return cls(proc, master)

    @classmethod
    async def open(cls, session_id: str, env: dict[str, str]) -> PluginTerm:
        term = await cls.spawn([str(PLUGIN), "attach", session_id], env)
        seen = b""
        async with asyncio.timeout(30):
            while b"Attached to session" not in seen:
                chunk = await term.read()
                if not chunk:
                    raise RuntimeError(f"the plugin exited: {seen.decode(errors='replace')}")
                seen += chunk
        return term

    async def write(self, data: bytes) -> None:
        os.write(self.master, data)

    async def read(self) -> bytes:
        return await self.chunks.get()

    async def flush_ack(self) -> None:
        pass  # the plugin acks what it has written to the pty

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, b"\x10\x11")  # Ctrl-P Ctrl-Q: detach, as a person would
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


async def measure(args: argparse.Namespace, port: int, token: str, sessions: list[Any], files: dict[str, Path]) -> None:
    plugin_env = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "DJANGO_"))}
    plugin_env.update({"EPHEMERA_URL": f"http://127.0.0.1:{port}", "EPHEMERA_TOKEN": token, "TERM": "xterm"})
    browser_url = f"ws://127.0.0.1:{port}/ws/sessions/{sessions[0].pk}/terminal"

    async with tb.aiohttp.ClientSession() as http:
        # Both terminals open at once (two sessions), measured in turns: the machine's other load
        # and the portal's warm-up fall on both paths alike instead of on whichever went first.
        terms: dict[str, Any] = {"browser": await tb.EphemeraTerm.open(http, browser_url, token),
                 "plugin": await PluginTerm.open(str(sessions[1].pk), plugin_env)}
        try:
            lat: dict[str, list[float]] = {path: [] for path in terms}
            for _ in range(2):
                for path, term in terms.items():
                    lat[path] += await tb.echo_latencies(term, args.keystrokes // 2)
            for path in terms:
                p50, p99 = tb.percentile(lat[path], 0.5), tb.percentile(lat[path], 0.99)
                print(f"echo latency {path:7} (n={len(lat[path])}): p50 {p50:.2f} ms  p99 {p99:.2f} ms")
            b50, p50 = tb.percentile(lat["browser"], 0.5), tb.percentile(lat["plugin"], 0.5)
            b99, p99 = tb.percentile(lat["browser"], 0.99), tb.percentile(lat["plugin"], 0.99)
            print(f"echo latency the plugin adds: p50 {p50 - b50:+.2f} ms  p99 {p99 - b99:+.2f} ms", flush=True)

            size = args.mb * tb.MB
            for kind in args.kinds.split(","):
                command = tb.flood_command(kind, size, files)
                speeds: dict[str, list[float]] = {path: [] for path in terms}
                cpu = 0.0
                for _ in range(args.runs):
                    for path, term in terms.items():
                        before = cpu_seconds(term.proc.pid) if path == "plugin" else 0.0
                        speeds[path].append(await tb.flood(term, command, size))
                        if path == "plugin":
                            cpu += cpu_seconds(term.proc.pid) - before
                b, p = statistics.median(speeds["browser"]), statistics.median(speeds["plugin"])
                print(f"flood {kind:5} {args.mb} MB: browser {b:.1f} MB/s ({tb.fmt_runs(speeds['browser'])})  "
                      f"plugin {p:.1f} MB/s ({tb.fmt_runs(speeds['plugin'])})  plugin/browser {p / b:.2f}  "
                      f"plugin CPU {cpu * 1000 / (args.runs * args.mb):.1f} ms/MB", flush=True)
            # The pty's own ceiling with this reader: `cat` of the same text straight into a pty.
            ceiling = []
            for _ in range(args.runs):
                cat = await PluginTerm.spawn(["sh", "-c", f"stty raw -echo; cat {files['mixed']}; echo BENCH''DONE"], plugin_env)
                started = time.perf_counter()
                got = await tb.read_until(cat, b"BENCHDONE", timeout=120)
                ceiling.append(got / tb.MB / (time.perf_counter() - started))
                await cat.close()
            print(f"pty alone (cat of the mixed text into a pty, same reader): {statistics.median(ceiling):.1f} MB/s "
                  f"({tb.fmt_runs(ceiling)})", flush=True)
        finally:
            for term in terms.values():
                await term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keystrokes", type=int, default=300)
    parser.add_argument("--mb", type=int, default=10, help="MB per flood run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default="seq,mixed", help="flood kinds: zeros,seq,mixed")
    args = parser.parse_args()
    if not PLUGIN.exists():
        sys.exit(f"{PLUGIN} is missing: make deps installs the plugin (./cli) into .venv")

    from kubesim.testing import spawn_cluster

    tmp = Path(tempfile.mkdtemp(prefix="ephemera-bench-cli-"))
    files = {"mixed": tmp / "mixed.txt"}
    files["mixed"].write_bytes(tb.mixed_text(args.mb * tb.MB))
    (tmp / "policy.yaml").write_text(
        "rules:\n  - {name: bench, match: {namespace: [default], kind: [pod], profile: [baseline]}, approvals: 0}\n"
        "  - {name: default}\n"
    )
    print(f"{os.cpu_count()} CPUs, load average {tb.load()}", flush=True)
    try:
        with spawn_cluster(tmp / "kubesim") as cluster:
            env = {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "EPHEMERA_DEMO": "1",
                "EPHEMERA_VAR_DIR": str(tmp),
                "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
                "KUBECONFIG": str(cluster.kubeconfig),
                "EPHEMERA_POLICY_FILE": str(tmp / "policy.yaml"),
                "LOG_LEVEL": "WARNING",
            }
            tb.setup_django(env)
            user, token = tb.make_user_and_token()
            sessions = tb.make_sessions(user, 2)  # one per path: a second attach would replace the first
            port = tb.free_port()
            with tb.daphne(port, env, tmp / "daphne.log"):
                started = time.monotonic()
                asyncio.run(measure(args, port, token, sessions, files))
                print(f"measured in {time.monotonic() - started:.0f} s")
        print(f"done, load average {tb.load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
