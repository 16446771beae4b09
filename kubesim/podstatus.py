"""Pod status the way the kubelet reports it: phase and conditions derived from container statuses."""

from __future__ import annotations

from typing import Any

from kubesim.store import now_rfc3339

STATUS_FIELD = {
    "container": "containerStatuses",
    "initContainer": "initContainerStatuses",
    "ephemeralContainer": "ephemeralContainerStatuses",
}


def initial_status(pod: dict[str, Any], host_ip: str, pod_ip: str) -> dict[str, Any]:
    now = now_rfc3339()
    spec = pod["spec"]
    status: dict[str, Any] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "qosClass": "BestEffort",
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
            }
            for c in spec.get("containers") or []
        ],
    }
    return status


def merge_container_status(pod: dict[str, Any], kind: str, cstatus: dict[str, Any]) -> None:
    field = STATUS_FIELD[kind]
    statuses: list[dict[str, Any]] = pod["status"].setdefault(field, [])
    for i, existing in enumerate(statuses):
        if existing.get("name") == cstatus.get("name"):
            statuses[i] = cstatus
            break
    else:
        statuses.append(cstatus)
    # Keep spec order, as the kubelet does.
    spec_key = {"container": "containers", "initContainer": "initContainers", "ephemeralContainer": "ephemeralContainers"}[kind]
    order = {c["name"]: i for i, c in enumerate(pod["spec"].get(spec_key) or [])}
    statuses.sort(key=lambda s: order.get(s.get("name", ""), len(order)))
    recompute(pod)


def _phase(pod: dict[str, Any]) -> str:
    spec = pod["spec"]
    statuses = {s["name"]: s for s in pod["status"].get("containerStatuses") or []}
    containers = spec.get("containers") or []
    states = [statuses.get(c["name"], {}).get("state", {}) for c in containers]
    if any("running" in s for s in states):
        return "Running"
    if states and all("terminated" in s for s in states):
        codes = [s["terminated"].get("exitCode", 0) for s in states]
        policy = spec.get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and all(c == 0 for c in codes)):
            return "Succeeded" if all(c == 0 for c in codes) else "Failed"
        return "Running"
    # A container that ran before (CrashLoopBackOff) keeps the pod Running.
    if any(statuses.get(c["name"], {}).get("restartCount", 0) > 0 for c in containers):
        return "Running"
    return "Pending"


def _set_condition(status: dict[str, Any], ctype: str, ok: bool, reason: str = "", message: str = "") -> None:
    conds: list[dict[str, Any]] = status.setdefault("conditions", [])
    value = "True" if ok else "False"
    for c in conds:
        if c["type"] == ctype:
            if c["status"] != value:
                c["lastTransitionTime"] = now_rfc3339()
            c["status"] = value
            break
    else:
        c = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        conds.append(c)
    c.pop("reason", None)
    c.pop("message", None)
    if not ok and reason:
        c["reason"] = reason
        c["message"] = message


def recompute(pod: dict[str, Any]) -> None:
    status = pod["status"]
    phase = _phase(pod)
    status["phase"] = phase
    statuses = {s["name"]: s for s in status.get("containerStatuses") or []}
    unready = [c["name"] for c in pod["spec"].get("containers") or [] if not statuses.get(c["name"], {}).get("ready")]
    done = phase in ("Succeeded", "Failed")
    reason = "PodCompleted" if done else "ContainersNotReady"
    message = "" if done else f"containers with unready status: [{' '.join(unready)}]"
    _set_condition(status, "PodReadyToStartContainers", not done)
    _set_condition(status, "Initialized", True)
    _set_condition(status, "Ready", not unready, reason, message)
    _set_condition(status, "ContainersReady", not unready, reason, message)
    _set_condition(status, "PodScheduled", True)
    # kubelet's order: PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled.
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    status["conditions"].sort(key=lambda c: order.index(c["type"]) if c["type"] in order else 99)
