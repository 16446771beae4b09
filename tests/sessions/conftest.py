"""Fixtures for the terminal tests: kubesim as the cluster, personas, a running session,
and a small client for the terminal protocol driven through the routed ASGI app.

Names are prefixed `term_` so they never shadow the shared fixtures of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.db import OperationalError
from django.test import Client

from sessions.bridge import protocol

ORIGIN = b"http://localhost"
TARGET_CONTAINER = "distroless-nginx-ctr"


@pytest.fixture
def term_kube(kubesim_session_cluster: Any, settings: Any) -> Any:
    """Point the portal at kubesim (the real HTTPS apiserver and attach websockets)."""
    from portal.kube import config as kube_config
    from portal.kube import reset_client

    settings.EPHEMERA_KUBECONFIG = str(kubesim_session_cluster.kubeconfig)
    settings.EPHEMERA_KUBE_CONTEXT = ""
    kube_config.reset()
    reset_client()
    yield kubesim_session_cluster
    kube_config.reset()
    reset_client()


@pytest.fixture
def term_users(transactional_db: Any, settings: Any) -> SimpleNamespace:
    approvers, _ = Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)
    auditors, _ = Group.objects.get_or_create(name=settings.EPHEMERA_AUDITOR_GROUP)
    users = SimpleNamespace()
    for name in ("alice", "bob", "carol", "dave", "eve"):
        setattr(users, name, User.objects.create_user(name, f"{name}@example.com", f"{name}-demo-pass"))
    users.bob.groups.add(approvers)
    users.carol.groups.add(approvers)
    users.dave.groups.add(auditors)
    users.admin = User.objects.create_superuser("admin", "admin@example.com", "admin-demo-pass")
    return users


@pytest.fixture
def nonroot_image_allowed(use_policy: Any) -> None:
    """The default policy, plus the non-root shell image a `restricted` debug container needs."""
    from kubesim.testing import NONROOT_IMAGE

    use_policy(f'{{images: [busybox, "{NONROOT_IMAGE}"], rules: [{{name: default}}]}}')


def kubectl_command(image: str, seconds: int) -> list[str]:
    """The shell Ephemera runs in a debug container of `image`, as kubectl debug's `-- COMMAND`."""
    from portal.kube import specs

    command = specs.time_limited_command(image, seconds)
    return ["--", *command] if command else []


def nginx_pod() -> str:
    from portal.kube import get_client

    pods = [p for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-")]
    assert pods, "kubesim has no distroless-nginx pod in default"
    return pods[0].name


def create_running_session(users: SimpleNamespace, *, timeout: float = 60.0, **request: Any) -> Any:
    """The real path: alice requests, bob approves, the provisioner makes it run.

    `request` overrides the request's fields (profile, image, kind, pod, copy, ...)."""
    from approvals.services import request_approve, request_create

    fields: dict[str, Any] = {"namespace": "default", "container": TARGET_CONTAINER, "image": "busybox",
                              "profile": "general", "reason": "terminal test", "duration_minutes": 30, **request}
    if "pod" not in fields and fields.get("kind", "pod") != "node":
        fields["pod"] = nginx_pod()
    req = request_create(requester=users.alice, origin=None, **fields)
    request_approve(request_id=req.pk, approver=users.bob, origin=None)
    return wait_running(req, timeout=timeout)


def wait_running(req: Any, *, timeout: float = 60.0) -> Any:
    """The request's session once the provisioner has it running (AssertionError if it fails)."""
    from sessions.models import DebugSession

    deadline = time.monotonic() + timeout
    session = None
    while time.monotonic() < deadline:
        try:
            session = DebugSession.objects.get(request=req)
        except (OperationalError, DebugSession.DoesNotExist):  # the test SQLite locks tables while the provisioner writes
            time.sleep(0.05)
            continue
        if session.status == "running":
            return session
        assert session.status == "provisioning", f"provisioning failed: {session.failure_message}"
        time.sleep(0.2)
    raise AssertionError(f"session not running after {timeout}s: {session.progress if session else 'no session'}")


@pytest.fixture
def term_session(term_kube: Any, term_users: SimpleNamespace) -> Any:
    return create_running_session(term_users)


def session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def session_pids(session_id: str) -> list[int]:
    """Host processes of the session: kubesim runs containers as real processes here."""
    marker = f"EPHEMERA_SESSION={session_id}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


@dataclass
class Term:
    """A terminal-protocol client over the routed ASGI app (what frontend/src/terminal.ts does)."""

    comm: WebsocketCommunicator
    out: bytearray = field(default_factory=bytearray)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    auto_ack: bool = True
    received: int = 0

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        # Poll the queue: receive_output's own timeout cancels the application under test.
        deadline = time.monotonic() + timeout
        while self.comm.output_queue.empty():
            if self.comm.future.done():
                self.comm.future.result()  # the app crashed: raise its error
                raise AssertionError("the application ended without closing the websocket")
            if time.monotonic() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.005)
        msg = await self.comm.receive_output(1)
        if msg["type"] == "websocket.close":
            self.close_code = msg.get("code")
            return msg
        frame = msg.get("bytes") or b""
        if frame[:1] == bytes([protocol.OUTPUT]):
            self.out += frame[1:]
            self.received += len(frame) - 1
            if self.auto_ack:
                await self.comm.send_to(bytes_data=protocol.ack(len(frame) - 1))
        elif frame[:1] == bytes([protocol.STATUS]):
            self.statuses.append(json.loads(frame[1:]))
        return msg

    async def until(self, predicate: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.close_code is not None:
                raise AssertionError(f"timed out; close={self.close_code} statuses={self.statuses} tail={bytes(self.out[-400:])!r}")
            try:
                await self.next(timeout=left)
            except TimeoutError:
                continue

    async def expect_output(self, needle: bytes, timeout: float = 15.0, start: int = 0) -> None:
        await self.until(lambda: needle in self.out[start:], timeout)

    async def until_closed(self, timeout: float = 15.0) -> int:
        if self.close_code is None:
            await self.until(lambda: self.close_code is not None, timeout)
        return self.close_code  # type: ignore[return-value]

    async def type(self, text: str | bytes) -> None:
        await self.comm.send_to(bytes_data=protocol.input_(text.encode() if isinstance(text, str) else text))

    async def resize(self, cols: int, rows: int) -> None:
        await self.comm.send_to(bytes_data=protocol.resize(cols, rows))

    async def run(self, command: str, marker: str, timeout: float = 15.0) -> bytes:
        """Run a shell command and return the output between two markers (not the echo)."""
        start = len(self.out)
        # The markers are built by the shell (quoted halves), so the echoed line never matches.
        await self.type(f"echo '{marker}''-start'; {command}; echo '{marker}''-end'\r")
        await self.expect_output(f"{marker}-end".encode(), timeout, start)
        chunk = bytes(self.out[start:])
        begin = chunk.index(f"{marker}-start".encode()) + len(marker) + 6
        return chunk[begin : chunk.index(f"{marker}-end".encode())]

    async def close(self) -> None:
        await self.comm.disconnect()


async def open_term(
    session: Any,
    *,
    user: Any = None,
    token: str | None = None,
    origin: bytes | None = ORIGIN,
    path: str | None = None,
) -> tuple[Term, bool]:
    from portal.asgi import application

    # A browser always sends Host: the Origin check compares the Origin with it (scheme, host, port).
    headers: list[tuple[bytes, bytes]] = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    headers.append((b"user-agent", b"pytest-terminal"))
    comm = WebsocketCommunicator(application, path or f"/ws/sessions/{session.pk}/terminal", headers=headers)
    connected, _ = await comm.connect(timeout=10)
    return Term(comm), connected
