"""pods/attach, pods/exec and pods/log: checks done by the apiserver, then the runtime takes over."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from kubesim.cluster import Cluster
from kubesim.errors import bad_request, method_not_allowed
from kubesim.routing import RequestInfo

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    return value is not None and value.lower() in ("1", "true")


def _names(containers: list[dict[str, Any]]) -> str:
    return " ".join(c["name"] for c in containers)


def resolve_container(pod: dict[str, Any], requested: str) -> str:
    """The container a stream is for; the same rules and messages as the apiserver's streamLocation."""
    spec = pod["spec"]
    name = pod["metadata"]["name"]
    containers = spec.get("containers") or []
    if not requested:
        annotated = (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
        if annotated and any(c["name"] == annotated for c in containers):
            return annotated
        if len(containers) == 1:
            return containers[0]["name"]
        if not containers:
            raise bad_request(f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{_names(containers)}]"
        inits = spec.get("initContainers") or []
        if inits:
            message += f" or one of the init containers: [{_names(inits)}]"
        raise bad_request(message)
    every = [*(spec.get("containers") or []), *(spec.get("initContainers") or []), *(spec.get("ephemeralContainers") or [])]
    if not any(c["name"] == requested for c in every):
        raise bad_request(f"container {requested} is not valid for pod {name}")
    return requested


async def attach_or_exec(request: web.Request, info: RequestInfo, cluster: Cluster) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise method_not_allowed()
    pod = cluster.store.get("pods", info.namespace, info.name)
    container = resolve_container(pod, request.query.get("container", ""))
    key = (info.namespace, info.name, container)
    runtime = cluster.runtime
    stdin, stdout, stderr, tty = (_flag(request, n) for n in ("stdin", "stdout", "stderr", "tty"))
    command = request.query.getall("command", [])
    if info.subresource == "exec" and not command:
        raise bad_request("you must specify at least 1 command")
    if not (stdin or stdout or stderr):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if runtime is None or not runtime.is_running(key):
        # What the kubelet answers when the container has no running process: over a websocket,
        # after the upgrade, as a Status on the status channel; otherwise a plain 400
        # (kubectl prefixes that one with "unable to upgrade connection: ").
        message = f'container not found ("{container}")'
        if upgrade and runtime is not None and hasattr(runtime, "handle_not_running"):
            return await runtime.handle_not_running(request, message)  # type: ignore[no-any-return]
        raise bad_request(message)
    if not upgrade:
        # SPDY (kubectl's fallback) is not simulated.
        raise bad_request("Upgrade request required")
    if info.subresource == "attach":
        return await runtime.handle_attach(request, key, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)  # type: ignore[attr-defined]
    return await runtime.handle_exec(request, key, command, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)  # type: ignore[attr-defined]


async def logs(request: web.Request, info: RequestInfo, cluster: Cluster) -> web.StreamResponse:
    if request.method != "GET":
        raise method_not_allowed()
    pod = cluster.store.get("pods", info.namespace, info.name)
    container = resolve_container(pod, request.query.get("container", ""))
    key = (info.namespace, info.name, container)
    statuses = [
        *(pod.get("status", {}).get("containerStatuses") or []),
        *(pod.get("status", {}).get("initContainerStatuses") or []),
        *(pod.get("status", {}).get("ephemeralContainerStatuses") or []),
    ]
    cstatus = next((s for s in statuses if s.get("name") == container), None)
    waiting = (cstatus or {}).get("state", {}).get("waiting")
    if cstatus is None or (waiting and not cstatus.get("restartCount") and not cstatus.get("lastState")):
        reason = (waiting or {}).get("reason", "ContainerCreating")
        raise bad_request(f'container "{container}" in pod "{info.name}" is waiting to start: {reason}')
    runtime = cluster.runtime
    data = runtime.logs(key) if runtime is not None else b""
    tail = request.query.get("tailLines")
    if tail is not None and tail.isdigit():
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-int(tail) :]) if int(tail) else b""
    if not _flag(request, "follow"):
        return web.Response(body=data, content_type="text/plain")
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(data)
    sent = len(runtime.logs(key)) if runtime is not None else 0
    # Poll the runtime's ring buffer; follow ends when the container's process ends.
    while runtime is not None:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        current = runtime.logs(key)
        if len(current) > sent:
            await resp.write(current[sent:])
            sent = len(current)
        elif len(current) < sent:  # ring buffer wrapped
            sent = len(current)
        if not runtime.is_running(key):
            break
        await asyncio.sleep(0.2)
    await resp.write_eof()
    return resp
