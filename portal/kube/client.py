"""A small, typed, synchronous client for the few Kubernetes calls Ephemera makes.

Built on the official client (one ApiClient per process, from portal.kube.config) but
reading raw JSON, so what we compare and store is what the apiserver sent. Every method is
blocking: async callers wrap it in `sync_to_async(thread_sensitive=False)`.
Every failure surfaces as a portal.kube.errors.KubeError subclass.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from portal.kube.config import load_connection
from portal.kube.errors import KubeError, KubeInvalid, KubeNotFound, KubeTimeout, KubeUnavailable, from_exception
from portal.kube.specs import ephemeral_patch
from portal.kube.useragent import BASE as USER_AGENT
from portal.kube.useragent import current as current_user_agent

logger = logging.getLogger(__name__)

# Seconds for one ordinary API call (connect, read); watches get their own.
CALL_TIMEOUT = (5, 20)
# The readiness probe's call: a cluster that can't answer /readyz in 2 s is not ready for us.
READYZ_TIMEOUT = (1, 2)
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    image: str
    ready: bool


@dataclass(frozen=True)
class PodInfo:
    name: str
    namespace: str
    phase: str
    containers: list[ContainerInfo]
    all_container_names: list[str] = field(default_factory=list)  # incl. init and ephemeral
    ephemeral_container_names: list[str] = field(default_factory=list)
    uid: str = ""

    @property
    def container_names(self) -> list[str]:
        return [c.name for c in self.containers]


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ready: bool


@dataclass(frozen=True)
class ContainerState:
    """The state of one (ephemeral) container, as reported in the pod status."""

    state: str  # "waiting" | "running" | "terminated" | "unknown" (no status yet)
    reason: str = ""
    message: str = ""
    exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.state in ("running", "terminated")

    def describe(self) -> str:
        if self.state == "unknown":
            return "waiting for the kubelet to report the container"
        text = self.state
        if self.reason:
            text = f"{text}: {self.reason}"
        if self.message:
            text = f"{text}: {self.message}"
        return text


def pod_info(raw: dict[str, Any]) -> PodInfo:
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    ready = {s.get("name"): bool(s.get("ready")) for s in status.get("containerStatuses") or []}
    containers = [
        ContainerInfo(name=c.get("name", ""), image=c.get("image", ""), ready=ready.get(c.get("name"), False))
        for c in spec.get("containers") or []
    ]
    names = [c.get("name", "") for key in ("containers", "initContainers", "ephemeralContainers") for c in spec.get(key) or []]
    ephemeral = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    return PodInfo(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=status.get("phase", ""),
        containers=containers,
        all_container_names=names,
        ephemeral_container_names=ephemeral,
        uid=meta.get("uid", ""),
    )


def ephemeral_state(raw_pod: dict[str, Any], container: str) -> ContainerState:
    """The state of an ephemeral container, or of an ordinary one (a node-debugger pod's
    `debugger`): names are unique across both lists, so looking in both is unambiguous."""
    status = raw_pod.get("status") or {}
    for st in [*(status.get("ephemeralContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if st.get("name") != container:
            continue
        state = st.get("state") or {}
        if "running" in state:
            return ContainerState("running")
        if "terminated" in state:
            t = state["terminated"] or {}
            return ContainerState("terminated", t.get("reason", ""), t.get("message", ""), t.get("exitCode"))
        if "waiting" in state:
            w = state["waiting"] or {}
            return ContainerState("waiting", w.get("reason", ""), w.get("message", ""))
    return ContainerState("unknown")


class KubeClient:
    """The portal's calls to the apiserver. One instance per process (see `get_client`)."""

    def __init__(self, configuration: k8s_client.Configuration) -> None:
        self._api_client = k8s_client.ApiClient(configuration)
        # No default User-Agent: the official client lets its default headers override a call's
        # own, and each call names whom it is for (useragent.py, set in _json and the watch).
        self._api_client.default_headers.pop("User-Agent", None)
        self.core = k8s_client.CoreV1Api(self._api_client)

    def close(self) -> None:
        self._api_client.close()

    # --- plumbing ------------------------------------------------------------------
    def _json(self, doing: str, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("_request_timeout", CALL_TIMEOUT)
        kwargs.setdefault("_headers", {"User-Agent": current_user_agent()})  # whom it is for (useragent.py)
        try:
            resp = method(*args, _preload_content=False, **kwargs)
            data = resp.data
        except Exception as exc:
            raise from_exception(exc, doing=doing) from exc
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise KubeUnavailable(f"the cluster sent a response that isn't JSON while {doing}") from exc
        if not isinstance(parsed, dict):
            raise KubeUnavailable(f"the cluster sent an unexpected response while {doing}")
        return parsed

    # --- health --------------------------------------------------------------------
    def readyz(self) -> None:
        """The apiserver's own `/readyz` (a nonResourceURL every identity may read, through the
        default `system:public-info-viewer` role: no RBAC of ours). Returns when it says ok;
        raises KubeError otherwise, within READYZ_TIMEOUT: a probe must not wait like a call."""
        doing = "asking the cluster whether it is ready"
        try:
            method, url, headers, _body, _post = self._api_client.param_serialize(
                "GET", "/readyz", header_params={"Accept": "text/plain", "User-Agent": USER_AGENT}, auth_settings=["BearerToken"]
            )
            resp = self._api_client.call_api(method, url, header_params=headers, _request_timeout=READYZ_TIMEOUT)
            status, text = resp.status, (resp.read() or b"")[:200]
        except Exception as exc:
            raise from_exception(exc, doing=doing) from exc
        if status != 200:
            detail = text.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise KubeUnavailable(f"the cluster answered {status} while {doing} ({detail[0][:120]})", status=status)

    # --- reads ---------------------------------------------------------------------
    def list_namespaces(self) -> list[str]:
        raw = self._json("listing namespaces", self.core.list_namespace)
        return sorted(item["metadata"]["name"] for item in raw.get("items") or [])

    def list_pods(self, namespace: str) -> list[PodInfo]:
        raw = self._json(f"listing pods in {namespace}", self.core.list_namespaced_pod, namespace)
        return sorted((pod_info(item) for item in raw.get("items") or []), key=lambda p: p.name)

    def get_pod_raw(self, namespace: str, pod: str) -> dict[str, Any]:
        try:
            return self._json(f"reading pod {namespace}/{pod}", self.core.read_namespaced_pod, pod, namespace)
        except KubeNotFound as exc:
            raise KubeNotFound(f"pod {namespace}/{pod} does not exist", status=404) from exc

    def get_pod(self, namespace: str, pod: str) -> PodInfo:
        return pod_info(self.get_pod_raw(namespace, pod))

    def list_nodes(self) -> list[NodeInfo]:
        raw = self._json("listing nodes", self.core.list_node)
        nodes = []
        for item in raw.get("items") or []:
            conditions = (item.get("status") or {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            nodes.append(NodeInfo(name=item["metadata"]["name"], ready=ready))
        return sorted(nodes, key=lambda n: n.name)

    def list_pods_raw(self, namespace: str | None = None, *, label_selector: str = "") -> list[dict[str, Any]]:
        """Pods as the apiserver sent them: one namespace, or all (namespace None)."""
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            raw = self._json("listing pods in all namespaces", self.core.list_pod_for_all_namespaces, **kwargs)
        else:
            raw = self._json(f"listing pods in {namespace}", self.core.list_namespaced_pod, namespace, **kwargs)
        return list(raw.get("items") or [])

    # --- node-debugger pods --------------------------------------------------------
    def create_pod(self, namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create the pod; with `dry_run` (dryRun=All) the apiserver runs every check, admission
        included, and answers the pod it would store, but stores and starts nothing."""
        name = (body.get("metadata") or {}).get("name", "")
        doing = f"creating pod {namespace}/{name}" + (" (dry run)" if dry_run else "")
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        return self._json(doing, self.core.create_namespaced_pod, namespace, body, **extra)

    def delete_pod(self, namespace: str, pod: str, *, uid: str = "") -> bool:
        """Delete now (no grace: a debug shell has nothing to flush); False if it was already gone.

        With `uid`, only that very pod (a precondition the apiserver checks): a pod someone made
        later under the same name is not ours to delete, and counts as ours being gone.
        """
        options: dict[str, Any] = {"gracePeriodSeconds": 0}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self._json(f"deleting pod {namespace}/{pod}", self.core.delete_namespaced_pod, pod, namespace, body=options)
        except KubeNotFound:
            return False
        except KubeInvalid as exc:
            if uid and exc.status == 409:  # "Precondition failed: UID in precondition ..."
                return False
            raise
        return True

    # --- ephemeral containers ------------------------------------------------------
    def add_ephemeral_container(
        self,
        namespace: str,
        pod: str,
        container: dict[str, Any],
        existing_ephemeral: list[str] | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PATCH pods/ephemeralcontainers with only the new container, as kubectl does.

        `existing_ephemeral`: the pod's ephemeral container names as read before (kubectl's
        patch lists them in `$setElementOrder`). `dry_run` (dryRun=All): the same patch, judged
        by validation and admission, answered as the pod would be; nothing is added or started.
        """
        doing = f"adding debug container {container.get('name')} to pod {namespace}/{pod}" + (" (dry run)" if dry_run else "")
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        try:
            return self._json(
                doing,
                self.core.patch_namespaced_pod_ephemeralcontainers,
                pod,
                namespace,
                ephemeral_patch(container, existing_ephemeral or []),
                _content_type=STRATEGIC_MERGE,
                **extra,
            )
        except KubeNotFound as exc:
            raise KubeNotFound(f"pod {namespace}/{pod} no longer exists", status=404) from exc

    def watch_ephemeral_container(self, namespace: str, pod: str, container: str, *, timeout: float) -> Iterator[ContainerState]:
        """Yield the container's state each time it changes, until it runs or terminates.

        Lists then watches the one pod (fieldSelector metadata.name=POD) like kubectl does.
        Raises KubeNotFound if the pod goes away, KubeTimeout after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        selector = f"metadata.name={pod}"
        last: ContainerState | None = None
        resource_version = ""
        while True:
            if not resource_version:
                listing = self._json(
                    f"listing pod {namespace}/{pod}", self.core.list_namespaced_pod, namespace, field_selector=selector
                )
                items = listing.get("items") or []
                if not items:
                    raise KubeNotFound(f"pod {namespace}/{pod} no longer exists", status=404)
                resource_version = (listing.get("metadata") or {}).get("resourceVersion", "")
                state = ephemeral_state(items[0], container)
                if state != last:
                    last = state
                    yield state
                if state.done:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KubeTimeout(
                    f"the debug container did not start within {int(timeout)} seconds (last state: {(last or ContainerState('unknown')).describe()})"
                )
            try:
                resp = self.core.list_namespaced_pod(
                    namespace,
                    field_selector=selector,
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=False,
                    timeout_seconds=max(1, int(remaining)),
                    _preload_content=False,
                    _request_timeout=(5, remaining + 5),
                    _headers={"User-Agent": current_user_agent()},
                )
                lines = iter_resp_lines(resp)
                for line in lines:
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        resource_version = ""  # e.g. 410 Gone: relist
                        break
                    if kind == "DELETED":
                        raise KubeNotFound(f"pod {namespace}/{pod} no longer exists", status=404)
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                    state = ephemeral_state(obj, container)
                    if state != last:
                        last = state
                        yield state
                    if state.done:
                        resp.release_conn()  # type: ignore[attr-defined]  # _preload_content=False: a urllib3 response
                        return
                    if time.monotonic() >= deadline:
                        break
                resp.release_conn()  # type: ignore[attr-defined]  # _preload_content=False: a urllib3 response
            except KubeError:
                raise
            except ApiException as exc:
                raise from_exception(exc, doing=f"watching pod {namespace}/{pod}") from exc
            except Exception as exc:
                # A dropped watch isn't fatal: relist and carry on until the deadline.
                logger.info("watch on pod %s/%s interrupted (%s); relisting", namespace, pod, type(exc).__name__)
                resource_version = ""
                if time.monotonic() >= deadline:
                    continue
                time.sleep(0.2)

    def ephemeral_container_state(self, namespace: str, pod: str, container: str) -> ContainerState:
        return ephemeral_state(self.get_pod_raw(namespace, pod), container)

    def exec_command(
        self, namespace: str, pod: str, container: str, command: list[str], *, timeout: float = 30
    ) -> tuple[int, str]:
        """Run `command` in the container (no stdin, no tty); return (exit code, stdout+stderr).

        The exit code comes from the status channel; -1 means the stream ended without one.
        Bounded by `timeout` from the first byte of the handshake (the official client's
        stream() connects without any timeout, so a hung kubelet held the caller for good).
        Blocking: call it from a thread without a running event loop.
        """
        from portal.kube.attach import AttachError, run_command

        where = f"{namespace}/{pod}:{container}"
        try:
            code, output = asyncio.run(
                run_command(load_connection(), namespace=namespace, pod=pod, container=container, command=command,
                            timeout=timeout)
            )
        except TimeoutError:
            raise KubeTimeout(f"the command in {where} did not finish within {int(timeout)} seconds") from None
        except AttachError as exc:
            if exc.status == 404:
                raise KubeNotFound(f"running a command in {where}: {exc.message}") from None
            raise KubeUnavailable(f"running a command in {where}: {exc.message}") from None
        return code, output.decode("utf-8", "replace")


_client_lock = threading.Lock()
_client: KubeClient | None = None


def get_client() -> KubeClient:
    """The process-wide client (call `reset_client()` after portal.kube.config.reset())."""
    global _client
    with _client_lock:
        if _client is None:
            _client = KubeClient(load_connection().api_client_config)
        return _client


def reset_client() -> None:
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None
