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
) -> dict[str, Any]:
    """The container kubectl sends for
    `kubectl debug POD -i [-t] -c NAME --image=IMAGE --target=TARGET --profile=PROFILE [--env=EPHEMERA_SESSION=ID]`."""
    if profile not in _SECURITY_CONTEXTS:
        raise ValueError(f"unknown debug profile {profile!r}")
    container: dict[str, Any] = {"name": name, "image": image}
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
