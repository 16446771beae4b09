"""The three PATCH flavours the apiserver accepts for JSON bodies."""

from __future__ import annotations

import copy
from typing import Any

from kubesim.errors import ApiError, bad_request, unsupported_media_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
ACCEPTED = [JSON_PATCH, MERGE_PATCH, APPLY, STRATEGIC]

# patchMergeKey of the list fields of a Pod (from k8s.io/api/core/v1 struct tags). Lists not
# named here are atomic: the patch replaces them.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "ephemeralContainerStatuses": "name",
    "ownerReferences": "uid",
    "tolerations": "",  # atomic
    "hostAliases": "ip",
    "podIPs": "ip",
    "addresses": "type",
}


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == STRATEGIC:
        _need_object(patch)
        return strategic_merge(copy.deepcopy(target), patch)
    if ctype == MERGE_PATCH:
        _need_object(patch)
        return merge_patch(copy.deepcopy(target), patch)
    if ctype == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        return json_patch(copy.deepcopy(target), patch)
    raise unsupported_media_type(ctype, ACCEPTED)


def _need_object(patch: Any) -> None:
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Strategic merge patch, enough of it for what kubectl and the Python client send."""
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    for key, value in patch.items():
        # Ordering hints and retainKeys only change order/pruning; our merge keeps a stable order.
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            target[field] = [v for v in target.get(field, []) if v not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = strategic_merge(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, list) and MERGE_KEYS.get(key):
            target[key] = _merge_list(target.get(key) or [], value, MERGE_KEYS[key])
        else:
            target[key] = copy.deepcopy(value)
    return target


def _merge_list(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            result.append(copy.deepcopy(item))
            continue
        if item.get("$patch") == "replace":
            return [copy.deepcopy({k: v for k, v in i.items() if k != "$patch"}) for i in patch]
        key = item.get(merge_key)
        index = next(
            (i for i, existing in enumerate(result) if isinstance(existing, dict) and existing.get(merge_key) == key),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _walk(doc: Any, pointer: str) -> tuple[Any, str]:
    if not pointer.startswith("/"):
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {pointer}")
    parts = [_unescape(p) for p in pointer.split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        if isinstance(parent, list):
            parent = parent[int(part)]
        elif isinstance(parent, dict) and part in parent:
            parent = parent[part]
        else:
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
    return parent, parts[-1]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902."""
    for op in ops:
        kind = op.get("op")
        path = op.get("path", "")
        try:
            if kind in ("add", "replace"):
                parent, last = _walk(doc, path)
                value = copy.deepcopy(op.get("value"))
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(value)
                    elif kind == "add":
                        parent.insert(int(last), value)
                    else:
                        parent[int(last)] = value
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = value
            elif kind == "remove":
                parent, last = _walk(doc, path)
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind in ("move", "copy"):
                src_parent, src_last = _walk(doc, op["from"])
                value = src_parent[int(src_last)] if isinstance(src_parent, list) else src_parent[src_last]
                if kind == "move":
                    json_patch(doc, [{"op": "remove", "path": op["from"]}])
                json_patch(doc, [{"op": "add", "path": path, "value": copy.deepcopy(value)}])
            elif kind == "test":
                parent, last = _walk(doc, path)
                actual = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if actual != op.get("value"):
                    raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
            else:
                raise bad_request(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {e}") from e
    return doc
