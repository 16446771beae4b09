"""Throughput of one kubesim attach stream vs reading the same command's output locally.

    .venv/bin/python bench/kubesim_attach.py [--mb 100] [--runs 3]

Starts a Runtime inside a small aiohttp app on 127.0.0.1, attaches over a real websocket
(v5.channel.k8s.io) to a container that writes N MB once we say go, and reports MB/s
(median of the runs) for tty and pipe mode, next to a local baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from kubesim.runtime.harness import Harness, make_pod  # noqa: E402

MB = 1_000_000


def _command(size: int) -> list[str]:
    return ["head", "-c", str(size), "/dev/zero"]


async def attach_run(h: Harness, tty: bool, size: int, n: int) -> float:
    name = f"bench-{'tty' if tty else 'pipe'}-{n}"
    key = ("default", name, "app")
    # The container waits for a line on stdin so the attach is in place before the first byte.
    script = f"read go; exec {' '.join(_command(size))}"
    pod = make_pod(
        name,
        [{"name": "app", "image": "busybox", "stdin": True, "tty": tty, "command": ["sh", "-c", script]}],
        restartPolicy="Never",
    )
    await h.runtime.start_pod(pod)
    await h.wait_running(key)
    client = await h.attach(key, tty=tty)
    ws = client.ws
    received = 0
    start = time.perf_counter()
    await client.stdin(b"go\n")
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        if msg.data[0] in (1, 2):
            received += len(msg.data) - 1
    elapsed = time.perf_counter() - start
    await h.runtime.stop_pod("default", name)
    if received < size:
        raise RuntimeError(f"{name}: got {received} of {size} bytes")
    return received / elapsed / MB


def baseline_pipe(size: int) -> float:
    r, w = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen(_command(size), stdout=w)  # noqa: S603
    os.close(w)
    received = 0
    while chunk := os.read(r, 65536):
        received += len(chunk)
    elapsed = time.perf_counter() - start
    os.close(r)
    proc.wait()
    return received / elapsed / MB


def baseline_pty(size: int) -> float:
    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(_command(size), stdout=slave, stdin=slave, stderr=slave)  # noqa: S603
    os.close(slave)
    received = 0
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the slave side is closed
            break
        if not chunk:
            break
        received += len(chunk)
    elapsed = time.perf_counter() - start
    os.close(master)
    proc.wait()
    return received / elapsed / MB


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mb * MB
    results: dict[str, float] = {}
    async with Harness() as h:
        for tty in (True, False):
            speeds = [await attach_run(h, tty, size, n) for n in range(args.runs)]
            results["tty" if tty else "pipe"] = statistics.median(speeds)
    base_pipe = statistics.median(baseline_pipe(size) for _ in range(args.runs))
    base_pty = statistics.median(baseline_pty(size) for _ in range(args.runs))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    # The PTY path is bound by the kernel (4 KiB line-discipline buffer): other load on the box shows up here.
    print(f"payload: {args.mb} MB, median of {args.runs} runs, {os.cpu_count()} CPUs, load average {load}")
    print(f"baseline local pipe read: {base_pipe:.1f} MB/s")
    print(f"baseline local pty read: {base_pty:.1f} MB/s")
    print(
        f"attach websocket tty: {results['tty']:.1f} MB/s (ratio to local pty {results['tty'] / base_pty:.2f}, to local pipe {results['tty'] / base_pipe:.2f})"
    )
    print(f"attach websocket pipe: {results['pipe']:.1f} MB/s (ratio to local pipe {results['pipe'] / base_pipe:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
