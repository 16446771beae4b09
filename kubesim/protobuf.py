"""Just enough Kubernetes protobuf to read a Pod that kubectl POSTs (kubectl debug node/..., --copy-to).

kubectl's typed clientset sends `application/vnd.kubernetes.protobuf`: "k8s\\0" + runtime.Unknown
{typeMeta, raw}, raw being a v1.Pod. Field numbers are those of k8s.io/api/core/v1/generated.proto;
fields not listed here are dropped. Replies stay JSON, which the client accepts.
"""

from __future__ import annotations

from typing import Any

from kubesim.errors import bad_request

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# A schema maps field number -> (json name, type, nested schema). Types: str, int, bool, msg, map,
# qmap (map of Quantity), inline (a message whose fields belong to the parent), and "[...]" for repeated.
Schema = dict[int, tuple[str, str, Any]]

STR_MAP: Schema = {}
SEC_CTX: Schema = {
    1: ("capabilities", "msg", {1: ("add", "[str]", None), 2: ("drop", "[str]", None)}),
    2: ("privileged", "bool", None),
    4: ("runAsUser", "int", None),
    5: ("runAsNonRoot", "bool", None),
    6: ("readOnlyRootFilesystem", "bool", None),
    7: ("allowPrivilegeEscalation", "bool", None),
    8: ("runAsGroup", "int", None),
    11: ("seccompProfile", "msg", {1: ("type", "str", None), 2: ("localhostProfile", "str", None)}),
}
CONTAINER: Schema = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "[str]", None),
    4: ("args", "[str]", None),
    5: ("workingDir", "str", None),
    6: (
        "ports",
        "[msg]",
        {
            1: ("name", "str", None),
            2: ("hostPort", "int", None),
            3: ("containerPort", "int", None),
            4: ("protocol", "str", None),
            5: ("hostIP", "str", None),
        },
    ),
    7: ("env", "[msg]", {1: ("name", "str", None), 2: ("value", "str", None)}),
    8: ("resources", "msg", {1: ("limits", "qmap", None), 2: ("requests", "qmap", None)}),
    9: (
        "volumeMounts",
        "[msg]",
        {
            1: ("name", "str", None),
            2: ("readOnly", "bool", None),
            3: ("mountPath", "str", None),
            4: ("subPath", "str", None),
            5: ("mountPropagation", "str", None),
        },
    ),
    13: ("terminationMessagePath", "str", None),
    14: ("imagePullPolicy", "str", None),
    15: ("securityContext", "msg", SEC_CTX),
    16: ("stdin", "bool", None),
    17: ("stdinOnce", "bool", None),
    18: ("tty", "bool", None),
    20: ("terminationMessagePolicy", "str", None),
}
VOLUME: Schema = {
    1: ("name", "str", None),
    2: (
        "volumeSource",
        "inline",
        {
            1: ("hostPath", "msg", {1: ("path", "str", None), 2: ("type", "str", None)}),
            2: ("emptyDir", "msg", {1: ("medium", "str", None)}),
        },
    ),
}
POD_SPEC: Schema = {
    1: ("volumes", "[msg]", VOLUME),
    2: ("containers", "[msg]", CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "int", None),
    5: ("activeDeadlineSeconds", "int", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map", None),
    8: ("serviceAccountName", "str", None),
    9: ("serviceAccount", "str", None),
    10: ("nodeName", "str", None),
    11: ("hostNetwork", "bool", None),
    12: ("hostPID", "bool", None),
    13: ("hostIPC", "bool", None),
    14: ("securityContext", "msg", {}),
    16: ("hostname", "str", None),
    17: ("subdomain", "str", None),
    19: ("schedulerName", "str", None),
    20: ("initContainers", "[msg]", CONTAINER),
    22: (
        "tolerations",
        "[msg]",
        {
            1: ("key", "str", None),
            2: ("operator", "str", None),
            3: ("value", "str", None),
            4: ("effect", "str", None),
            5: ("tolerationSeconds", "int", None),
        },
    ),
    24: ("priorityClassName", "str", None),
    25: ("priority", "int", None),
    27: ("shareProcessNamespace", "bool", None),
    30: ("enableServiceLinks", "bool", None),
    31: ("preemptionPolicy", "str", None),
}
OBJECT_META: Schema = {
    1: ("name", "str", None),
    2: ("generateName", "str", None),
    3: ("namespace", "str", None),
    11: ("labels", "map", None),
    12: ("annotations", "map", None),
}
POD: Schema = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(buf, i)
            out.append((number, buf[i : i + size]))
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(buf: bytes, quantity: bool) -> tuple[str, str]:
    parts = dict(_fields(buf))
    key = parts.get(1, b"")
    value = parts.get(2, b"")
    if quantity:  # resource.Quantity{string = 1}
        value = dict(_fields(value)).get(1, b"") if isinstance(value, bytes) else b""
    return (key.decode() if isinstance(key, bytes) else "", value.decode() if isinstance(value, bytes) else "")


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, raw in _fields(buf):
        if number not in schema:
            continue
        name, kind, nested = schema[number]
        repeated = kind.startswith("[")
        base = kind.strip("[]")
        if base == "str":
            value: Any = raw.decode() if isinstance(raw, bytes) else ""
            if not value and not repeated:
                continue  # Go's omitempty: an empty string is "unset" in JSON
        elif base == "int":
            value = _signed(raw) if isinstance(raw, int) else 0
        elif base == "bool":
            value = bool(raw)
            if not value and name in ("stdin", "stdinOnce", "tty", "hostNetwork", "hostPID", "hostIPC", "readOnly"):
                continue  # plain (non-pointer) bools: false is the zero value
        elif base in ("map", "qmap"):
            key, val = _map_entry(raw if isinstance(raw, bytes) else b"", base == "qmap")
            obj.setdefault(name, {})[key] = val
            continue
        elif base == "inline":
            obj.update(decode_message(raw if isinstance(raw, bytes) else b"", nested))
            continue
        else:
            value = decode_message(raw if isinstance(raw, bytes) else b"", nested)
        if repeated:
            obj.setdefault(name, []).append(value)
        else:
            obj[name] = value
    return obj


def decode_pod(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes magic number")
    try:
        unknown = dict(_fields(body[len(MAGIC) :]))
        type_meta = dict(_fields(unknown.get(1, b"")))  # type: ignore[arg-type]
        kind = type_meta.get(2, b"")
        if kind != b"Pod":
            raise bad_request(f"kubesim only decodes protobuf Pods, not {kind!r}")
        pod = decode_message(unknown.get(2, b""), POD)  # type: ignore[arg-type]
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"unable to decode protobuf body: {e}") from e
    return {"apiVersion": "v1", "kind": "Pod", **pod}
