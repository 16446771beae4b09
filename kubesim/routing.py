"""Turns a request into apiserver RequestInfo (verb, resource, namespace, name, subresource)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

NAMESPACED = {"pods"}
CLUSTER = {"namespaces", "nodes"}


@dataclass
class RequestInfo:
    verb: str
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    is_resource: bool = False


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def parse(request: web.Request) -> RequestInfo:
    parts = [p for p in request.path.split("/") if p]
    method = request.method.upper()
    if len(parts) < 2 or parts[:2] != ["api", "v1"] or len(parts) == 2:
        return RequestInfo(verb=method.lower())
    rest = parts[2:]
    watch = _truthy(request.query.get("watch"))
    if rest[0] == "watch":  # deprecated /api/v1/watch/... prefix
        watch = True
        rest = rest[1:]
    info = RequestInfo(verb="", is_resource=True)
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in NAMESPACED:
        info.namespace = rest[1]
        rest = rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        info.namespace = rest[1]
    info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = "/".join(rest[2:])
    if info.resource == "namespaces":
        # A namespace object lives at cluster scope; its own name is not a "namespace" for RBAC.
        info.namespace = ""
    collection = info.name == ""
    if method == "GET" or method == "HEAD":
        info.verb = "watch" if watch else ("list" if collection else "get")
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "deletecollection" if collection else "delete"
    else:
        info.verb = method.lower()
    return info
