"""meta.k8s.io/v1 Table output, the server-side printing `kubectl get` asks for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Column = dict[str, Any]


def _col(name: str, type_: str, description: str, priority: int = 0, fmt: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = _col("Name", "string", "Name must be unique within a namespace.", 0, "name")
AGE = _col("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.")


def human_age(timestamp: str | None) -> str:
    """duration.HumanDuration as kubectl shows it (5s, 3m, 2m10s, 4h, 3d...)."""
    if not timestamp:
        return "<unknown>"
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    s = max(0, int((datetime.now(UTC) - created).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _pod_status_reason(pod: dict[str, Any]) -> str:
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase", "Unknown")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state", {})
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            t = state["terminated"]
            reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode', 0)}")
    if reason == "Running" and any(
        c.get("type") == "Ready" and c.get("status") != "True" for c in status.get("conditions") or []
    ):
        reason = "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_row(pod: dict[str, Any]) -> list[Any]:
    status = pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status_reason(pod),
        str(restarts),
        human_age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _node_row(node: dict[str, Any]) -> list[Any]:
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in node.get("status", {}).get("conditions") or [])
    status = "Ready" if ready else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    info = node.get("status", {}).get("nodeInfo", {})
    internal = next((a["address"] for a in node.get("status", {}).get("addresses") or [] if a["type"] == "InternalIP"), "<none>")
    return [
        node["metadata"]["name"],
        status,
        "<none>",
        human_age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        internal,
        "<none>",
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _ns_row(ns: dict[str, Any]) -> list[Any]:
    return [
        ns["metadata"]["name"],
        ns.get("status", {}).get("phase", "Active"),
        human_age(ns["metadata"].get("creationTimestamp")),
    ]


COLUMNS: dict[str, list[Column]] = {
    "pods": [
        NAME,
        _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "string", "The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        _col(
            "IP",
            "string",
            "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            1,
        ),
        _col("Node", "string", "NodeName indicates in which node this pod is scheduled.", 1),
        _col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
        _col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
    ],
    "nodes": [
        NAME,
        _col("Status", "string", "The status of the node"),
        _col("Roles", "string", "The roles of the node"),
        AGE,
        _col("Version", "string", "Kubelet Version reported by the node."),
        _col("Internal-IP", "string", "List of addresses reachable to the node.", 1),
        _col("External-IP", "string", "List of addresses reachable to the node.", 1),
        _col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
        _col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
        _col(
            "Container-Runtime",
            "string",
            "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            1,
        ),
    ],
    "namespaces": [
        NAME,
        _col("Status", "string", "The status of the namespace"),
        AGE,
    ],
}

ROWS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {"pods": _pod_row, "nodes": _node_row, "namespaces": _ns_row}


def wants_table(accept: str) -> bool:
    """True when the client's first acceptable type is a meta.k8s.io Table."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    resource: str, objects: list[dict[str, Any]], resource_version: str, include: str = "Metadata", with_columns: bool = True
) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": ROWS[resource](obj)}
        ro = _row_object(obj, include)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}}
    if with_columns:
        out["columnDefinitions"] = COLUMNS[resource]
    out["rows"] = rows
    return out
