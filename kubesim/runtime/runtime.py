"""The Runtime facade the API server calls: pods, ephemeral containers, attach/exec, logs, faults."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from .cgroups import CgroupRoot
from .container import Container, ContainerKey, ExecError, StatusCallback, Timing
from .isolation import Sandbox
from .process import Process
from .streams import CLOSE, RESIZE, STDIN, ChannelStream, exit_code_status, internal_error_status, parse_resize, success_status

log = logging.getLogger(__name__)

PodKey = tuple[str, str]


class DetachKeys:
    """Ctrl-P Ctrl-Q on an attached terminal detaches (the runtime's detach keys, as with docker
    attach): a lone Ctrl-P is held back until the next key says whether it was one."""

    SEQUENCE = b"\x10\x11"

    def __init__(self) -> None:
        self._held = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if self._held:
            data, self._held = b"\x10" + data, False
        at = data.find(self.SEQUENCE)
        if at >= 0:
            return data[:at], True
        if data.endswith(b"\x10"):
            self._held = True
            return data[:-1], False
        return data, False


class _Pod:
    def __init__(self) -> None:
        self.containers: dict[str, Container] = {}
        self.init_task: asyncio.Task[None] | None = None
        self.stopping = False


class Runtime:
    """Runs "containers" as local processes and serves their attach/exec websockets.

    Must be constructed and used on one running asyncio loop (the aiohttp server's).
    """

    def __init__(
        self, on_status: StatusCallback, pull_delay: float = 0.0, *, backoff: float = 10.0, max_backoff: float = 300.0
    ) -> None:
        self._on_status = on_status
        self._timing = Timing(pull_delay=pull_delay, backoff=backoff, max_backoff=max_backoff)
        self._pods: dict[PodKey, _Pod] = {}
        self._streams: dict[ChannelStream, ContainerKey] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        # One cgroup per container, so a container's processes live and die together (None
        # where the kernel won't let us: then they are tracked by session, see cgroups.py).
        self.cgroups: CgroupRoot | None = CgroupRoot.create()
        # Namespaces, root filesystems and capabilities per container (None: plain processes).
        self.sandbox: Sandbox | None = Sandbox.create(self.cgroups)

    def _container(self, pod: dict[str, Any], spec: dict[str, Any], kind: str) -> Container:
        ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
        return Container(pod, spec, kind, self._timing, self._on_status, self.cgroups, self.sandbox,
                         lambda container: self._main_pid((ns, name, container)))

    def _main_pid(self, key: ContainerKey) -> int | None:
        c = self._find(key)
        return c.main_pid if c is not None and c.is_running else None

    # --- pods ------------------------------------------------------------------------------------

    async def start_pod(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        pod_key: PodKey = (meta.get("namespace", "default"), meta["name"])
        entry = self._pods.setdefault(pod_key, _Pod())
        if any(c.kind != "ephemeralContainer" for c in entry.containers.values()):
            return  # already started: a second start must not orphan the first set of processes
        inits = [self._container(pod, c, "initContainer") for c in spec.get("initContainers") or []]
        regular = [self._container(pod, c, "container") for c in spec.get("containers") or []]
        for c in inits + regular:
            entry.containers[c.name] = c
        for c in inits:
            c.set_waiting("PodInitializing")
        for c in regular:
            c.set_waiting("PodInitializing" if inits else "ContainerCreating")
        if inits:
            entry.init_task = asyncio.ensure_future(self._init_then_start(entry, inits, regular))
        else:
            for c in regular:
                c.start()

    async def _init_then_start(self, entry: _Pod, inits: list[Container], regular: list[Container]) -> None:
        # Init containers run one at a time, each to success, before any regular container.
        for c in inits:
            if await c.start() != 0 or entry.stopping:
                return
        for c in regular:
            c.start()

    async def start_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        meta = pod["metadata"]
        entry = self._pods.setdefault((meta.get("namespace", "default"), meta["name"]), _Pod())
        if container["name"] in entry.containers:
            return  # ephemeral containers are never restarted or replaced
        c = self._container(pod, container, "ephemeralContainer")
        entry.containers[c.name] = c
        c.start()

    async def settle(self, timeout: float = 15.0) -> None:
        """Return once every container started so far has been set up (running, or failed to start):
        a sandbox takes a moment, and a freshly seeded cluster should look like one that has been up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not any(c.state.get("waiting", {}).get("reason") == "ContainerCreating"
                       for e in self._pods.values() for c in e.containers.values()):
                return
            await asyncio.sleep(0.02)

    async def stop_pod(self, namespace: str, name: str, grace_seconds: float = 1.0) -> None:
        entry = self._pods.pop((namespace, name), None)
        if entry is None:
            return
        entry.stopping = True
        await asyncio.gather(*(c.stop(grace_seconds) for c in entry.containers.values()), return_exceptions=True)
        if entry.init_task is not None:
            await asyncio.gather(entry.init_task, return_exceptions=True)
        if self.sandbox is not None:
            await self.sandbox.stop_pod(namespace, name)

    def is_running(self, key: ContainerKey) -> bool:
        c = self._find(key)
        return c is not None and c.is_running

    def logs(self, key: ContainerKey) -> bytes:
        c = self._find(key)
        return c.logs.getvalue() if c is not None else b""

    def log_bytes_written(self, key: ContainerKey) -> int:
        """Total bytes ever logged: a monotonic offset for `logs -f` once the ring buffer is full."""
        c = self._find(key)
        return c.logs.total if c is not None else 0

    def processes(self, key: ContainerKey) -> list[Process]:
        """Main process and execs of a container (for tests and diagnostics)."""
        c = self._find(key)
        if c is None:
            return []
        return [p for p in (c.process, *c.execs) if p is not None]

    def main_pid(self, key: ContainerKey) -> int | None:
        """The container's own first process, as this machine sees it (inside its sandbox: not the
        wrapper that processes() reports), or None when it isn't running."""
        return self._main_pid(key)

    def _find(self, key: ContainerKey) -> Container | None:
        entry = self._pods.get((key[0], key[1]))
        return entry.containers.get(key[2]) if entry is not None else None

    # --- streams ---------------------------------------------------------------------------------

    async def handle_attach(
        self, request: web.Request, key: ContainerKey, *, stdin: bool, stdout: bool, stderr: bool, tty: bool
    ) -> web.WebSocketResponse:
        container = self._find(key)
        stream = ChannelStream(request, stdout=stdout, stderr=stderr and not tty)
        await stream.open()
        proc = container.process if container is not None else None
        if container is None or proc is None or proc.finished.is_set():
            await stream.close()
            return stream.ws
        wants_stdin = stdin and proc.has_stdin
        self._streams[stream] = key
        proc.add_sink(stream.sink)
        watcher = asyncio.ensure_future(self._close_when_finished(proc, stream, None))
        keys = DetachKeys() if tty and wants_stdin else None
        detached = False
        stdin_closed = False
        try:
            async for channel, payload in stream.inputs():
                if channel == STDIN and wants_stdin:
                    if keys is not None:
                        payload, detached = keys.feed(payload)
                    if payload:
                        await proc.write_stdin(payload)
                    if detached:
                        break
                elif channel == RESIZE:
                    self._resize(proc, payload)
                elif channel == CLOSE and payload[:1] == b"\x00" and wants_stdin:
                    if container.stdin_once:
                        await proc.close_stdin()
                    else:
                        # Without stdinOnce containerd keeps the container's stdin open for the next
                        # attacher: this attach is over, the container goes on (once the output of
                        # what was typed last has come: see below).
                        detached = stdin_closed = True
                        break
        finally:
            proc.remove_sink(stream.sink)
            watcher.cancel()
            self._streams.pop(stream, None)
            if wants_stdin and container.stdin_once:
                await proc.close_stdin()
        if detached:
            if stdin_closed:
                await self._until_quiet(proc, stream)
            # The attach ends well (kubectl prints "Session ended, resume using ...").
            await stream.send_status(success_status())
            await stream.close()
        return stream.ws

    @staticmethod
    async def _until_quiet(proc: Process, stream: ChannelStream, quiet: float = 0.3, longest: float = 5.0) -> None:
        """After stdin closed: go on sending output until it has been quiet for `quiet` seconds (or the
        process ended), so the answer to the last piped line isn't cut off."""
        loop = asyncio.get_running_loop()
        proc.add_sink(stream.sink)
        try:
            closed_at = loop.time()
            deadline = closed_at + longest
            while (not proc.finished.is_set() and loop.time() < deadline
                   and loop.time() - max(proc.last_output, closed_at) < quiet):
                await asyncio.sleep(0.05)
        finally:
            proc.remove_sink(stream.sink)

    async def handle_not_running(self, request: web.Request, message: str) -> web.WebSocketResponse:
        """Attach/exec to a container with no running process, over the websocket protocol: the
        upgrade succeeds, then the error is a Status on the status channel (as the kubelet answers)."""
        stream = ChannelStream(request, stdout=True, stderr=False)
        await stream.open()
        await stream.send_status(internal_error_status(message))
        await stream.close()
        return stream.ws

    async def handle_exec(
        self, request: web.Request, key: ContainerKey, command: list[str], *, stdin: bool, stdout: bool, stderr: bool, tty: bool
    ) -> web.WebSocketResponse:
        container = self._find(key)
        stream = ChannelStream(request, stdout=stdout, stderr=stderr and not tty)
        await stream.open()
        if container is None:
            await stream.send_status(internal_error_status(f"container {key[2]} not found"))
            await stream.close()
            return stream.ws
        try:
            proc = await container.exec(command, tty=tty, stdin=stdin)
        except ExecError as e:
            await stream.send_status(internal_error_status(str(e)))
            await stream.close()
            return stream.ws
        self._streams[stream] = key
        proc.add_sink(stream.sink)
        proc.open_output()  # a sandboxed exec held its output until now
        watcher = asyncio.ensure_future(self._close_when_finished(proc, stream, command))
        try:
            async for channel, payload in stream.inputs():
                if channel == STDIN and stdin:
                    await proc.write_stdin(payload)
                elif channel == RESIZE:
                    self._resize(proc, payload)
                elif channel == CLOSE and payload[:1] == b"\x00":
                    await proc.close_stdin()
        finally:
            proc.remove_sink(stream.sink)
            self._streams.pop(stream, None)
            if not proc.finished.is_set():
                # The client went away: like a hung-up terminal, the exec'd command goes too.
                watcher.cancel()
                self._reap_later(container, proc)
            else:
                await asyncio.gather(watcher, return_exceptions=True)
                container.execs.discard(proc)
        return stream.ws

    async def _close_when_finished(self, proc: Process, stream: ChannelStream, command: list[str] | None) -> None:
        await proc.finished.wait()  # all output has been sent by now
        if command is not None:  # exec reports how it ended; attach never does
            code = proc.exit_code or 0
            await stream.send_status(success_status() if code == 0 else exit_code_status(command, code))
        await stream.close()

    def _reap_later(self, container: Container, proc: Process) -> None:
        async def reap() -> None:
            try:
                await proc.terminate(0.5)
            finally:
                container.execs.discard(proc)

        task = asyncio.ensure_future(reap())
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    @staticmethod
    def _resize(proc: Process, payload: bytes) -> None:
        size = parse_resize(payload)
        if size is not None:
            proc.resize(*size)

    def cut_streams(self, namespace: str | None = None, pod: str | None = None, container: str | None = None) -> int:
        cut = 0
        for stream, (ns, p, c) in list(self._streams.items()):
            if (namespace in (None, ns)) and (pod in (None, p)) and (container in (None, c)):
                stream.abort()
                cut += 1
        return cut

    async def shutdown(self) -> None:
        entries = list(self._pods.items())
        await asyncio.gather(*(self.stop_pod(ns, name, 0.5) for (ns, name), _ in entries), return_exceptions=True)
        if self._reapers:
            await asyncio.gather(*list(self._reapers), return_exceptions=True)
        for stream in list(self._streams):
            stream.abort()
        self._streams.clear()
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.cgroups is not None:
            self.cgroups.close()
