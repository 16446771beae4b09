"""Unit tests of the pure pieces: selectors, patches, validation messages, pod status, tables."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim import podstatus, tables
from kubesim.errors import ApiError, invalid
from kubesim.patch import apply_patch
from kubesim.selectors import fields_match, labels_match, parse_fields, parse_labels
from kubesim.validation import default_pull_policy, validate_ephemeral_update


def obj(labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "labels": labels or {}}, **fields}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("tier in (a,b)", {"tier": "b"}, True),
        ("tier in (a, b)", {}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("app=web,!canary,env in (prod)", {"app": "web", "env": "prod"}, True),
        ("app=web,!canary,env in (prod)", {"app": "web", "env": "prod", "canary": "1"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_labels(selector), obj(labels)) is expected


def test_bad_label_selector_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        parse_labels("app in (a")
    assert err.value.code == 400


def test_field_selectors() -> None:
    pod = obj(spec={"nodeName": "debian-11"}, status={"phase": "Running"})
    assert fields_match("pods", parse_fields("pods", "spec.nodeName=debian-11,status.phase!=Pending"), pod)
    assert not fields_match("pods", parse_fields("pods", "metadata.name=q"), pod)
    with pytest.raises(ApiError) as err:
        parse_fields("pods", "spec.hostname=x")
    assert err.value.code == 400 and "field label not supported: spec.hostname" in err.value.message


def test_strategic_merge_by_name_and_json_patch() -> None:
    pod = {"spec": {"ephemeralContainers": [{"name": "a", "image": "x"}], "containers": [{"name": "c", "image": "i"}]}}
    merged = apply_patch(
        "application/strategic-merge-patch+json",
        pod,
        {
            "$setElementOrder/ephemeralContainers": [{"name": "a"}, {"name": "b"}],
            "spec": {"ephemeralContainers": [{"name": "b", "image": "y"}]},
        },
    )
    assert [c["name"] for c in merged["spec"]["ephemeralContainers"]] == ["a", "b"]
    assert merged["spec"]["containers"] == pod["spec"]["containers"]
    replaced = apply_patch("application/merge-patch+json", pod, {"spec": {"ephemeralContainers": [{"name": "b"}]}})
    assert replaced["spec"]["ephemeralContainers"] == [{"name": "b"}]
    patched = apply_patch(
        "application/json-patch+json",
        pod,
        [
            {"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "z"}},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "j"},
            {"op": "test", "path": "/spec/containers/0/name", "value": "c"},
        ],
    )
    assert [c["name"] for c in patched["spec"]["ephemeralContainers"]] == ["a", "z"]
    assert patched["spec"]["containers"][0]["image"] == "j"
    assert pod["spec"]["containers"][0]["image"] == "i"  # the input is untouched
    with pytest.raises(ApiError) as err:
        apply_patch("application/json-patch+json", pod, [{"op": "remove", "path": "/spec/nothing/0"}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        apply_patch("application/yaml", pod, {})
    assert err.value.code == 415


def test_pull_policy_defaults() -> None:
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("busybox:latest") == "Always"
    assert default_pull_policy("busybox:1.36") == "IfNotPresent"
    assert default_pull_policy("localhost:5000/busybox") == "Always"
    assert default_pull_policy("busybox@sha256:abc") == "IfNotPresent"


def test_invalid_message_aggregates_like_apimachinery() -> None:
    old = {"spec": {"containers": [{"name": "app", "image": "x"}]}}
    new = {
        "spec": {
            "containers": [{"name": "app", "image": "x"}],
            "ephemeralContainers": [
                {"name": "app", "image": "busybox", "resources": {"limits": {"cpu": "1"}}, "lifecycle": {"preStop": {}}}
            ],
        }
    }
    err = invalid("Pod", "web", validate_ephemeral_update(old, new))
    assert err.code == 422
    assert err.message == (
        'Pod "web" is invalid: [spec.ephemeralContainers[0].name: Duplicate value: "app", '
        "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container, "
        "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container]"
    )


def _pod_with(states: list[dict[str, Any]], policy: str = "Always") -> dict[str, Any]:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"restartPolicy": policy, "containers": [{"name": f"c{i}", "image": "x"} for i in range(len(states))]},
    }
    pod["status"] = podstatus.initial_status(pod, "192.168.56.11", "10.244.0.5")
    for i, state in enumerate(states):
        podstatus.merge_container_status(
            pod,
            "container",
            {"name": f"c{i}", "image": "x", "imageID": "", "ready": "running" in state, "restartCount": 0, "state": state},
        )
    return pod


def test_phase_and_conditions() -> None:
    running = _pod_with([{"running": {}}, {"running": {}}])
    assert running["status"]["phase"] == "Running"
    conds = {c["type"]: c["status"] for c in running["status"]["conditions"]}
    assert conds == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    half = _pod_with([{"running": {}}, {"waiting": {"reason": "ImagePullBackOff"}}])
    ready = next(c for c in half["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [c1]"
    assert tables.table("pods", [half], "1")["rows"][0]["cells"][1:3] == ["1/2", "ImagePullBackOff"]
    assert _pod_with([{"terminated": {"exitCode": 0}}], "Never")["status"]["phase"] == "Succeeded"
    assert _pod_with([{"terminated": {"exitCode": 2}}], "Never")["status"]["phase"] == "Failed"
    assert _pod_with([{"waiting": {"reason": "ContainerCreating"}}])["status"]["phase"] == "Pending"


def test_human_age() -> None:
    assert tables.human_age(None) == "<unknown>"
    assert tables.human_age("2000-01-01T00:00:00Z").endswith("d")


def test_wants_table() -> None:
    assert tables.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not tables.wants_table("application/json")
    assert not tables.wants_table("application/vnd.kubernetes.protobuf,application/json")
