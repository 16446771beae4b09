"""The initial cluster contents: a built-in demo cluster, or a YAML --state file (see README.md)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Rule:
    verbs: list[str]
    resources: list[str]
    namespaces: list[str] | None = None  # None: every namespace and cluster-scoped resources

    def allows(self, verb: str, resource: str, namespace: str) -> bool:
        return (
            ("*" in self.verbs or verb in self.verbs)
            and ("*" in self.resources or resource in self.resources)
            and (self.namespaces is None or "*" in self.namespaces or namespace in self.namespaces)
        )


@dataclass
class User:
    name: str
    token: str
    rules: list[Rule] | None = None  # None: cluster-admin

    def allows(self, verb: str, resource: str, namespace: str) -> bool:
        if self.rules is None:
            return True
        return any(r.allows(verb, resource, namespace) for r in self.rules)


@dataclass
class State:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    namespaces: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    users: list[User] = field(default_factory=list)


def _node(name: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": "v1.37.1",
                "containerRuntimeVersion": "kubesim://0.1",
                "osImage": "Debian GNU/Linux",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    node: str,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": containers, "restartPolicy": "Always"},
    }


def default_state() -> State:
    """The demo cluster. Names are fixed so docs and tests can rely on them."""
    nginx = _pod(
        "default",
        "distroless-nginx-7c9d8f6b5d-x2k4q",
        {"app": "distroless-nginx", "pod-template-hash": "7c9d8f6b5d"},
        [
            {
                "name": "distroless-nginx-ctr",
                "image": "cgr.dev/chainguard/nginx",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }
        ],
        "debian-11",
    )
    payments = _pod(
        "payments",
        "payments-api-5f7b9c6d4-q8wzt",
        {"app": "payments-api", "pod-template-hash": "5f7b9c6d4"},
        [
            # The runtime runs commands of non-distroless images on the host: keep them idle.
            {
                "name": "api",
                "image": "registry.example.com/payments/api:1.4.2",
                "command": ["sh", "-c", "echo 'payments-api listening on :8080'; exec sleep infinity"],
            },
            {
                "name": "envoy",
                "image": "envoyproxy/envoy:v1.31.0",
                "command": ["sh", "-c", "echo 'envoy: starting main dispatch loop'; exec sleep infinity"],
            },
        ],
        "debian-12",
        {"kubectl.kubernetes.io/default-container": "api"},
    )
    crashing = _pod(
        "payments",
        "ledger-worker-6b8d7f9c5-m4n7p",
        {"app": "ledger-worker", "pod-template-hash": "6b8d7f9c5"},
        [
            {
                "name": "worker",
                # The runtime's image catalog makes any "crashloop" image exit 1 soon: CrashLoopBackOff.
                "image": "registry.example.com/payments/ledger-worker-crashloop:2.0.1",
            }
        ],
        "debian-12",
    )
    coredns = _pod(
        "kube-system",
        "coredns-6f6b679f8f-7xk2p",
        {"k8s-app": "kube-dns", "pod-template-hash": "6f6b679f8f"},
        [
            {
                "name": "coredns",
                "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                "command": ["sh", "-c", "echo 'CoreDNS-1.11.3'; exec sleep infinity"],
            }
        ],
        "debian-11",
    )
    return State(
        nodes=[_node("debian-11", "192.168.56.11"), _node("debian-12", "192.168.56.12")],
        namespaces=[
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("default", "payments", "kube-system")
        ],
        pods=[nginx, payments, crashing, coredns],
    )


def _user(raw: dict[str, Any]) -> User:
    rules = raw.get("rules")
    return User(
        name=str(raw["name"]),
        token=str(raw["token"]),
        rules=None
        if rules is None
        else [
            Rule(
                verbs=list(r.get("verbs", [])),
                resources=list(r.get("resources", [])),
                namespaces=list(r["namespaces"]) if r.get("namespaces") is not None else None,
            )
            for r in rules
        ],
    )


def load(path: Path | str | None) -> State:
    if path is None:
        return default_state()
    raw = yaml.safe_load(Path(path).read_text()) or {}
    # A key that is absent keeps the demo cluster's value, so a file with only `users:` is enough.
    demo = default_state()
    state = State(
        nodes=copy.deepcopy(raw["nodes"] or []) if "nodes" in raw else demo.nodes,
        namespaces=copy.deepcopy(raw["namespaces"] or []) if "namespaces" in raw else demo.namespaces,
        pods=copy.deepcopy(raw["pods"] or []) if "pods" in raw else demo.pods,
        users=[_user(u) for u in raw.get("users") or []],
    )
    # Namespaces may be given as plain names.
    state.namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} if isinstance(n, str) else n for n in state.namespaces
    ]
    for ns in {p.get("metadata", {}).get("namespace", "default") for p in state.pods} - {
        n["metadata"]["name"] for n in state.namespaces
    }:
        state.namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return state


def from_dict(raw: dict[str, Any]) -> State:
    """Same as load() for an in-memory dict (handy in tests)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(raw, f)
    try:
        return load(f.name)
    finally:
        Path(f.name).unlink()
