"""Pod Security admission in enforce mode: what debugging profiles run into in a locked-down namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubesim.testing import RunningCluster, run_cluster

pytestmark = [pytest.mark.timeout(60)]

STATE = {
    "namespaces": [
        "default",
        {"metadata": {"name": "secure", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
        {"metadata": {"name": "strict", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    ],
    "pods": [
        {
            "metadata": {"name": "web", "namespace": "secure"},
            "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "300"]}]},
        },
    ],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster(tmp_path_factory.mktemp("psa"), state=STATE) as c:
        yield c


def test_general_profile_needs_sys_ptrace_which_baseline_refuses(cluster: RunningCluster) -> None:
    result = cluster.kubectl("debug", "-n", "secure", "web", "-c", "dbg", "--image=busybox", "--target=app")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods "web" is forbidden: violates PodSecurity "baseline:latest": '
        'non-default capabilities (container "dbg" must not include "SYS_PTRACE" in securityContext.capabilities.add)'
    )
    ok = cluster.kubectl("debug", "-n", "secure", "web", "-c", "dbg2", "--image=busybox", "--profile=baseline", "--", "true")
    assert ok.returncode == 0, ok.stderr


def test_node_debugging_is_refused_in_a_baseline_namespace(cluster: RunningCluster) -> None:
    result = cluster.kubectl("debug", "-n", "secure", "node/debian-11", "--image=busybox", "--profile=sysadmin", "--", "true")
    assert result.returncode == 1
    assert (
        'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true, hostIPC=true), '
        in result.stderr
    )
    assert (
        'hostPath volumes (volume "host-root"), privileged (container "debugger" must not set securityContext.privileged=true)'
        in (result.stderr)
    )


def test_restricted_needs_the_restricted_profile(cluster: RunningCluster) -> None:
    pod = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}'
    # kubectl create validates against OpenAPI, which kubesim does not serve.
    result = cluster.kubectl("create", "--validate=false", "-n", "strict", "-f", "-", input=pod)
    assert result.returncode == 1
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in result.stderr
    assert 'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)' in result.stderr
