"""kubesim's container runtime: "containers" are local processes, attach/exec are channel websockets.

The API server uses exactly this surface; see runtime.Runtime for the methods.
"""

from .container import ContainerKey, StatusCallback
from .runtime import Runtime

__all__ = ["ContainerKey", "Runtime", "StatusCallback"]
