"""REST handlers for namespaces, nodes and pods (incl. pods/status and pods/ephemeralcontainers)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from aiohttp import web

from kubesim import dryrun, protobuf, selectors, tables, watch
from kubesim.cluster import Cluster
from kubesim.errors import ApiError, bad_request, invalid, method_not_allowed, path_not_found, unsupported_media_type
from kubesim.errors import forbidden as forbidden_field
from kubesim.patch import ACCEPTED, apply_patch
from kubesim.routing import RequestInfo
from kubesim.store import now_rfc3339
from kubesim.validation import default_container, validate_metadata_name

KIND = {"pods": "Pod", "nodes": "Node", "namespaces": "Namespace"}


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(obj), content_type="application/json")


async def read_json(request: web.Request) -> Any:
    ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
    if request.method == "PATCH":
        if ctype not in ACCEPTED:
            raise unsupported_media_type(ctype, ACCEPTED)
    elif ctype == protobuf.CONTENT_TYPE and request.method == "POST" and "/pods" in request.path:
        # kubectl's typed client creates pods (debug node/..., --copy-to) in protobuf.
        return protobuf.decode_pod(await request.read())
    elif ctype not in ("application/json", "", "*/*"):
        # Other protobuf and CBOR bodies are not simulated.
        raise unsupported_media_type(ctype, ["application/json", "application/yaml", protobuf.CONTENT_TYPE])
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise bad_request(f"error decoding JSON: {e}") from e


class Handlers:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store

    async def dispatch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        if info.resource not in KIND:
            raise path_not_found()
        if info.subresource:
            return await self._subresource(request, info)
        method = request.method
        if info.name == "":
            if method == "GET":
                return await self._list(request, info)
            if method == "POST":
                return await self._create(request, info)
            raise method_not_allowed()
        if method == "GET":
            obj = self.store.get(info.resource, info.namespace, info.name)
            return self._render_one(request, info.resource, obj)
        if method == "DELETE":
            return await self._delete(request, info)
        if method in ("PATCH", "PUT") and info.resource == "pods":
            return await self._update_pod(request, info)
        if method in ("PATCH", "PUT"):
            return await self._update_generic(request, info)
        raise method_not_allowed()

    # reads -----------------------------------------------------------------
    def _render_one(self, request: web.Request, resource: str, obj: dict[str, Any]) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")) and resource in tables.COLUMNS:
            return json_response(
                tables.table(resource, [obj], obj["metadata"]["resourceVersion"], request.query.get("includeObject", "Metadata"))
            )
        return json_response(obj)

    def _matcher(self, request: web.Request, resource: str) -> Any:
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fields = selectors.parse_fields(resource, request.query.get("fieldSelector"))
        return lambda o: selectors.labels_match(labels, o) and selectors.fields_match(resource, fields, o)

    async def _list(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        namespace = info.namespace or None
        match = self._matcher(request, info.resource)
        if info.verb == "watch":
            return await watch.serve(request, self.store, info.resource, namespace, match)
        rv_param = request.query.get("resourceVersion", "")
        if request.query.get("resourceVersionMatch") == "Exact" and rv_param and rv_param != str(self.store.resource_version):
            raise ApiError(410, "Expired", f"too old resource version: {rv_param} ({self.store.resource_version})")
        items = [o for o in self.store.list(info.resource, namespace) if match(o)]
        rv = str(self.store.resource_version)
        items, list_meta = _paginate(items, request.query.get("limit"), request.query.get("continue"), rv)
        if tables.wants_table(request.headers.get("Accept", "")) and info.resource in tables.COLUMNS:
            table = tables.table(info.resource, items, rv, request.query.get("includeObject", "Metadata"))
            table["metadata"] = list_meta
            return json_response(table)
        return json_response({"kind": KIND[info.resource] + "List", "apiVersion": "v1", "metadata": list_meta, "items": items})

    # writes ----------------------------------------------------------------
    async def _create(self, request: web.Request, info: RequestInfo) -> web.Response:
        # The apiserver checks the options before it decodes the body.
        dry = dryrun.requested(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        if body.get("kind") and body["kind"] != KIND[info.resource]:
            raise bad_request(
                f"the API version in the data (v1) does not match the expected API version (v1) "
                f"or kind {body['kind']} is not {KIND[info.resource]}"
            )
        if info.resource == "pods":
            return json_response(await self.cluster.create_pod(info.namespace, body, dry_run=dry), 201)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        errors = validate_metadata_name(meta)
        if errors:
            raise invalid(KIND[info.resource], meta.get("name", ""), errors)
        obj["apiVersion"], obj["kind"] = "v1", KIND[info.resource]
        meta.pop("resourceVersion", None)
        if info.resource == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        else:
            obj = self.cluster._default_node(obj)
        if dry:
            return json_response(self.store.dry_create(info.resource, obj), 201)
        return json_response(self.store.create(info.resource, obj), 201)

    async def _delete(self, request: web.Request, info: RequestInfo) -> web.Response:
        body = await read_json(request) or {}
        dry = dryrun.requested(request, body if isinstance(body, dict) else None)
        grace_param = request.query.get("gracePeriodSeconds")
        grace = body.get("gracePeriodSeconds")
        if grace_param is not None:
            try:
                grace = int(grace_param)
            except ValueError as e:
                raise bad_request(f"invalid gracePeriodSeconds: {grace_param}") from e
        if info.resource == "pods":
            pod = await self.cluster.delete_pod(info.namespace, info.name, grace, body.get("preconditions") or {}, dry_run=dry)
            return json_response(pod)
        if info.resource == "namespaces":
            ns = self.store.get("namespaces", "", info.name)
            if dry:
                # What a real namespace delete answers first: Terminating, its pods untouched yet.
                ns["metadata"]["deletionTimestamp"] = now_rfc3339()
                ns["status"] = {"phase": "Terminating"}
                return json_response(ns)
            for pod in self.store.list("pods", info.name):
                await self.cluster.delete_pod(info.name, pod["metadata"]["name"], 0, {})
            ns["metadata"]["deletionTimestamp"] = now_rfc3339()
            ns["status"] = {"phase": "Terminating"}
            self.store.update("namespaces", ns)
            return json_response(self.store.delete("namespaces", "", info.name))
        if dry:
            return json_response(self.store.get(info.resource, "", info.name))
        return json_response(self.store.delete(info.resource, "", info.name))

    async def _new_object(self, request: web.Request, current: dict[str, Any]) -> dict[str, Any]:
        body = await read_json(request)
        if request.method == "PATCH":
            if body is None:
                raise bad_request("the body of the request was empty")
            return apply_patch(request.headers.get("Content-Type", ""), current, body)
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        return body

    async def _update_generic(self, request: web.Request, info: RequestInfo) -> web.Response:
        dry = dryrun.requested(request)
        current = self.store.get(info.resource, info.namespace, info.name)
        new = await self._new_object(request, current)
        # Only labels, annotations and spec of nodes/namespaces are writable here.
        current["metadata"]["labels"] = (new.get("metadata") or {}).get("labels") or {}
        current["metadata"]["annotations"] = (new.get("metadata") or {}).get("annotations") or {}
        if info.resource == "nodes" and "spec" in new:
            current["spec"] = new["spec"]
        if dry:
            return json_response(current)  # as it would be stored, under the stored resourceVersion
        return json_response(self.store.update(info.resource, current))

    async def _update_pod(self, request: web.Request, info: RequestInfo) -> web.Response:
        dry = dryrun.requested(request)
        current = self.store.get("pods", info.namespace, info.name)
        new = await self._new_object(request, current)
        new_spec: dict[str, Any] = copy.deepcopy(new["spec"] if isinstance(new.get("spec"), dict) else current["spec"])
        for key in ("containers", "initContainers"):
            for c in new_spec.get(key) or []:
                default_container(c)
        # Pod spec is immutable except container images (the apiserver's rule, minus the rarer fields).
        if _without_images(new_spec) != _without_images(current["spec"]):
            raise invalid(
                "Pod",
                info.name,
                [
                    forbidden_field(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                        "(allow it to be set to 1 if it was previously negative)",
                    )
                ],
            )
        changed = copy.deepcopy(current)
        for key in ("containers", "initContainers"):
            for c_new, c_old in zip(new_spec.get(key) or [], changed["spec"].get(key) or [], strict=False):
                c_old["image"] = c_new["image"]
        meta = new.get("metadata") or {}
        for field in ("labels", "annotations"):
            if meta.get(field):
                changed["metadata"][field] = meta[field]
            else:
                changed["metadata"].pop(field, None)
        if changed == current:
            return json_response(current)
        if dry:
            return json_response(changed)
        return json_response(self.store.update("pods", changed))

    # subresources ------------------------------------------------------------
    async def _subresource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        if info.resource != "pods":
            raise path_not_found()
        sub = info.subresource
        if sub == "ephemeralcontainers":
            if request.method == "GET":
                return json_response(self.store.get("pods", info.namespace, info.name))
            if request.method not in ("PATCH", "PUT"):
                raise method_not_allowed()
            dry = dryrun.requested(request)
            current = self.store.get("pods", info.namespace, info.name)
            new = await self._new_object(request, current)
            if not isinstance(new, dict):
                raise bad_request("the request body must be a Pod")
            pod = await self.cluster.update_ephemeral(info.namespace, info.name, new, request.method == "PUT", dry_run=dry)
            return json_response(pod)
        if sub == "status":
            if request.method == "GET":
                return json_response(self.store.get("pods", info.namespace, info.name))
            if request.method not in ("PATCH", "PUT"):
                raise method_not_allowed()
            dry = dryrun.requested(request)
            current = self.store.get("pods", info.namespace, info.name)
            new = await self._new_object(request, current)
            if isinstance(new.get("status"), dict) and new["status"] != current["status"]:
                current["status"] = new["status"]
                if not dry:
                    current = self.store.update("pods", current)
            return json_response(current)
        raise path_not_found()


def _paginate(
    items: list[dict[str, Any]], limit: str | None, token: str | None, rv: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """limit/continue over the (namespace, name)-sorted list; the token is the last key served.

    Unlike etcd, a continued list sees the current state rather than a snapshot at the first page's rv.
    """
    meta: dict[str, Any] = {"resourceVersion": rv}
    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))
            start = (str(after[0]), str(after[1]))
        except (ValueError, TypeError, IndexError) as e:
            raise bad_request("continue key is not valid: illegal base64 data at input byte 0") from e
        items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
    try:
        size = int(limit) if limit else 0
    except ValueError as e:
        raise bad_request(f"invalid limit: {limit}") from e
    if size > 0 and len(items) > size:
        last = items[size - 1]["metadata"]
        meta["continue"] = base64.urlsafe_b64encode(json.dumps([last.get("namespace", ""), last["name"]]).encode()).decode()
        meta["remainingItemCount"] = len(items) - size
        items = items[:size]
    return items, meta


def _without_images(spec: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    out.pop("ephemeralContainers", None)
    for key in ("containers", "initContainers"):
        for c in out.get(key) or []:
            c.pop("image", None)
            c.pop("imagePullPolicy", None)
    return out
