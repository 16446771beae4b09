"""A minimal aiohttp app around a Runtime, for tests and the benchmark (no API server needed).

Routes: GET /attach/{ns}/{pod}/{container}?stdin=&stdout=&stderr=&tty=
        GET /exec/{ns}/{pod}/{container}?command=a&command=b&stdin=&stdout=&stderr=&tty=
and, just enough of the Kubernetes API for a real `kubectl exec/attach --server=http://...`:
        GET /api/v1/namespaces/{ns}/pods/{pod}[/exec|/attach]   (pods started with Harness.start_pod)
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
from aiohttp import web

from .container import ContainerKey
from .runtime import Runtime
from .streams import V4, V5

Status = dict[str, Any]


def make_pod(name: str, containers: list[dict[str, Any]], namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"containers": containers, **spec},
    }


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes")


class Harness:
    def __init__(self, *, pull_delay: float = 0.0, backoff: float = 10.0) -> None:
        self.statuses: list[tuple[ContainerKey, str, Status]] = []
        self.status_changed = asyncio.Event()
        self._pull_delay = pull_delay
        self._backoff = backoff
        self.runtime: Runtime
        self.base_url = ""
        self.session: aiohttp.ClientSession
        self._runner: web.AppRunner | None = None
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}

    def _record(self, key: ContainerKey, kind: str, status: Status) -> None:
        self.statuses.append((key, kind, status))
        self.status_changed.set()

    async def __aenter__(self) -> Harness:
        self.runtime = Runtime(on_status=self._record, pull_delay=self._pull_delay, backoff=self._backoff)
        app = web.Application()
        app.router.add_get("/attach/{ns}/{pod}/{container}", self._attach)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self._exec)
        app.router.add_get("/api", self._discovery)
        app.router.add_get("/apis", self._discovery)
        app.router.add_get("/api/v1", self._discovery)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}", self._get_pod)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", self._kube_exec)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/attach", self._kube_attach)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await self.runtime.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _key(request: web.Request) -> ContainerKey:
        m = request.match_info
        return (m["ns"], m["pod"], m["container"])

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        return await self.runtime.handle_attach(
            request,
            self._key(request),
            stdin=_flag(request, "stdin"),
            stdout=_flag(request, "stdout", True),
            stderr=_flag(request, "stderr", True),
            tty=_flag(request, "tty"),
        )

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        return await self.runtime.handle_exec(
            request,
            self._key(request),
            request.query.getall("command", []),
            stdin=_flag(request, "stdin"),
            stdout=_flag(request, "stdout", True),
            stderr=_flag(request, "stderr", True),
            tty=_flag(request, "tty"),
        )

    async def start_pod(self, pod: dict[str, Any]) -> None:
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        await self.runtime.start_pod(pod)

    @staticmethod
    async def _discovery(request: web.Request) -> web.StreamResponse:
        # Legacy (unaggregated) discovery, the least kubectl needs before it will exec.
        if request.path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if request.path == "/apis":
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        resources = [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["get", "list"],
                "shortNames": ["po"],
            },
            {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions", "verbs": ["create", "get"]},
            {
                "name": "pods/attach",
                "singularName": "",
                "namespaced": True,
                "kind": "PodAttachOptions",
                "verbs": ["create", "get"],
            },
        ]
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})

    async def _get_pod(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = self.pods.get((ns, name))
        if pod is None:
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}, status=404
            )
        statuses = [self.last_status((ns, name, c["name"])) for c in pod["spec"]["containers"]]
        return web.json_response({**pod, "status": {"phase": "Running", "containerStatuses": [s for s in statuses if s]}})

    def _kube_key(self, request: web.Request) -> ContainerKey:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        container = request.query.get("container") or self.pods[(ns, name)]["spec"]["containers"][0]["name"]
        return (ns, name, container)

    async def _kube_exec(self, request: web.Request) -> web.StreamResponse:
        return await self.runtime.handle_exec(
            request,
            self._kube_key(request),
            request.query.getall("command", []),
            stdin=_flag(request, "stdin"),
            stdout=_flag(request, "stdout"),
            stderr=_flag(request, "stderr"),
            tty=_flag(request, "tty"),
        )

    async def _kube_attach(self, request: web.Request) -> web.StreamResponse:
        return await self.runtime.handle_attach(
            request,
            self._kube_key(request),
            stdin=_flag(request, "stdin"),
            stdout=_flag(request, "stdout"),
            stderr=_flag(request, "stderr"),
            tty=_flag(request, "tty"),
        )

    # --- helpers for tests -------------------------------------------------------------------------

    def last_status(self, key: ContainerKey) -> Status | None:
        for k, _, status in reversed(self.statuses):
            if k == key:
                return status
        return None

    async def wait_status(self, key: ContainerKey, predicate: Any, within: float = 10.0) -> Status:
        """Wait until a status for key satisfies predicate (checked against every status seen)."""
        seen = 0
        async with asyncio.timeout(within):
            while True:
                for k, _, status in self.statuses[seen:]:
                    if k == key and predicate(status):
                        return status
                seen = len(self.statuses)
                self.status_changed.clear()
                await self.status_changed.wait()

    async def wait_running(self, key: ContainerKey, within: float = 10.0) -> Status:
        return await self.wait_status(key, lambda s: "running" in s["state"], within)

    async def connect(
        self, path: str, key: ContainerKey, params: list[tuple[str, str]], protocols: tuple[str, ...] = (V5, V4)
    ) -> StreamClient:
        url = f"{self.base_url}/{path}/{key[0]}/{key[1]}/{key[2]}"
        ws = await self.session.ws_connect(url, params=params, protocols=protocols, compress=0, max_msg_size=0)
        return StreamClient(ws)

    async def attach(self, key: ContainerKey, *, stdin: bool = True, tty: bool = True, **kw: Any) -> StreamClient:
        params = [("stdin", str(stdin).lower()), ("stdout", "true"), ("stderr", str(not tty).lower()), ("tty", str(tty).lower())]
        return await self.connect("attach", key, params, **kw)

    async def exec(
        self, key: ContainerKey, command: list[str], *, stdin: bool = False, tty: bool = False, **kw: Any
    ) -> StreamClient:
        params = [("command", c) for c in command]
        params += [("stdin", str(stdin).lower()), ("stdout", "true"), ("stderr", str(not tty).lower()), ("tty", str(tty).lower())]
        return await self.connect("exec", key, params, **kw)


class StreamClient:
    """The client end of a channel stream, collecting what arrives per channel."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.protocol = ws.protocol
        self.out = bytearray()
        self.err = bytearray()
        self.status: Status | None = None
        self.raw_status = b""
        self.frames: list[bytes] = []  # raw stdout payloads, to check frame boundaries
        self.closed = False

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes((channel,)) + data)

    async def stdin(self, data: bytes | str) -> None:
        await self.send(0, data.encode() if isinstance(data, str) else data)

    async def resize(self, width: int, height: int) -> None:
        await self.send(4, json.dumps({"Width": width, "Height": height}).encode())

    async def close_stdin(self) -> None:
        await self.ws.send_bytes(bytes((255, 0)))

    async def read_one(self) -> bool:
        """Read one message; False once the stream has ended."""
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            self.closed = True
            return False
        return self._keep(msg.data)

    def _keep(self, data: bytes) -> bool:
        if len(data) <= 1:
            return True  # channel-open announcements
        channel, payload = data[0], data[1:]
        if channel == 1:
            self.out += payload
            self.frames.append(payload)
        elif channel == 2:
            self.err += payload
        elif channel == 3:
            self.raw_status = payload
            self.status = json.loads(payload)
        return True

    async def read_one_raw(self) -> bool:
        """Like read_one, but keeps the error channel as bytes (channel.k8s.io v1 sends plain text)."""
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            self.closed = True
            return False
        data: bytes = msg.data
        if len(data) > 1 and data[0] == 3:
            self.raw_status = data[1:]
            return True
        return self._keep(data)

    async def read_until(self, pattern: bytes | str, within: float = 10.0) -> bytes:
        """Read until stdout matches the regex pattern; returns stdout so far."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        async with asyncio.timeout(within):
            while not regex.search(self.out):
                if not await self.read_one():
                    raise EOFError(f"stream ended before {pattern!r}; got {bytes(self.out[-300:])!r}")
        return bytes(self.out)

    async def read_to_end(self, within: float = 10.0) -> StreamClient:
        async with asyncio.timeout(within):
            while await self.read_one():
                pass
        return self

    async def close(self) -> None:
        await self.ws.close()
