"""Pre-flight: ask the cluster whether it would take the exact object Ephemera would send.

Before a request is written, its debug container (or node-debugger pod) goes to the apiserver
with dryRun=All: RBAC, validation and every admission plugin judge the real object, and nothing
is stored or started. So a request the cluster would refuse is refused up front, with a reason
the requester can act on, instead of being approved and then failing to provision.

Both functions answer None when the cluster would accept the object, or one sentence when it
refuses. A cluster that gives no verdict (unreachable, a server error, an admission webhook that
can't dry-run) raises the KubeError: whether to let the request through is the caller's call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from portal.kube.client import KubeClient, get_client
from portal.kube.errors import KubeError, KubeNotFound, KubeTimeout, KubeUnavailable
from portal.kube.specs import SESSION_ENV, ephemeral_container, node_debugger_pod

logger = logging.getLogger(__name__)

# kubectl debug's profiles from least to most powerful; profiles in one tuple are peers.
PROFILE_RANKS: tuple[tuple[str, ...], ...] = (("restricted",), ("baseline",), ("general", "netadmin"), ("sysadmin",))
PROFILES: tuple[str, ...] = tuple(p for rank in PROFILE_RANKS for p in rank)
MAX_DETAIL = 240  # characters of the apiserver's text kept in a message

_POD_SECURITY = re.compile(r'violates PodSecurity "(?P<level>[^":]+):(?P<version>[^"]+)": (?P<detail>.*)', re.DOTALL)
# `pods "x" is forbidden: `, `Pod "x" is invalid: `: we name the target ourselves.
_SUBJECT = re.compile(r'^[A-Za-z.]+ "[^"]*" is (?:forbidden|invalid): ')
_RBAC = re.compile(r'User "[^"]*" cannot [a-z]+ resource ')


class PreflightInconclusive(KubeUnavailable):
    """The cluster answered but cannot judge a dry run, e.g. an admission webhook without
    `sideEffects: None` (or `NoneOnDryRun`) refuses every dry run that reaches it."""


def preflight_ephemeral(
    namespace: str,
    pod: str,
    spec: dict[str, Any],
    existing_ephemeral_names: list[str],
    *,
    client: KubeClient | None = None,
) -> str | None:
    """Would the cluster add this ephemeral container (as built by specs.ephemeral_container)?

    The same strategic-merge patch the provisioner sends, with dryRun=All. None if it would.
    """
    kube = client or get_client()

    def attempt(candidate: dict[str, Any]) -> None:
        kube.add_ephemeral_container(namespace, pod, candidate, existing_ephemeral_names, dry_run=True)

    try:
        attempt(spec)
    except KubeError as exc:
        return _refusal(
            exc,
            namespace=namespace,
            target=f"pod {namespace}/{pod}",
            spec=spec,
            variant=_ephemeral_variant,
            attempt=attempt,
            node=False,
        )
    return None


def preflight_node_pod(namespace: str, body: dict[str, Any], *, client: KubeClient | None = None) -> str | None:
    """Would the cluster create this node-debugger pod (as built by specs.node_debugger_pod)?

    The same create the provisioner sends, with dryRun=All. None if it would.
    """
    kube = client or get_client()

    def attempt(candidate: dict[str, Any]) -> None:
        kube.create_pod(namespace, candidate, dry_run=True)

    try:
        attempt(body)
    except KubeError as exc:
        return _refusal(exc, namespace=namespace, target="", spec=body, variant=_node_variant, attempt=attempt, node=True)
    return None


def preflight_copy_pod(namespace: str, body: dict[str, Any], *, client: KubeClient | None = None) -> str | None:
    """Would the cluster create this copy of a pod (specs.copy_pod)? None if it would."""
    kube = client or get_client()

    def attempt(candidate: dict[str, Any]) -> None:
        kube.create_pod(namespace, candidate, dry_run=True)

    try:
        attempt(body)
    except KubeError as exc:
        target = f"namespace {namespace}"
        return _refusal(exc, namespace=namespace, target=target, spec=body, variant=_copy_variant, attempt=attempt, node=False)
    return None


def _copy_variant(body: dict[str, Any], profile: str) -> dict[str, Any] | None:
    """The same copy with its debug container (the last one) under `profile`."""
    from portal.kube.specs import _SECURITY_CONTEXTS

    if profile not in _SECURITY_CONTEXTS:
        return None
    variant = json.loads(json.dumps(body))
    debugger = variant["spec"]["containers"][-1]
    security = _SECURITY_CONTEXTS[profile]
    debugger.pop("securityContext", None)
    if security is not None:
        debugger["securityContext"] = json.loads(json.dumps(security))
    return variant  # type: ignore[no-any-return]


# --- reading the refusal -------------------------------------------------------------------------


def _refusal(
    exc: KubeError,
    *,
    namespace: str,
    target: str,
    spec: dict[str, Any],
    variant: Callable[[dict[str, Any], str], dict[str, Any] | None],
    attempt: Callable[[dict[str, Any]], None],
    node: bool,
) -> str:
    """One sentence for a refusal; raises when the cluster gave no verdict."""
    status = _status_of(exc)
    code = exc.status or 0
    if isinstance(exc, KubeUnavailable | KubeTimeout) or code == 401 or code >= 500 or code == 429:
        # Unreachable, overloaded, or the portal's credentials rejected: no verdict on this request.
        raise exc
    message = str(status.get("message") or "") if status else exc.message
    if "does not support dry run" in message:
        raise PreflightInconclusive(f"the cluster cannot dry-run this: {_shorten(message)}", status=code) from exc
    what = "node-debugger pod" if node else "debug container"
    if isinstance(exc, KubeNotFound):
        if node:
            return f"namespace {namespace} does not exist"
        return f"{target} does not exist"
    psa = _POD_SECURITY.search(message)
    if code == 403 and psa:
        return _pod_security_refusal(
            psa, namespace=namespace, target=target, spec=spec, variant=variant, attempt=attempt, node=node
        )
    if code == 403 and _RBAC.search(message):
        # Ephemera's own service account, not the requester, lacks the right (e.g. RBAC scoped to
        # some namespaces): no request here can provision until a cluster admin grants it.
        return f"Ephemera's service account may not do this in the cluster: {_shorten(_SUBJECT.sub('', message))}"
    if code == 422 and "static pods do not support ephemeral containers" in message:
        return f"{target} is a static pod, which can't have ephemeral containers: debug its node instead"
    return f"the cluster would refuse this {what}: {_shorten(_SUBJECT.sub('', message))}"


def _pod_security_refusal(
    match: re.Match[str],
    *,
    namespace: str,
    target: str,
    spec: dict[str, Any],
    variant: Callable[[dict[str, Any], str], dict[str, Any] | None],
    attempt: Callable[[dict[str, Any]], None],
    node: bool,
) -> str:
    level, version = match["level"], match["version"]
    enforced = level if version == "latest" else f"{level} ({version})"
    head = f"namespace {namespace} enforces Pod Security {enforced}"
    profile = next((p for p in PROFILES if variant(spec, p) == spec), None)
    passing, least_detail = _passing_profiles(spec, profile, variant, attempt)
    if profile is None:
        refused = f"this {'node-debugger pod' if node else 'debug container'} is not allowed ({_shorten(match['detail'])})"
    else:
        refused = f"profile {profile} is not allowed" + (" for node debugging" if node else "")
    if passing:
        return f"{head}: {refused}; try {' or '.join(passing)}"
    # Not even restricted passes: the pod's own containers break the level (it ran before the
    # label was set). Show what the cluster said about the most locked-down attempt.
    where = f" on {target}" if target else ""
    return f"{head}: {refused}, and no debug profile passes{where}: {_shorten(least_detail or match['detail'])}"


def _passing_profiles(
    spec: dict[str, Any],
    profile: str | None,
    variant: Callable[[dict[str, Any], str], dict[str, Any] | None],
    attempt: Callable[[dict[str, Any]], None],
) -> tuple[list[str], str]:
    """The most powerful profiles below (or beside) `profile` that the cluster would admit, on
    the cluster's own word: the same object with another profile, dry-run. Also the Pod
    Security detail of the least powerful attempt that failed (for when none passes)."""
    rank = next((i for i, peers in enumerate(PROFILE_RANKS) if profile in peers), len(PROFILE_RANKS) - 1)
    least_detail = ""
    for peers in reversed(PROFILE_RANKS[: rank + 1]):
        passing: list[str] = []
        for candidate_profile in peers:
            if candidate_profile == profile:
                continue
            candidate = variant(spec, candidate_profile)
            if candidate is None:
                continue
            try:
                attempt(candidate)
            except KubeError as exc:
                psa = _POD_SECURITY.search(str((_status_of(exc) or {}).get("message") or exc.message))
                least_detail = psa["detail"] if psa else least_detail
                logger.debug("preflight: profile %s refused too: %s", candidate_profile, exc.message)
                continue
            passing.append(candidate_profile)
        if passing:
            return passing, least_detail
    return [], least_detail


# --- the same object, another profile ----------------------------------------------------------


def _session_of(container: dict[str, Any]) -> str | None:
    return next((e.get("value") for e in container.get("env") or [] if e.get("name") == SESSION_ENV), None)


def _ephemeral_variant(spec: dict[str, Any], profile: str) -> dict[str, Any] | None:
    """What specs.ephemeral_container builds for `spec`'s request with `profile` instead."""
    try:
        return ephemeral_container(
            name=str(spec.get("name", "")),
            image=str(spec.get("image", "")),
            target_container=str(spec.get("targetContainerName", "")),
            profile=profile,
            session_id=_session_of(spec),
            tty=bool(spec.get("tty")),
            command=spec.get("command"),
        )
    except (ValueError, TypeError):
        return None


def _node_variant(body: dict[str, Any], profile: str) -> dict[str, Any] | None:
    """What specs.node_debugger_pod builds for `body`'s request with `profile` instead."""
    meta = body.get("metadata") or {}
    pod_spec = body.get("spec") or {}
    containers = pod_spec.get("containers") or [{}]
    try:
        return node_debugger_pod(
            name=str(meta.get("name", "")),
            node=str(pod_spec.get("nodeName", "")),
            image=str(containers[0].get("image", "")),
            profile=profile,
            session_id=_session_of(containers[0]),
            command=containers[0].get("command"),
            labels=meta.get("labels"),
        )
    except (ValueError, TypeError, AttributeError):
        return None


# --- the apiserver's Status ----------------------------------------------------------------------


def _status_of(exc: BaseException) -> dict[str, Any] | None:
    """The metav1.Status behind a KubeError (the client's exception is its __cause__, maybe
    a few links down when a KubeError was re-raised with a friendlier message)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ApiException):
            body: Any = seen.body
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            try:
                parsed = json.loads(body) if isinstance(body, str) and body else None
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None
        seen = seen.__cause__
    return None


def _shorten(text: str, limit: int = MAX_DETAIL) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
