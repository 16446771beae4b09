"""The debug container object, built exactly as `kubectl debug` (v1.37) builds it.

Where the portal and kubectl are asked for the same thing they must send the same object
(see docs/kube-debug-wire.md section 1), so a cluster admin reading the apiserver audit log
sees nothing they wouldn't see from kubectl.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from approvals.choices import Profile

# kubectl's utilrand alphabet: no vowels (no accidental words), no confusable 0/1/3.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_PREFIX = "debugger-"
SESSION_ENV = "EPHEMERA_SESSION"

_RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}

# --profile -> securityContext of an ephemeral container (None: kubectl sets none).
_SECURITY_CONTEXTS: dict[str, dict[str, Any] | None] = {
    "legacy": None,
    Profile.GENERAL: {"capabilities": {"add": ["SYS_PTRACE"]}},
    Profile.BASELINE: None,
    Profile.RESTRICTED: _RESTRICTED,
    Profile.NETADMIN: {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
    Profile.SYSADMIN: {"privileged": True},
}


def random_container_name(existing_names: Iterable[str]) -> str:
    """`debugger-xxxxx`, re-drawn until it differs from every name already in the pod."""
    taken = set(existing_names)
    while True:
        name = NAME_PREFIX + "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))
        if name not in taken:
            return name


def pod_container_names(pod: dict[str, Any]) -> list[str]:
    """Every container, init container and ephemeral container name of a pod (raw JSON)."""
    spec = pod.get("spec") or {}
    names: list[str] = []
    for key in ("containers", "initContainers", "ephemeralContainers"):
        names.extend(c.get("name", "") for c in spec.get(key) or [])
    return names


def ephemeral_container(
    *,
    name: str,
    image: str,
    target_container: str,
    profile: str,
    session_id: str | None = None,
    tty: bool = True,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The container kubectl sends for
    `kubectl debug POD -i [-t] -c NAME --image=IMAGE --target=TARGET --profile=PROFILE [--env=EPHEMERA_SESSION=ID] [-- COMMAND...]`."""
    if profile not in _SECURITY_CONTEXTS:
        raise ValueError(f"unknown debug profile {profile!r}")
    container: dict[str, Any] = {"name": name, "image": image}
    if command:
        container["command"] = list(command)  # kubectl debug puts what follows `--` in command
    if session_id is not None:
        container["env"] = [{"name": SESSION_ENV, "value": str(session_id)}]
    container["resources"] = {}
    security = _SECURITY_CONTEXTS[profile]
    if security is not None:
        container["securityContext"] = _copy(security)
    container["stdin"] = True
    container["targetContainerName"] = target_container
    container["terminationMessagePolicy"] = "File"
    if tty:
        container["tty"] = True
    return container


# Images whose `timeout` applet (busybox) we can count on, and whose default command is `sh`.
_TIMEOUT_IMAGES = frozenset({"busybox", "alpine"})
# Slack between the portal's own time limit and the cluster-side backstop: the portal (or the
# reaper) ends the session first with a message; the backstop only matters if both are gone.
TIMEOUT_SLACK_SECONDS = 60


def _image_base(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def _has_busybox(image: str) -> bool:
    """busybox and alpine, and distroless' `debug` variants (busybox at /busybox, on PATH)."""
    if _image_base(image) in _TIMEOUT_IMAGES:
        return True
    name = image.split("@", 1)[0]
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    return name.startswith("gcr.io/distroless/") and tag.startswith("debug")


def time_limited_command(image: str, seconds: int) -> list[str] | None:
    """`timeout -s KILL SECONDS sh` for images known to have busybox's timeout, else None.

    The debug shell then dies on time even if the portal and the reaper are gone for good.
    """
    if not _has_busybox(image):
        return None
    return ["timeout", "-s", "KILL", str(int(seconds)), "sh"]


# --- node debugging (`kubectl debug node/NAME`) ----------------------------------------------

NODE_CONTAINER = "debugger"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "ephemera"
KUBECTL_MANAGED_BY = "kubectl-debug"  # kubectl's own label on the node-debugger pods it makes
SESSION_LABEL = "ephemera.dev/session"
# Which Ephemera installation made the pod (EPHEMERA_INSTANCE): two portals on one cluster
# (staging and production, say) must not reap each other's node-debugger pods.
INSTANCE_LABEL = "ephemera.dev/instance"
# profile -> (host namespaces, /host mount), as kubectl 1.37's profiles apply them to a node pod.
_NODE_HOST_ACCESS: dict[str, tuple[bool, bool]] = {
    "legacy": (True, True),
    Profile.GENERAL: (True, True),
    Profile.BASELINE: (False, False),
    Profile.RESTRICTED: (False, False),
    Profile.NETADMIN: (True, False),
    Profile.SYSADMIN: (True, True),
}
# On a node pod `general` adds no capability (unlike on an ephemeral container).
_NODE_SECURITY_CONTEXTS: dict[str, dict[str, Any] | None] = {**_SECURITY_CONTEXTS, Profile.GENERAL: None}

# What each profile gives on a node, for the request form and the session page.
NODE_PROFILE_HELP: dict[str, str] = {
    Profile.GENERAL: "host network, PID and IPC namespaces and the node's filesystem at /host, unprivileged: `chroot /host` needs sysadmin",
    Profile.BASELINE: "an ordinary pod on that node: no host namespaces, no /host",
    Profile.RESTRICTED: "an ordinary, locked-down pod on that node (non-root, no capabilities)",
    Profile.NETADMIN: "host network, PID and IPC namespaces with NET_ADMIN and NET_RAW; no /host",
    Profile.SYSADMIN: "privileged, host namespaces and the node's filesystem at /host: `chroot /host` gives a root shell on the node",
}


def node_pod_name(node: str) -> str:
    """kubectl's `node-debugger-NODE-xxxxx`."""
    return f"node-debugger-{node}-" + "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))


def node_debugger_pod(
    *,
    name: str,
    node: str,
    image: str,
    profile: str,
    session_id: str | None = None,
    command: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The pod kubectl creates for
    `kubectl debug node/NODE -it --image=IMAGE --profile=PROFILE [--env=EPHEMERA_SESSION=ID] [-- COMMAND...]`
    (docs/kube-debug-wire.md section 2). Only the labels differ: ours tie the pod to its session."""
    if profile not in _NODE_HOST_ACCESS:
        raise ValueError(f"unknown debug profile {profile!r}")
    host_namespaces, host_root = _NODE_HOST_ACCESS[profile]
    container: dict[str, Any] = {"name": NODE_CONTAINER, "image": image}
    if command:
        container["command"] = list(command)
    if session_id is not None:
        container["env"] = [{"name": SESSION_ENV, "value": str(session_id)}]
    container["resources"] = {}
    security = _NODE_SECURITY_CONTEXTS[profile]
    if security is not None:
        container["securityContext"] = _copy(security)
    container.update({"stdin": True, "terminationMessagePolicy": "File", "tty": True})
    spec: dict[str, Any] = {"containers": [container]}
    if host_root:
        container["volumeMounts"] = [{"mountPath": "/host", "name": "host-root"}]
        spec["volumes"] = [{"hostPath": {"path": "/"}, "name": "host-root"}]
    if host_namespaces:
        spec.update({"hostIPC": True, "hostNetwork": True, "hostPID": True})
    spec.update({"nodeName": node, "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}]})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": dict(labels or {MANAGED_BY_LABEL: KUBECTL_MANAGED_BY}), "name": name},
        "spec": spec,
    }


# --- a copy of a pod (`kubectl debug POD --copy-to=NAME`) --------------------------------------

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def copy_pod_name(pod: str) -> str:
    """`<pod>-debug-xxxxx`, within a pod name's 63 characters (kubectl takes --copy-to as given)."""
    return f"{pod[:46].rstrip('-.')}-debug-" + "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))


def copy_pod(
    source: dict[str, Any],
    *,
    name: str,
    container: str,
    image: str,
    profile: str,
    session_id: str | None = None,
    command: list[str] | None = None,
    share_processes: bool = True,
    same_node: bool = False,
    set_image: dict[str, str] | None = None,
    target: str = "",
    target_command: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The pod kubectl creates for
    `kubectl debug POD --copy-to=NAME -c CONTAINER -it --image=IMAGE --profile=PROFILE
    [--share-processes=false] [--same-node] [--set-image=C=I,...] [--env=EPHEMERA_SESSION=ID] [-- COMMAND...]`
    from the pod it read: its spec (ephemeral containers dropped; node only with --same-node;
    probes removed, as every profile does to a copy), metadata reduced to name and namespace
    (kubectl 1.37 drops labels and annotations, so no Service or controller picks the copy up;
    ours carry the session's labels). `target_command` replaces the target container's command, as
    `kubectl debug POD --copy-to=NAME --container=TARGET -- COMMAND` does to a container that
    exists (so a crashing entrypoint can be kept alive to be looked at)."""
    if profile not in _SECURITY_CONTEXTS:
        raise ValueError(f"unknown debug profile {profile!r}")
    meta_in = source.get("metadata") or {}
    spec = _copy(source.get("spec") or {})
    spec.pop("ephemeralContainers", None)
    if not same_node:
        spec.pop("nodeName", None)
    overrides = set_image or {}
    for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        for probe in _PROBES:
            c.pop(probe, None)
    for c in spec.get("containers", []):
        image_for = overrides.get(c.get("name", ""), overrides.get("*", ""))
        if image_for:
            c["image"] = image_for
        if target_command and c.get("name") == target:
            c["command"] = list(target_command)
            c.pop("args", None)
    debugger: dict[str, Any] = {"name": container, "image": image}
    if command:
        debugger["command"] = list(command)
    if session_id is not None:
        debugger["env"] = [{"name": SESSION_ENV, "value": str(session_id)}]
    debugger["resources"] = {}
    security = _SECURITY_CONTEXTS[profile]
    if security is not None:
        debugger["securityContext"] = _copy(security)
    debugger.update({"stdin": True, "terminationMessagePolicy": "File", "tty": True})
    spec["containers"] = [*spec.get("containers", []), debugger]
    spec["shareProcessNamespace"] = bool(share_processes)
    metadata: dict[str, Any] = {"name": name, "namespace": meta_in.get("namespace", "")}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def session_labels(session_id: str, instance: str | None = None) -> dict[str, str]:
    from django.conf import settings

    return {MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: instance or settings.EPHEMERA_INSTANCE, SESSION_LABEL: str(session_id)}


def own_pods_selector() -> str:
    """Label selector for the debug pods this installation made."""
    from django.conf import settings

    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={settings.EPHEMERA_INSTANCE}"


def ephemeral_patch(container: dict[str, Any], existing_ephemeral: Iterable[str] = ()) -> dict[str, Any]:
    """The strategic-merge patch body: ephemeralContainers merge by name, so only the new one.

    kubectl computes a two-way merge patch from the pod it read; when the pod already has
    ephemeral containers that patch also carries `$setElementOrder/ephemeralContainers`
    (existing names, then the new one), so ours does too.
    """
    spec: dict[str, Any] = {}
    existing = list(existing_ephemeral)
    if existing:
        spec["$setElementOrder/ephemeralContainers"] = [{"name": n} for n in [*existing, container["name"]]]
    spec["ephemeralContainers"] = [container]
    return {"spec": spec}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
