"""A request names a node or a pod, never both: both is a 400 that writes nothing.

Before, `{node, namespace, pod, container}` became a node request (host namespaces, a
node-debugger pod) with a 201, dropping the pod the requester named without a word.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import DebugRequest
from portal.models import AuditEvent
from tests.conftest import TARGET_CONTAINER

pytestmark = pytest.mark.django_db

NODE = "debian-11"
BOTH = "either a node or a pod"


def _common() -> dict[str, Any]:
    return {"image": "busybox", "profile": "sysadmin", "reason": "INC-1 node or pod?", "duration_minutes": 10}


def _pod(nginx_pod: str) -> dict[str, str]:
    return {"namespace": "default", "pod": nginx_pod, "container": TARGET_CONTAINER}


@pytest.mark.parametrize(
    "extra",
    [
        {},  # no kind: the API used to infer "node" from the node field and drop the pod
        {"kind": "node"},
        {"kind": "pod"},
    ],
    ids=["no-kind", "kind-node", "kind-pod"],
)
def test_api_refuses_a_node_and_a_pod_together(extra: dict[str, str], alice: Any, api_client_for: Any, nginx_pod: str) -> None:
    body = {**_common(), **_pod(nginx_pod), "node": NODE, **extra}
    resp = api_client_for(alice).post("/api/v1/requests", body, format="json")
    assert resp.status_code == 400, resp.content
    assert any(BOTH in message for message in resp.json()["node"]), resp.json()
    assert not DebugRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="request.").exists()


@pytest.mark.parametrize("field", ["namespace", "pod", "container"])
def test_api_refuses_a_node_request_with_any_pod_field(field: str, alice: Any, api_client_for: Any, nginx_pod: str) -> None:
    body = {**_common(), "node": NODE, field: _pod(nginx_pod)[field]}
    resp = api_client_for(alice).post("/api/v1/requests", body, format="json")
    assert resp.status_code == 400, resp.content
    assert any(BOTH in message for message in resp.json()["node"]), resp.json()
    assert not DebugRequest.objects.exists()


def test_api_still_takes_a_node_alone_and_a_pod_alone(alice: Any, api_client_for: Any, nginx_pod: str) -> None:
    client = api_client_for(alice)
    # Empty pod fields next to a node are "not given" (what a client filling every key sends).
    node = client.post("/api/v1/requests", {**_common(), "node": NODE, "namespace": "", "pod": ""}, format="json")
    assert node.status_code == 201, node.content
    assert (node.json()["kind"], node.json()["node"], node.json()["pod"]) == ("node", NODE, "")
    pod = client.post("/api/v1/requests", {**_common(), **_pod(nginx_pod), "node": ""}, format="json")
    assert pod.status_code == 201, pod.content
    assert (pod.json()["kind"], pod.json()["node"], pod.json()["pod"]) == ("pod", "", nginx_pod)


@pytest.mark.parametrize("kind", ["node", "pod"])
def test_the_form_refuses_a_node_and_a_pod_together(kind: str, alice: Any, nginx_pod: str) -> None:
    client = Client()
    client.force_login(alice)
    post = {**{k: str(v) for k, v in _common().items()}, **_pod(nginx_pod), "node": NODE, "kind": kind}
    resp = client.post(reverse("request_new"), post)
    assert resp.status_code == 400
    form = resp.context["form"]
    assert any(BOTH in message for message in form.errors["node"])
    # The node field is hidden on a pod request's page: there the message is shown at the top too.
    assert any(BOTH in message for message in form.non_field_errors()) == (kind == "pod")
    assert BOTH in resp.content.decode()
    assert not DebugRequest.objects.exists()
