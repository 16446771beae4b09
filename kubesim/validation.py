"""Pod defaulting and validation, following pkg/apis/core/validation and v1 defaults."""

from __future__ import annotations

import re
from typing import Any

from kubesim.errors import (
    FieldError,
    duplicate,
    field_not_found,
    forbidden,
    invalid_value,
    required,
)

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

# The kubelet's annotation on the mirror pod it posts for a static pod (core.MirrorPodAnnotationKey).
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# Fields of EphemeralContainerCommon that are refused (validateFieldAllowList), in struct order.
EPHEMERAL_FORBIDDEN = ["ports", "resources", "resizePolicy", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe"]


def dns_label_errors(field: str, value: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(value) > 63:
        errs.append(invalid_value(field, value, "must be no more than 63 characters"))
    if not _LABEL.match(value):
        errs.append(invalid_value(field, value, LABEL_MSG))
    return errs


def dns_subdomain_errors(field: str, value: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(value) > 253:
        errs.append(invalid_value(field, value, "must be no more than 253 characters"))
    if not _SUBDOMAIN.match(value):
        errs.append(invalid_value(field, value, SUBDOMAIN_MSG))
    return errs


def default_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_container(c: dict[str, Any]) -> None:
    """SetDefaults_Container plus the fields the apiserver always fills."""
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if c.get("image"):
        c.setdefault("imagePullPolicy", default_pull_policy(c["image"]))
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


def default_pod(pod: dict[str, Any]) -> None:
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault(
        "tolerations",
        [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
    )
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            default_container(c)


def validate_metadata_name(meta: dict[str, Any], namespaced: bool = True) -> list[FieldError]:
    name = meta.get("name")
    if not name:
        return [required("metadata.name", "name or generateName is required")]
    return dns_subdomain_errors("metadata.name", name)


def _container_common(c: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs.extend(dns_label_errors(f"{path}.name", name))
    if not c.get("image"):
        errs.append(required(f"{path}.image"))
    return errs


def validate_pod_create(pod: dict[str, Any]) -> list[FieldError]:
    errs = validate_metadata_name(pod.get("metadata", {}))
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        errs.append(required("spec.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            path = f"spec.{key}[{i}]"
            errs.extend(_container_common(c, path))
            if c.get("name") in seen:
                errs.append(duplicate(f"{path}.name", c["name"]))
            seen.add(c.get("name", ""))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


def validate_ephemeral_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """ValidatePodEphemeralContainersUpdate: new containers are valid, old ones untouched."""
    if MIRROR_POD_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
        # The kubelet runs a static pod from its manifest and would never start one (kubernetes#113935);
        # the apiserver answers with this one error alone, its field an empty path ("[]").
        return [forbidden("[]", "static pods do not support ephemeral containers")]
    errs: list[FieldError] = []
    spec = new.get("spec") or {}
    other = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []}
    all_names = set(other)
    for i, ec in enumerate(spec.get("ephemeralContainers") or []):
        path = f"spec.ephemeralContainers[{i}]"
        errs.extend(_container_common(ec, path))
        name = ec.get("name") or ""
        if name:
            if name in all_names:
                errs.append(duplicate(f"{path}.name", name))
            else:
                all_names.add(name)
        target = ec.get("targetContainerName")
        if target and target not in other:
            errs.append(field_not_found(f"{path}.targetContainerName", target))
        for fname in EPHEMERAL_FORBIDDEN:
            value = ec.get(fname)
            # An empty value is what Go would decode to the zero value: allowed (kubectl sends resources: {}).
            if value not in (None, {}, []):
                errs.append(forbidden(f"{path}.{fname}", "cannot be set for an Ephemeral Container"))
    new_by_name = {ec.get("name"): ec for ec in spec.get("ephemeralContainers") or []}
    for old_ec in (old.get("spec") or {}).get("ephemeralContainers") or []:
        current = new_by_name.get(old_ec["name"])
        if current is None:
            errs.append(
                forbidden("spec.ephemeralContainers", f'existing ephemeral containers "{old_ec["name"]}" may not be removed')
            )
        elif current != old_ec:
            errs.append(
                forbidden("spec.ephemeralContainers", f'existing ephemeral containers "{old_ec["name"]}" may not be changed')
            )
    return errs
