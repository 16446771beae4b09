"""Checking a debug request before anything is written: shape first, then the live cluster.

Every problem is reported against its field with a message that says what to do; nothing
is written when any check fails (the caller raises before its transaction starts). Text with
characters no database stores (NUL, lone surrogates) is refused here too, for every caller.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from approvals import policy
from approvals.choices import Profile, RequestKind
from approvals.policy.schema import DEFAULT_MAX_DURATION_MINUTES, Rule
from portal.kube import KubeError, PodInfo, get_client
from portal.kube.config import KubeConfigError
from portal.kube.preflight import PreflightInconclusive, preflight_copy_pod, preflight_ephemeral, preflight_node_pod
from portal.kube.specs import (
    copy_pod,
    copy_pod_name,
    ephemeral_container,
    node_debugger_pod,
    node_pod_name,
    random_container_name,
    session_labels,
    time_limited_command,
)
from portal.validators import forbidden_character_errors

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = 2000
TICKET_MAX_LENGTH = 200
BOTH_TARGETS = "Give either a node or a pod (namespace, pod and container), not both."
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class CleanRequest:
    kind: str
    namespace: str
    pod: str
    container: str
    node: str
    image: str
    profile: str
    reason: str
    duration_minutes: int
    ticket: str = ""
    rule: Rule | None = None  # the policy rule that decides it (always set once valid)
    copy_options: dict[str, Any] | None = None  # kind copy (copy_options below)


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    return 0 < len(value) <= 253 and all(_DNS_LABEL.match(part) for part in value.split("."))


def _label_error(what: str, value: str, *, subdomain: bool = False) -> str | None:
    if not value:
        return f"Choose a {what}."
    ok = is_dns1123_subdomain(value) if subdomain else is_dns1123_label(value)
    if ok:
        return None
    limit = 253 if subdomain else 63
    return f"{value[:80]!r} is not a valid {what} name: use lowercase letters, digits and '-', at most {limit} characters."


def _duration(raw: Any, errors: dict[str, list[str]], maximum: int, rule: str) -> int:
    try:
        if isinstance(raw, bool) or raw is None or raw == "":
            raise ValueError
        value = int(raw)
        if isinstance(raw, float) and raw != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):  # int(inf) overflows, int(nan) is a ValueError
        errors.setdefault("duration_minutes", []).append(f"Give the duration as a whole number of minutes (1 to {maximum}).")
        return 0
    if not 1 <= value <= maximum:
        errors.setdefault("duration_minutes", []).append(
            f"The duration must be between 1 and {maximum} minutes{f' (rule {rule})' if rule else ''}."
        )
    return value


def _rule_for(kind: str, namespace: str, profile: str, image: str) -> Rule | None:
    return policy.current().rule_for(policy.spec_for(kind=kind, namespace=namespace, profile=profile, image=image))


def validate_request(
    *,
    kind: str,
    namespace: str,
    pod: str,
    container: str,
    node: str,
    image: str,
    profile: str,
    reason: str,
    duration_minutes: Any,
    ticket: str = "",
    copy: dict[str, Any] | None = None,
) -> CleanRequest:
    """Return the cleaned request or raise ValidationError({field: [messages]}).

    The policy rule is chosen on the exact spec (kind, namespace, profile, image); the image,
    duration and ticket are then checked against that rule, each refusal naming it.
    """
    # Text no database can store is refused first; that field then gets no other message.
    errors = forbidden_character_errors(
        {"kind": kind, "namespace": namespace, "pod": pod, "container": container, "node": node, "image": image,
         "profile": profile, "reason": reason, "duration_minutes": duration_minutes, "ticket": ticket}
    )
    forbidden = set(errors)

    def add(field: str, message: str | None) -> None:
        if message and field not in forbidden:
            errors.setdefault(field, []).append(message)

    kind = (kind or RequestKind.POD).strip()
    namespace, pod, container, node = ((v or "").strip() for v in (namespace, pod, container, node))
    image, profile = (image or "").strip(), (profile or "").strip()
    reason = (reason or "").strip()
    ticket = (ticket or "").strip() if isinstance(ticket, str) else ""

    if kind not in RequestKind.values:
        add("kind", f"Unknown kind {kind[:20]!r}: use 'pod', 'node' or 'copy'.")
    elif node and any((namespace, pod, container)):
        # Refused, never narrowed to one kind: a pod request silently turned into a node
        # request (host namespaces) is far more access than was asked for, and a node dropped
        # from a pod request is a request that doesn't say what its requester meant.
        add("node", BOTH_TARGETS)
    elif kind == RequestKind.NODE:
        add("node", _label_error("node", node, subdomain=True))
    else:
        add("namespace", _label_error("namespace", namespace))
        add("pod", _label_error("pod", pod, subdomain=True))
        add("container", _label_error("container", container))
    if not image:
        add("image", "Choose a debug image.")
    if profile not in Profile.values:
        add("profile", f"Choose a profile: {', '.join(Profile.values)}.")
    if not reason:
        add("reason", "Say why you need access (this goes to the approvers and the audit trail).")
    elif len(reason) > REASON_MAX_LENGTH:
        add("reason", f"Keep the reason under {REASON_MAX_LENGTH} characters.")
    if len(ticket) > TICKET_MAX_LENGTH:
        add("ticket", f"Keep the ticket under {TICKET_MAX_LENGTH} characters.")

    rule: Rule | None = None
    spec_ok = not ({"kind", "profile", "image", "namespace", "node"} & errors.keys())
    if spec_ok:
        rule = _rule_for(kind, namespace, profile, image)
        if rule is None:
            where = f" in namespace {namespace}" if kind == RequestKind.POD else ""
            add(NON_FIELD_ERRORS, f"No policy rule allows a {kind} request{where} with profile {profile} and image {image}; "
                                  "ask your platform team.")
        else:
            allowed = policy.current().images_for(rule)
            if image not in allowed:
                add("image", f"Rule {rule.name} allows only these debug images: {', '.join(allowed)}.")
            if (problem := rule.ticket.problem(ticket)) and "ticket" not in errors:
                add("ticket", f"Rule {rule.name}: {problem}")
    maximum = rule.max_duration_minutes if rule is not None else DEFAULT_MAX_DURATION_MINUTES
    duration = 0 if "duration_minutes" in forbidden else _duration(duration_minutes, errors, maximum, rule.name if rule else "")

    copied = copy_options(copy or {}, add) if kind == RequestKind.COPY else None
    if copied is not None and rule is not None:
        allowed_images = policy.current().images_for(rule)
        bad = sorted({i for i in copied["set_image"].values() if i not in allowed_images})
        if bad:
            add("set_image", f"Rule {rule.name} allows only these images: {', '.join(allowed_images)} (not {', '.join(bad)}).")
    target_ok = kind in (RequestKind.POD, RequestKind.COPY) and not ({"namespace", "pod", "container", "node"} & errors.keys())
    found: PodInfo | None = None
    if target_ok:
        found = _check_cluster(namespace, pod, container, add)
    if kind == RequestKind.NODE and "node" not in errors:
        _check_node(node, add)
    if copied is not None and found is not None and not errors:
        unknown = sorted(set(copied["set_image"]) - {"*", *found.container_names})
        if unknown:
            add("set_image", f"Pod {namespace}/{pod} has no container {unknown[0]!r} (its containers: "
                             f"{', '.join(found.container_names)}; '*' means all).")
    if not errors:
        # Last: would the cluster take the exact object we'd send? (Pod Security, static pods,
        # admission webhooks.) Refused now rather than approved and then failing to provision.
        _preflight(kind=kind, namespace=namespace, pod=found, container=container, node=node, image=image,
                   profile=profile, add=add, copy=copied)
    if errors:
        raise ValidationError(errors)
    return CleanRequest(
        kind=kind,
        namespace=namespace,
        pod=pod,
        container=container,
        node=node,
        image=image,
        profile=profile,
        reason=reason,
        duration_minutes=duration,
        ticket=ticket,
        rule=rule,
        copy_options=copied,
    )


MAX_COMMAND_ITEMS = 32
MAX_COMMAND_ITEM = 1000


def copy_options(raw: dict[str, Any], add: Any) -> dict[str, Any]:
    """A copy's options, checked: share_processes (default true, as kubectl's), same_node
    (default false), set_image {container or '*': image}, command (the target container's)."""
    out: dict[str, Any] = {"share_processes": True, "same_node": False, "set_image": {}, "command": []}
    for key in ("share_processes", "same_node"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            add(key, "true or false.")
        else:
            out[key] = value
    images = raw.get("set_image") or {}
    if not isinstance(images, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in images.items()):
        add("set_image", "A mapping of container name (or '*') to image.")
    else:
        for name, image in images.items():
            if name != "*" and _label_error("container", name.strip()):
                add("set_image", f"{name[:63]!r} is not a container name.")
            elif not image.strip() or len(image) > 255:
                add("set_image", f"Give an image for {name[:63]!r}.")
        out["set_image"] = {k.strip(): v.strip() for k, v in images.items()}
    command = raw.get("command") or []
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        add("command", "A list of strings: the target container's command in the copy, e.g. [\"sleep\", \"infinity\"].")
    elif len(command) > MAX_COMMAND_ITEMS or any(len(c) > MAX_COMMAND_ITEM or "\x00" in c for c in command):
        add("command", f"At most {MAX_COMMAND_ITEMS} items of {MAX_COMMAND_ITEM} characters.")
    else:
        out["command"] = list(command)
    return out


def _check_cluster(namespace: str, pod: str, container: str, add: Any) -> PodInfo | None:
    try:
        client = get_client()
        if namespace not in client.list_namespaces():
            add("namespace", f"Namespace {namespace!r} does not exist in the cluster.")
            return None
        pods = {p.name: p for p in client.list_pods(namespace)}
    except KubeError as exc:
        add(NON_FIELD_ERRORS, f"The cluster can't be checked right now: {exc.message}")
        return None
    except KubeConfigError:
        # The details (paths, kubeconfig contents) belong in the server log, not in a response.
        add(NON_FIELD_ERRORS, "The cluster can't be checked right now: the portal's cluster connection is not configured.")
        return None
    found = pods.get(pod)
    if found is None:
        add("pod", f"Pod {namespace}/{pod} does not exist.")
        return None
    if container not in found.container_names:
        names = ", ".join(found.container_names) or "none"
        add("container", f"Pod {namespace}/{pod} has no container {container!r} (its containers: {names}).")
        return None
    return found


# The dry run sends what the provisioner would (its name, env marker and time limit are the
# session's then; stand-ins of the same shape here: admission doesn't look at their values).
_PREFLIGHT_SESSION = "00000000-0000-0000-0000-000000000000"
_PREFLIGHT_SECONDS = 3600


def _preflight(*, kind: str, namespace: str, pod: PodInfo | None, container: str, node: str, image: str, profile: str,
               add: Any, copy: dict[str, Any] | None = None) -> None:
    command = time_limited_command(image, _PREFLIGHT_SECONDS)
    try:
        if kind == RequestKind.COPY and pod is not None and copy is not None:
            source = get_client().get_pod_raw(namespace, pod.name)
            body = copy_pod(source, name=copy_pod_name(pod.name), container=random_container_name(pod.all_container_names),
                            image=image, profile=profile, session_id=_PREFLIGHT_SESSION, command=command,
                            share_processes=copy["share_processes"], same_node=copy["same_node"],
                            set_image=copy["set_image"], target=container, target_command=copy["command"],
                            labels=session_labels(_PREFLIGHT_SESSION))
            refusal = preflight_copy_pod(namespace, body)
        elif kind == RequestKind.NODE:
            body = node_debugger_pod(name=node_pod_name(node), node=node, image=image, profile=profile,
                                     session_id=_PREFLIGHT_SESSION, command=command, labels=session_labels(_PREFLIGHT_SESSION))
            refusal = preflight_node_pod(settings.EPHEMERA_NODE_DEBUG_NAMESPACE, body)
        elif pod is not None:
            spec = ephemeral_container(name=random_container_name(pod.all_container_names), image=image,
                                       target_container=container, profile=profile, session_id=_PREFLIGHT_SESSION,
                                       command=command)
            refusal = preflight_ephemeral(namespace, pod.name, spec, pod.ephemeral_container_names)
        else:
            return
    except PreflightInconclusive as exc:
        # A webhook that can't dry-run would refuse every request: let the approvers decide.
        logger.warning("pre-flight inconclusive, not refusing: %s", exc.message)
        return
    except KubeError as exc:
        add(NON_FIELD_ERRORS, f"The cluster can't be checked right now: {exc.message}")
        return
    except KubeConfigError:
        add(NON_FIELD_ERRORS, "The cluster can't be checked right now: the portal's cluster connection is not configured.")
        return
    if refusal:
        add("profile" if "Pod Security" in refusal else NON_FIELD_ERRORS, refusal)


def _check_node(node: str, add: Any) -> None:
    try:
        nodes = {n.name for n in get_client().list_nodes()}
    except KubeError as exc:
        add(NON_FIELD_ERRORS, f"The cluster can't be checked right now: {exc.message}")
        return
    except KubeConfigError:
        add(NON_FIELD_ERRORS, "The cluster can't be checked right now: the portal's cluster connection is not configured.")
        return
    if node not in nodes:
        add("node", f"Node {node!r} does not exist in the cluster.")
