"""portal.kube.preflight against kubesim: the cluster's dry-run answer, in words a requester can act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim.testing import RunningCluster, run_cluster
from portal.kube import KubeUnavailable, get_client
from portal.kube.preflight import PreflightInconclusive, preflight_ephemeral, preflight_node_pod
from portal.kube.specs import ephemeral_container, ephemeral_patch, node_debugger_pod, session_labels

pytestmark = [pytest.mark.timeout(90)]

BASELINE = {"pod-security.kubernetes.io/enforce": "baseline"}
RESTRICTED_SC = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
MIRROR = "kube-apiserver-debian-11"


def _pod(namespace: str, name: str, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "600"], **container}]},
    }


STATE = {
    "namespaces": [
        "default",
        "open",
        "kube-system",
        {"metadata": {"name": "payments", "labels": BASELINE}},
        {"metadata": {"name": "nodes-baseline", "labels": BASELINE}},
        "strict",  # labelled restricted once its pods run (admission would refuse root-web)
    ],
    "pods": [
        _pod("open", "web"),
        _pod("payments", "api"),
        _pod("strict", "locked", securityContext=RESTRICTED_SC),
        _pod("strict", "root-web"),
        {
            **_pod("kube-system", MIRROR),
            "metadata": {"name": MIRROR, "namespace": "kube-system", "annotations": {"kubernetes.io/config.mirror": "5d1c8e3f"}},
        },
    ],
    "users": [{"name": "narrow", "token": "narrow-token", "rules": [{"verbs": ["get", "list"], "resources": ["pods"]}]}],
}


@pytest.fixture(scope="module")
def audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("preflight-audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def psa_cluster(tmp_path_factory: pytest.TempPathFactory, audit_log: Path) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("preflight"), state=STATE, audit_log=audit_log) as cluster:
        labelled = cluster.kubectl("label", "namespace", "strict", "pod-security.kubernetes.io/enforce=restricted")
        assert labelled.returncode == 0, labelled.stderr
        yield cluster


def _use_kubeconfig(path: Path | str, settings: Any) -> None:
    from portal.kube import config, reset_client

    settings.EPHEMERA_KUBECONFIG = str(path)
    settings.EPHEMERA_KUBE_CONTEXT = ""
    config.reset()
    reset_client()


@pytest.fixture
def cluster(psa_cluster: RunningCluster, settings: Any) -> Iterator[RunningCluster]:
    """The module's cluster as the portal's; faults cleared after each test."""
    _use_kubeconfig(psa_cluster.kubeconfig, settings)
    yield psa_cluster
    psa_cluster.faults.clear()
    from portal.kube import config, reset_client

    config.reset()
    reset_client()


def container(profile: str, *, name: str = "debugger-k7x2q", target: str = "app") -> dict[str, Any]:
    """What the provisioner builds (sessions.services._add_ephemeral_container)."""
    return ephemeral_container(
        name=name,
        image="busybox",
        target_container=target,
        profile=profile,
        session_id="4c6f0e9e-2b1d-4a8e-9d51-0b7f3c1f2a10",
        command=["timeout", "-s", "KILL", "9060", "sh"],
    )


def node_pod(profile: str, node: str = "debian-11") -> dict[str, Any]:
    """What the provisioner builds (sessions.services._create_node_pod)."""
    session = "4c6f0e9e-2b1d-4a8e-9d51-0b7f3c1f2a10"
    return node_debugger_pod(
        name=f"node-debugger-{node}-q7x2k",
        node=node,
        image="busybox",
        profile=profile,
        session_id=session,
        command=["timeout", "-s", "KILL", "9060", "sh"],
        labels=session_labels(session, instance="ephemera"),
    )


def last_audit_event(audit_log: Path, verb: str) -> dict[str, Any]:
    events = [json.loads(line) for line in audit_log.read_text().splitlines()]
    return next(e for e in reversed(events) if e["verb"] == verb)


def ephemeral_names(namespace: str, pod: str) -> list[str]:
    return get_client().get_pod(namespace, pod).ephemeral_container_names


# --- what passes -------------------------------------------------------------------------------


def test_it_accepts_what_the_cluster_would_accept_and_adds_nothing(cluster: RunningCluster, audit_log: Path) -> None:
    assert preflight_ephemeral("payments", "api", container("baseline"), []) is None
    assert preflight_ephemeral("payments", "api", container("restricted"), []) is None
    assert preflight_ephemeral("open", "web", container("sysadmin"), ["debugger-old"]) is None
    assert ephemeral_names("payments", "api") == [] and ephemeral_names("open", "web") == []
    # The exact patch the provisioner sends, with dryRun=All: the cluster judged the real object.
    last = last_audit_event(audit_log, "patch")
    assert last["requestURI"] == "/api/v1/namespaces/open/pods/web/ephemeralcontainers?dryRun=All"
    assert last["verb"] == "patch" and last["responseStatus"]["code"] == 200
    assert last["requestObject"] == ephemeral_patch(container("sysadmin"), ["debugger-old"])


def test_a_node_pod_that_passes_is_answered_but_not_created(cluster: RunningCluster, audit_log: Path) -> None:
    body = node_pod("sysadmin")
    assert preflight_node_pod("default", body) is None
    assert preflight_node_pod("nodes-baseline", node_pod("baseline")) is None
    answered = get_client().create_pod("default", body, dry_run=True)
    assert answered["metadata"]["uid"] and "resourceVersion" not in answered["metadata"]
    assert [p.name for p in get_client().list_pods("default")] == []
    create = last_audit_event(audit_log, "create")
    assert create["requestURI"] == "/api/v1/namespaces/default/pods?dryRun=All"
    assert create["requestObject"] == body


# --- Pod Security ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["sysadmin", "general", "netadmin"])
def test_a_baseline_namespace_refuses_the_profile_and_names_the_one_to_try(cluster: RunningCluster, profile: str) -> None:
    assert preflight_ephemeral("payments", "api", container(profile), []) == (
        f"namespace payments enforces Pod Security baseline: profile {profile} is not allowed; try baseline"
    )
    assert ephemeral_names("payments", "api") == []


def test_a_restricted_namespace_names_restricted(cluster: RunningCluster) -> None:
    assert preflight_ephemeral("strict", "locked", container("baseline"), []) == (
        "namespace strict enforces Pod Security restricted: profile baseline is not allowed; try restricted"
    )
    assert preflight_ephemeral("strict", "locked", container("restricted"), []) is None


def test_a_pod_that_breaks_the_level_itself_gets_no_false_hope(cluster: RunningCluster) -> None:
    # root-web ran before the namespace was labelled: its own container fails restricted, so
    # the cluster refuses every ephemeral container on it, restricted included.
    message = preflight_ephemeral("strict", "root-web", container("sysadmin"), [])
    assert message is not None
    assert message.startswith(
        "namespace strict enforces Pod Security restricted: profile sysadmin is not allowed, "
        "and no debug profile passes on pod strict/root-web: "
    )
    assert 'container "app"' in message  # the pod's own container, as the cluster named it
    assert "; try" not in message


def test_a_node_pod_in_a_baseline_namespace(cluster: RunningCluster) -> None:
    assert preflight_node_pod("nodes-baseline", node_pod("sysadmin")) == (
        "namespace nodes-baseline enforces Pod Security baseline: profile sysadmin is not allowed for node debugging; try baseline"
    )
    assert preflight_node_pod("nodes-baseline", node_pod("general")) == (
        "namespace nodes-baseline enforces Pod Security baseline: profile general is not allowed for node debugging; try baseline"
    )
    assert [p.name for p in get_client().list_pods("nodes-baseline")] == []


def test_a_container_ephemera_did_not_build_still_gets_the_clusters_reason(cluster: RunningCluster) -> None:
    custom = {**container("baseline"), "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
    message = preflight_ephemeral("payments", "api", custom, [])
    assert message == (
        "namespace payments enforces Pod Security baseline: this debug container is not allowed "
        '(non-default capabilities (container "debugger-k7x2q" must not include "SYS_ADMIN" in '
        "securityContext.capabilities.add)); try baseline"
    )


# --- other refusals ----------------------------------------------------------------------------


def test_a_static_pod_says_to_debug_its_node(cluster: RunningCluster) -> None:
    assert preflight_ephemeral("kube-system", MIRROR, container("baseline"), []) == (
        f"pod kube-system/{MIRROR} is a static pod, which can't have ephemeral containers: debug its node instead"
    )


def test_a_missing_pod_or_target(cluster: RunningCluster) -> None:
    assert preflight_ephemeral("open", "ghost", container("baseline"), []) == "pod open/ghost does not exist"
    assert preflight_ephemeral("open", "web", container("baseline", target="nope"), []) == (
        'the cluster would refuse this debug container: spec.ephemeralContainers[0].targetContainerName: Not found: "nope"'
    )
    assert preflight_node_pod("no-such-ns", node_pod("baseline")) == "namespace no-such-ns does not exist"


def test_another_admission_error_is_the_apiservers_message_shortened(cluster: RunningCluster) -> None:
    cluster.faults.add(
        403,
        method="PATCH",
        path="/ephemeralcontainers$",
        message='admission webhook "images.policy.example.com" denied the request: ' + "image busybox is not signed; " * 40,
    )
    message = preflight_ephemeral("open", "web", container("baseline"), [])
    assert message is not None
    assert message.startswith(
        'the cluster would refuse this debug container: admission webhook "images.policy.example.com" denied the request: '
        "image busybox is not signed;"
    )
    assert len(message) <= 320 and message.endswith("…")


def test_the_portals_own_missing_permission_is_named(cluster: RunningCluster, settings: Any, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"]["token"] = "narrow-token"  # noqa: S105 - kubesim's test user
    narrow = tmp_path / "kubeconfig"
    narrow.write_text(yaml.safe_dump(config))
    _use_kubeconfig(narrow, settings)
    assert preflight_ephemeral("open", "web", container("baseline"), []) == (
        "Ephemera's service account may not do this in the cluster: "
        'User "narrow" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "open"'
    )


# --- no answer -----------------------------------------------------------------------------------


def test_a_cluster_in_trouble_raises_for_the_caller_to_decide(cluster: RunningCluster) -> None:
    cluster.faults.add(503, method="PATCH", path="/ephemeralcontainers$", message="etcdserver: request timed out")
    with pytest.raises(KubeUnavailable, match="HTTP 503"):
        preflight_ephemeral("open", "web", container("baseline"), [])


def test_an_unreachable_cluster_raises(cluster: RunningCluster, settings: Any, tmp_path: Path) -> None:
    text = Path(cluster.kubeconfig).read_text().replace(cluster.url, "https://127.0.0.1:1")
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    _use_kubeconfig(path, settings)
    with pytest.raises(KubeUnavailable, match="cannot reach the cluster"):
        preflight_node_pod("default", node_pod("baseline"))


def test_a_webhook_that_cannot_dry_run_is_inconclusive_not_a_refusal(cluster: RunningCluster) -> None:
    # The apiserver refuses every dry run that reaches a webhook without sideEffects None/NoneOnDryRun.
    cluster.faults.add(
        400, method="POST", path="/pods$", message='admission webhook "audit.example.com" does not support dry run'
    )
    with pytest.raises(PreflightInconclusive, match='admission webhook "audit.example.com" does not support dry run'):
        preflight_node_pod("default", node_pod("baseline"))


# --- the demo cluster (tests/conftest.py's fixtures) ---------------------------------------------


def test_the_demo_nginx_pod_takes_any_profile(kube: Any, nginx_pod: str) -> None:
    # The shared cluster may carry other tests' debug containers: the dry runs must add none.
    before = ephemeral_names("default", nginx_pod)
    for profile in ("general", "sysadmin"):
        assert preflight_ephemeral("default", nginx_pod, container(profile, target="distroless-nginx-ctr"), before) is None
    assert ephemeral_names("default", nginx_pod) == before


def test_the_demo_payments_namespace_once_it_enforces_baseline(fresh_kube: Any) -> None:
    labelled = fresh_kube.kubectl("label", "namespace", "payments", "pod-security.kubernetes.io/enforce=baseline")
    assert labelled.returncode == 0, labelled.stderr
    pod = "payments-api-5f7b9c6d4-q8wzt"
    assert preflight_ephemeral("payments", pod, container("sysadmin", target="api"), []) == (
        "namespace payments enforces Pod Security baseline: profile sysadmin is not allowed; try baseline"
    )
    assert preflight_ephemeral("payments", pod, container("baseline", target="api"), []) is None
    assert ephemeral_names("payments", pod) == []


@pytest.mark.parametrize(("image", "limited"), [
    ("busybox", True), ("busybox:1.36", True), ("docker.io/library/alpine:3.20", True),
    ("gcr.io/distroless/base:debug-nonroot", True), ("gcr.io/distroless/static-debian12:debug", True),
    ("gcr.io/distroless/base:nonroot", False),  # no shell at all
    ("nicolaka/netshoot:v0.13", False), ("evil.example/gcr.io/distroless/base:debug", False),
])
def test_the_in_cluster_time_limit_wraps_only_images_known_to_have_busybox(image: str, limited: bool) -> None:
    from portal.kube import specs

    command = specs.time_limited_command(image, 600)
    assert command == (["timeout", "-s", "KILL", "600", "sh"] if limited else None)
