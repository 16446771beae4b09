"""Cluster behaviour on top of the store: the scheduler/kubelet side of pods, backed by the runtime."""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kubesim import podsecurity, podstatus
from kubesim.errors import ApiError, conflict, invalid, not_found
from kubesim.state import State
from kubesim.store import Store, now_rfc3339
from kubesim.validation import default_container, default_pod, validate_ephemeral_update, validate_pod_create

log = logging.getLogger("kubesim")

ContainerKey = tuple[str, str, str]
StatusCallback = Callable[[ContainerKey, str, dict[str, Any]], None]


class RuntimeLike(Protocol):
    """The subset of kubesim.runtime.Runtime the API server uses."""

    async def start_pod(self, pod: dict[str, Any]) -> None: ...
    async def start_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None: ...
    async def stop_pod(self, namespace: str, name: str, grace_seconds: float = 1.0) -> None: ...
    def is_running(self, key: ContainerKey) -> bool: ...
    def logs(self, key: ContainerKey) -> bytes: ...
    def cut_streams(self, namespace: str | None = None, pod: str | None = None, container: str | None = None) -> int: ...
    async def shutdown(self) -> None: ...


RuntimeFactory = Callable[[StatusCallback, float], RuntimeLike]

# kubectl delete waits for the object to vanish; never let a long terminationGracePeriodSeconds
# (30 by default) stall tests. The runtime's processes end on SIGTERM anyway.
MAX_GRACE_SECONDS = 3.0


def default_runtime_factory(on_status: StatusCallback, pull_delay: float) -> RuntimeLike:
    from kubesim.runtime import Runtime

    return Runtime(on_status=on_status, pull_delay=pull_delay)  # type: ignore[return-value]


def _suffix(n: int = 5) -> str:
    # Same alphabet as apimachinery's utilrand.String (no vowels, no confusable digits).
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Cluster:
    def __init__(self, store: Store, runtime_factory: RuntimeFactory | None = None, pull_delay: float = 0.0) -> None:
        self.store = store
        self._runtime_factory = runtime_factory or default_runtime_factory
        self._pull_delay = pull_delay
        self.runtime: RuntimeLike | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_ip: dict[str, int] = {}

    # lifecycle -------------------------------------------------------------
    async def start(self, state: State) -> None:
        self.runtime = self._runtime_factory(self.on_status, self._pull_delay)
        for ns in state.namespaces:
            ns = copy.deepcopy(ns)
            ns.setdefault("apiVersion", "v1")
            ns.setdefault("kind", "Namespace")
            ns.setdefault("spec", {"finalizers": ["kubernetes"]})
            ns.setdefault("status", {"phase": "Active"})
            ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
            self.store.create("namespaces", ns)
        for node in state.nodes:
            self.store.create("nodes", self._default_node(copy.deepcopy(node)))
        for pod in state.pods:
            pod = copy.deepcopy(pod)
            pod.setdefault("metadata", {}).setdefault("namespace", "default")
            await self.create_pod(pod["metadata"]["namespace"], pod)
        settle = getattr(self.runtime, "settle", None)
        if state.pods and settle is not None and not self._pull_delay:
            await asyncio.sleep(0)  # let the pods' start tasks begin
            await settle()

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.runtime is not None:
            await self.runtime.shutdown()

    def spawn(self, coro: Awaitable[Any], what: str) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kubesim: %s failed", what)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _default_node(node: dict[str, Any]) -> dict[str, Any]:
        node.setdefault("apiVersion", "v1")
        node.setdefault("kind", "Node")
        status = node.setdefault("status", {})
        # Every NodeSystemInfo field is required by the (pydantic) Python client models.
        name = node["metadata"]["name"]
        info = status.setdefault("nodeInfo", {})
        for key, value in {
            "machineID": f"kubesim-{name}",
            "systemUUID": f"kubesim-{name}",
            "bootID": f"kubesim-boot-{name}",
            "kernelVersion": "6.1.0-kubesim",
            "osImage": "Debian GNU/Linux",
            "containerRuntimeVersion": "kubesim://0.1",
            "kubeletVersion": "v1.37.1",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        }.items():
            info.setdefault(key, value)
        status.setdefault("capacity", {"cpu": "4", "memory": "8Gi", "pods": "110"})
        status.setdefault("allocatable", dict(status["capacity"]))
        now = now_rfc3339()
        if not status.get("conditions"):
            status["conditions"] = [
                {
                    "type": t,
                    "status": "False",
                    "reason": f"KubeletHas{r}",
                    "message": m,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for t, r, m in (
                    ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
                )
            ] + [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ]
        return node

    # pods ------------------------------------------------------------------
    def _require_namespace(self, namespace: str) -> None:
        if self.store.peek("namespaces", "", namespace) is None:
            raise not_found("namespaces", namespace)

    def _schedule(self, pod: dict[str, Any]) -> tuple[str, str]:
        nodes = self.store.list("nodes")
        spec = pod["spec"]
        if not spec.get("nodeName") and nodes:
            # A one-line scheduler: the node with the fewest pods.
            counts = {n["metadata"]["name"]: 0 for n in nodes}
            for p in self.store.list("pods"):
                if p["spec"].get("nodeName") in counts:
                    counts[p["spec"]["nodeName"]] += 1
            spec["nodeName"] = min(counts, key=lambda k: (counts[k], k))
        node_name = spec.get("nodeName", "")
        index = next((i for i, n in enumerate(nodes) if n["metadata"]["name"] == node_name), 0)
        node = self.store.peek("nodes", "", node_name)
        host_ip = next(
            (a["address"] for a in (node or {}).get("status", {}).get("addresses") or [] if a["type"] == "InternalIP"),
            f"192.168.56.{11 + index}",
        )
        if spec.get("hostNetwork"):
            return host_ip, host_ip
        n = self._next_ip.get(node_name, 10) + 1
        self._next_ip[node_name] = n
        return host_ip, f"10.244.{index}.{n}"

    async def create_pod(self, namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Validate, admit, default, schedule, store and start a pod.

        `dry_run` stops after admission and defaulting: the answer is the pod as the apiserver
        would store it, before the scheduler or a kubelet saw it (no node unless the body names
        one, status only Pending), and nothing is stored, scheduled, started or watched.
        """
        pod = copy.deepcopy(body)
        meta = pod.setdefault("metadata", {})
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(
                400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + _suffix()
        errors = validate_pod_create(pod)
        if errors:
            raise invalid("Pod", meta.get("name") or meta.get("generateName", ""), errors)
        self._require_namespace(namespace)
        podsecurity.check(self.store.peek("namespaces", "", namespace), pod)
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        default_pod(pod)
        if dry_run:
            # The pod strategy's PrepareForCreate status; scheduling and IPs come after the store.
            pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            return self.store.dry_create("pods", pod)
        host_ip, pod_ip = self._schedule(pod)
        pod["status"] = podstatus.initial_status(pod, host_ip, pod_ip)
        created = self.store.create("pods", pod)
        if self.runtime is not None:
            self.spawn(self.runtime.start_pod(copy.deepcopy(created)), f"start pod {namespace}/{meta['name']}")
        return created

    async def delete_pod(
        self, namespace: str, name: str, grace: int | None, preconditions: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        pod = self.store.get("pods", namespace, name)
        if preconditions.get("uid") and preconditions["uid"] != pod["metadata"]["uid"]:
            raise conflict(
                "pods",
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {pod['metadata']['uid']}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != pod["metadata"]["resourceVersion"]:
            raise conflict(
                "pods",
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: {pod['metadata']['resourceVersion']}",
            )
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        if dry_run:
            # A graceful delete answers the pod marked for deletion; a forced one, the pod as it was.
            if grace > 0 and not pod["metadata"].get("deletionTimestamp"):
                pod["metadata"]["deletionTimestamp"] = now_rfc3339()
                pod["metadata"]["deletionGracePeriodSeconds"] = grace
            return pod
        if grace <= 0:
            # Force delete: gone from the API at once, the kubelet cleans up afterwards.
            deleted = self.store.delete("pods", namespace, name)
            if self.runtime is not None:
                self.spawn(self.runtime.stop_pod(namespace, name, 0.0), f"stop pod {namespace}/{name}")
            return deleted
        if not pod["metadata"].get("deletionTimestamp"):
            pod["metadata"]["deletionTimestamp"] = now_rfc3339()
            pod["metadata"]["deletionGracePeriodSeconds"] = grace
            pod = self.store.update("pods", pod)
            self.spawn(self._finish_delete(namespace, name, float(grace)), f"delete pod {namespace}/{name}")
        return pod

    async def _finish_delete(self, namespace: str, name: str, grace: float) -> None:
        if self.runtime is not None:
            await self.runtime.stop_pod(namespace, name, min(grace, MAX_GRACE_SECONDS))
        if self.store.peek("pods", namespace, name) is not None:
            self.store.delete("pods", namespace, name)

    def on_status(self, key: ContainerKey, kind: str, status: dict[str, Any]) -> None:
        """Runtime callback (on the loop): fold a ContainerStatus into the pod and tell watchers."""
        namespace, name, _container = key
        live = self.store.peek("pods", namespace, name)
        if live is None:
            return
        pod = copy.deepcopy(live)
        before = copy.deepcopy(pod["status"])
        podstatus.merge_container_status(pod, kind, copy.deepcopy(status))
        if pod["status"] != before:
            self.store.update("pods", pod)

    async def update_ephemeral(
        self, namespace: str, name: str, candidate: dict[str, Any], check_rv: bool, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """pods/ephemeralcontainers: validation, then Pod Security admission, then store and start.

        `dry_run` answers the pod as it would be stored (under its stored resourceVersion, as the
        apiserver's dry-run update does) and starts nothing.
        """
        old = self.store.get("pods", namespace, name)
        meta = candidate.get("metadata") or {}
        if check_rv and meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(
                "pods", name, "the object has been modified; please apply your changes to the latest version and try again"
            )
        new_ecs = copy.deepcopy((candidate.get("spec") or {}).get("ephemeralContainers") or [])
        for ec in new_ecs:
            if isinstance(ec, dict):
                default_container(ec)
        # Like ephemeralContainersStrategy.PrepareForUpdate: only spec.ephemeralContainers changes.
        new = copy.deepcopy(old)
        new["spec"]["ephemeralContainers"] = new_ecs
        if not new_ecs:
            new["spec"].pop("ephemeralContainers")
        errors = validate_ephemeral_update(old, new)
        if errors:
            raise invalid("Pod", name, errors)
        # Admission runs after validation; it sees the whole pod, new ephemeral containers included.
        podsecurity.check(self.store.peek("namespaces", "", namespace), new)
        if new == old:
            return old
        if dry_run:
            return new
        updated = self.store.update("pods", new)
        old_names = {ec["name"] for ec in old["spec"].get("ephemeralContainers") or []}
        if self.runtime is not None:
            for ec in new_ecs:
                if ec["name"] not in old_names:
                    self.spawn(
                        self.runtime.start_ephemeral(copy.deepcopy(updated), copy.deepcopy(ec)),
                        f"start ephemeral {namespace}/{name}/{ec['name']}",
                    )
        return updated
