"""What the scale-out tests talk to the portals with: the JSON API over HTTP (bearer tokens) and
the websockets (aiohttp's client, the terminal's binary frames from sessions.bridge.protocol)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import requests

from sessions.bridge import protocol


def api(base: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def ask(base: str, token: str, *, pod: str, reason: str) -> str:
    resp = api(base, token, "POST", "/api/v1/requests", {
        "namespace": "default", "pod": pod, "container": "distroless-nginx-ctr", "image": "busybox",
        "profile": "general", "reason": reason, "duration_minutes": 15,
    })
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def nginx_pod(deployment: Any) -> str:
    """The demo nginx pod's name, asked of the cluster through the portal's own kube seam."""
    said = deployment.manage("shell", "-v", "0", "-c", "from portal.kube import get_client; "
                             "print(next(p.name for p in get_client().list_pods('default') if p.name.startswith('distroless-nginx-')))")
    return str(said.splitlines()[-1])


def session_of(base: str, token: str, request_id: str, *, status: str = "running", timeout: float = 40) -> str:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = api(base, token, "GET", f"/api/v1/requests/{request_id}").json().get("session") or {}
        if seen.get("id") and seen.get("status") == status:
            return str(seen["id"])
        time.sleep(0.2)
    raise AssertionError(f"request {request_id}: no {status} session within {timeout}s (last seen {seen})")


@dataclass
class Socket:
    """One websocket to a portal: the terminal's or the watch's frames, or the queue's JSON."""

    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession
    out: bytearray = field(default_factory=bytearray)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.BINARY and msg.data:
                kind, payload = msg.data[0], msg.data[1:]
                if kind == protocol.OUTPUT:
                    self.out += payload
                    await self.ws.send_bytes(protocol.ack(len(payload)))  # read: flow control may send more
                elif kind == protocol.STATUS:
                    self.statuses.append(json.loads(payload))
            elif msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
        self.close_code = self.ws.close_code

    async def until(self, check: Any, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; output tail {bytes(self.out[-400:])!r}, statuses {self.statuses[-3:]}, "
                                     f"messages {self.messages[-3:]}, close {self.close_code}")
            await asyncio.sleep(0.05)

    async def connected(self) -> None:
        await self.until(lambda: any(s.get("event") == "connected" for s in self.statuses))

    async def type(self, text: str) -> None:
        await self.ws.send_bytes(protocol.input_(text.encode()))

    async def run(self, command: str, marker: str, timeout: float = 20) -> bytes:
        """Run a shell command; the output between two markers the shell builds (not the echo)."""
        start = len(self.out)
        await self.type(f"echo '{marker}''-start'; {command}; echo '{marker}''-end'\r")
        await self.until(lambda: f"{marker}-end".encode() in self.out[start:], timeout)
        chunk = bytes(self.out[start:])
        begin = chunk.index(f"{marker}-start".encode()) + len(marker) + 6
        return chunk[begin:chunk.index(f"{marker}-end".encode())].strip()

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 10)
        await self.http.close()


async def connect(base: str, path: str, token: str) -> Socket:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(base.replace("http://", "ws://") + path, headers={"Authorization": f"Bearer {token}"},
                               max_msg_size=0, heartbeat=None)
    sock = Socket(ws=ws, http=http)
    sock.reader = asyncio.create_task(sock._read())
    return sock
