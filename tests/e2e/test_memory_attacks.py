"""Clients that don't read can't grow the portal: lying ACKs and silent watchers, on real Daphne.

The attacks (hardening issue, item 2): a terminal client acknowledging 0xFFFFFFFF every
100 ms without reading grew Daphne from 174 MB to 1.1 GB in 27 s; 10 watch sockets that
never read added 160 MB in 15 s. Each attacker here is a raw socket that speaks just enough
websocket to send frames and never calls recv(), with a small receive buffer, while the shell
floods output. Daphne's resident memory must stay bounded and the attackers be dropped.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from kubesim.testing import spawn_cluster
from sessions.bridge import protocol
from tests.e2e.test_sigkill import Portal, _running_session

pytestmark = pytest.mark.timeout(240)
# Below what the attacks did before the fix (about 900 MB for the ACKs; 82 MB for the watchers
# in this test's 15 s, 160 MB in the issue's), above the noise of a Python process warming up
# and the flood's own in-flight windows (about 22 MB measured with the fix).
MAX_GROWTH_MB = 50


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _frame(payload: bytes) -> bytes:
    """A masked binary websocket frame (clients must mask)."""
    mask = os.urandom(4)
    head = bytes([0x82])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class SilentClient:
    """Opens a websocket, then only ever writes; its receive buffer stays small and full."""

    def __init__(self, url: str, path: str, token: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:  # the handshake answer only; nothing after it is ever read
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, payload: bytes) -> bool:
        try:
            self.sock.sendall(_frame(payload))
            return True
        except OSError:
            return False

    def dropped(self, seconds: float) -> bool:
        """Did the server give up on us? Drain what it queued and look for the end."""
        self.sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(1 << 20):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def flooding(tmp_path: Path) -> Iterator[tuple[Portal, str, str]]:
    """A real Daphne with a running session whose shell floods output through an honest terminal."""
    with spawn_cluster(tmp_path / "kubesim") as cluster:
        p = Portal(tmp_path, cluster.kubeconfig)
        p.manage("migrate", "--noinput")
        p.manage("seed_demo")
        alice = p.manage("create_api_token", "alice").strip()
        bob = p.manage("create_api_token", "bob").strip()
        p.start()
        try:
            pods = cluster.kubectl("get", "pods", "-n", "default", "-o", "name").stdout.split()
            nginx = next(n.split("/")[1] for n in pods if "distroless-nginx-" in n)
            session = _running_session(p, alice, bob, {"namespace": "default", "pod": nginx,
                                                       "container": "distroless-nginx-ctr", "profile": "general"})
            yield p, session["id"], alice
        finally:
            p.stop_all()


def _watch_token(p: Portal) -> str:
    return p.manage("create_api_token", "bob").strip()


async def _honest_flood(p: Portal, token: str, sid: str, seconds: float) -> int:
    """The requester's own terminal: reads and acks everything while `yes` floods."""
    received = 0
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{p.url.replace('http', 'ws')}/ws/sessions/{sid}/terminal",
                                   headers={"Authorization": f"Bearer {token}"}, max_msg_size=0)
        await ws.send_bytes(protocol.input_(b"yes 'flooding the terminal'\r"))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=1)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            if msg.data[:1] == bytes([protocol.OUTPUT]):
                received += len(msg.data) - 1
                await ws.send_bytes(protocol.ack(len(msg.data) - 1))
        await ws.send_bytes(protocol.input_(b"\x03"))
        await ws.close()
    return received


def test_a_terminal_client_with_lying_acks_is_dropped_and_memory_stays_bounded(flooding: tuple[Portal, str, str]) -> None:
    p, sid, alice = flooding
    assert p.daphne is not None
    path = f"/ws/sessions/{sid}/terminal"
    before = _rss_mb(p.daphne.pid)
    # 1. The attack as found: ACK 0xFFFFFFFF every 100 ms, never read.
    liar = SilentClient(p.url, path, alice)
    liar.send(protocol.input_(b"yes 'flooding the terminal'\r"))
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and liar.send(protocol.ack(0xFFFFFFFF)):
        time.sleep(0.1)
    assert liar.dropped(20), "a client acknowledging more than it was sent should be dropped"
    liar.close()
    # 2. A subtler liar: ACKs that never exceed what was sent (16 KiB every 50 ms, below the
    # flood's rate), never read. Only the transport's queue shows it is not reading.
    subtle = SilentClient(p.url, path, alice)
    subtle.send(protocol.input_(b"yes 'flooding the terminal'\r"))
    time.sleep(2)  # the window fills first, so none of the ACKs below claims more than was sent
    peak = before
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and subtle.send(protocol.ack(16 * 1024)):
        peak = max(peak, _rss_mb(p.daphne.pid))
        time.sleep(0.05)
    assert subtle.dropped(20), "a client that doesn't read its output should be dropped"
    subtle.close()
    peak = max(peak, _rss_mb(p.daphne.pid))
    print(f"lying ACKs: Daphne {before:.0f} -> peak {peak:.0f} MB")
    assert peak - before < MAX_GROWTH_MB, f"Daphne grew from {before:.0f} to {peak:.0f} MB"


def test_watchers_that_never_read_are_dropped_and_memory_stays_bounded(flooding: tuple[Portal, str, str]) -> None:
    p, sid, alice = flooding
    assert p.daphne is not None
    bob = _watch_token(p)
    before = _rss_mb(p.daphne.pid)
    watchers = [SilentClient(p.url, f"/ws/sessions/{sid}/watch", bob) for _ in range(10)]
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_mb(p.daphne.pid))  # type: ignore[union-attr]
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        received = asyncio.run(_honest_flood(p, alice, sid, 15))
    finally:
        stop.set()
        sampler.join(5)
    assert received > 20 * 1024 * 1024, f"the flood should have streamed plenty ({received} bytes)"
    print(f"flood {received / 1e6:.0f} MB through the terminal; Daphne {before:.0f} -> peak {peak:.0f} MB")
    assert peak - before < MAX_GROWTH_MB, f"Daphne grew from {before:.0f} to {peak:.0f} MB with 10 silent watchers"
    dropped = sum(w.dropped(10) for w in watchers)
    for w in watchers:
        w.close()
    assert dropped == len(watchers), f"only {dropped} of {len(watchers)} silent watchers were dropped"
