"""The one seam to Kubernetes: everything that talks to a cluster goes through this package."""

from portal.kube.client import ContainerState, KubeClient, NodeInfo, PodInfo, get_client, reset_client
from portal.kube.errors import KubeError, KubeForbidden, KubeInvalid, KubeNotFound, KubeTimeout, KubeUnavailable
from portal.kube.sessions import StopFailed, stop_debug_container
from portal.kube.specs import ephemeral_container, random_container_name

__all__ = [
    "ContainerState",
    "KubeClient",
    "KubeError",
    "KubeForbidden",
    "KubeInvalid",
    "KubeNotFound",
    "KubeTimeout",
    "KubeUnavailable",
    "NodeInfo",
    "PodInfo",
    "ephemeral_container",
    "get_client",
    "random_container_name",
    "reset_client",
    "StopFailed",
    "stop_debug_container",
]
