"""portal.kube against kubesim: reads, and every error mapped to a clear exception."""

from __future__ import annotations

from typing import Any

import pytest

from portal.kube import KubeForbidden, KubeInvalid, KubeNotFound, KubeUnavailable, get_client


def test_it_lists_namespaces_pods_and_nodes(kube: Any) -> None:
    client = get_client()
    assert {"default", "payments", "kube-system"} <= set(client.list_namespaces())
    pods = client.list_pods("default")
    nginx = next(p for p in pods if p.name.startswith("distroless-nginx-"))
    assert nginx.phase == "Running"
    assert [(c.name, c.image) for c in nginx.containers] == [("distroless-nginx-ctr", "cgr.dev/chainguard/nginx")]
    assert client.get_pod("default", nginx.name).name == nginx.name
    assert {"debian-11", "debian-12"} <= {n.name for n in client.list_nodes()}


def test_a_missing_pod_is_kube_not_found(kube: Any) -> None:
    with pytest.raises(KubeNotFound, match="pod default/ghost does not exist"):
        get_client().get_pod("default", "ghost")


def test_403_names_the_missing_permission(kube: Any) -> None:
    kube.faults.add(
        403,
        path="^/api/v1/nodes$",
        message='nodes is forbidden: User "system:serviceaccount:ephemera:portal" cannot list resource "nodes" in API group "" at the cluster scope',
    )
    with pytest.raises(KubeForbidden) as info:
        get_client().list_nodes()
    assert 'cannot list resource "nodes"' in info.value.message


def test_5xx_is_unavailable(kube: Any) -> None:
    kube.faults.add(503, path="^/api/v1/namespaces$", message="overloaded")
    with pytest.raises(KubeUnavailable, match="HTTP 503.*overloaded"):
        get_client().list_namespaces()


def test_an_invalid_container_is_kube_invalid(kube: Any, nginx_pod: str) -> None:
    # A port on an ephemeral container is forbidden: the apiserver answers 422.
    bad = {
        "name": "debugger-xxxxx",
        "image": "busybox",
        "ports": [{"containerPort": 80}],
        "stdin": True,
        "targetContainerName": "distroless-nginx-ctr",
    }
    with pytest.raises(KubeInvalid):
        get_client().add_ephemeral_container("default", nginx_pod, bad)


def test_an_unreachable_cluster_is_unavailable(kube: Any, settings: Any, tmp_path: Any) -> None:
    from portal.kube import config, reset_client

    text = open(kube.kubeconfig).read().replace(kube.url, "https://127.0.0.1:1")
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    settings.EPHEMERA_KUBECONFIG = str(path)
    config.reset()
    reset_client()
    with pytest.raises(KubeUnavailable, match="cannot reach the cluster"):
        get_client().list_namespaces()
