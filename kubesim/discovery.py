"""Legacy (non-aggregated) discovery documents. kubectl asks for aggregated discovery first and
falls back to these when the reply's Content-Type is plain application/json."""

from __future__ import annotations

from typing import Any

VERSION = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.1-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_groups() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def _res(
    name: str,
    kind: str,
    namespaced: bool,
    verbs: list[str],
    short: list[str] | None = None,
    singular: str = "",
    categories: list[str] | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs}
    if short:
        r["shortNames"] = short
    if categories:
        r["categories"] = categories
    return r


_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def core_v1_resources() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            _res(
                "namespaces",
                "Namespace",
                False,
                ["create", "delete", "get", "list", "patch", "update", "watch"],
                ["ns"],
                "namespace",
            ),
            _res("nodes", "Node", False, _RW, ["no"], "node"),
            _res("pods", "Pod", True, _RW, ["po"], "pod", ["all"]),
            _res("pods/attach", "PodAttachOptions", True, ["create", "get"]),
            _res("pods/ephemeralcontainers", "Pod", True, ["get", "patch", "update"]),
            _res("pods/exec", "PodExecOptions", True, ["create", "get"]),
            _res("pods/log", "Pod", True, ["get"]),
            _res("pods/status", "Pod", True, ["get", "patch", "update"]),
        ],
    }
