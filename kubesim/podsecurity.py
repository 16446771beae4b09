"""Pod Security admission (enforce mode only), for namespaces labelled pod-security.kubernetes.io/enforce.

The messages follow k8s.io/pod-security-admission: `violates PodSecurity "baseline:latest": <check> (<detail>), ...`,
checks in the order of their IDs. Only the checks a debugging profile can trip are implemented.
"""

from __future__ import annotations

from typing import Any

from kubesim.errors import forbidden_message

ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
BASELINE_CAPS = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def _who(names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"container {quoted}" if len(names) == 1 else f"containers {quoted}"


def _sc(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("securityContext") or {}


def _baseline(spec: dict[str, Any]) -> list[str]:
    out: list[str] = []
    containers = _containers(spec)
    # capabilities_baseline
    bad_caps: list[str] = []
    caps_seen: list[str] = []
    for c in containers:
        extra = [cap for cap in (_sc(c).get("capabilities") or {}).get("add") or [] if cap not in BASELINE_CAPS]
        if extra:
            bad_caps.append(c["name"])
            caps_seen.extend(cap for cap in extra if cap not in caps_seen)
    if bad_caps:
        caps = ", ".join(f'"{cap}"' for cap in caps_seen)
        out.append(f"non-default capabilities ({_who(bad_caps)} must not include {caps} in securityContext.capabilities.add)")
    # hostNamespaces
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append(f"host namespaces ({', '.join(host)})")
    # hostPathVolumes
    paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if paths:
        noun = "volume" if len(paths) == 1 else "volumes"
        out.append(f"hostPath volumes ({noun} {', '.join(f'{chr(34)}{p}{chr(34)}' for p in paths)})")
    # privileged
    privileged = [c["name"] for c in containers if _sc(c).get("privileged")]
    if privileged:
        out.append(f"privileged ({_who(privileged)} must not set securityContext.privileged=true)")
    return out


def _restricted(spec: dict[str, Any]) -> list[str]:
    out: list[str] = []
    containers = _containers(spec)
    pod_sc = spec.get("securityContext") or {}
    escalate = [c["name"] for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if escalate:
        out.append(
            f"allowPrivilegeEscalation != false ({_who(escalate)} must set securityContext.allowPrivilegeEscalation=false)"
        )
    unrestricted = [c["name"] for c in containers if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
    if unrestricted:
        out.append(f'unrestricted capabilities ({_who(unrestricted)} must set securityContext.capabilities.drop=["ALL"])')
    out.extend(_baseline(spec))
    non_root = [c["name"] for c in containers if not (_sc(c).get("runAsNonRoot") or pod_sc.get("runAsNonRoot"))]
    if non_root:
        out.append(f"runAsNonRoot != true (pod or {_who(non_root)} must set securityContext.runAsNonRoot=true)")
    ok_types = ("RuntimeDefault", "Localhost")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type") in ok_types
    seccomp = [c["name"] for c in containers if not (pod_seccomp or (_sc(c).get("seccompProfile") or {}).get("type") in ok_types)]
    if seccomp:
        out.append(
            f'seccompProfile (pod or {_who(seccomp)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return out


def check(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> None:
    """Raise a 403 like the admission plugin when `pod` violates its namespace's enforced level."""
    labels = (namespace or {}).get("metadata", {}).get("labels") or {}
    level = labels.get(ENFORCE, "privileged")
    if level not in ("baseline", "restricted"):
        return
    spec = pod.get("spec") or {}
    problems = _restricted(spec) if level == "restricted" else _baseline(spec)
    if problems:
        version = labels.get(ENFORCE_VERSION, "latest")
        name = pod["metadata"].get("name", "")
        raise forbidden_message(
            "pods", name, f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": {", ".join(problems)}'
        )
