"""The tiny image catalog: what a container "is" is decided by its image name alone."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .ids import image_digest


class ImageKind(enum.Enum):
    SHELL = "shell"  # busybox, alpine, netshoot...: the command runs on the host
    DISTROLESS_NGINX = "distroless-nginx"  # fake nginx, no shell, exec fails like runc
    PULL_ERROR = "pull-error"  # never pulls: ErrImagePull / ImagePullBackOff
    CRASHLOOP = "crashloop"  # exits 1 after about a second


NONROOT = 65532  # distroless' and Chainguard's "nonroot" user


@dataclass(frozen=True)
class Image:
    reference: str  # what the pod spec said
    normalized: str  # docker.io/library/busybox:latest, as containerd reports it in status.image
    kind: ImageKind

    @property
    def user(self) -> int:
        """The uid the image's config runs as: nonroot for the distroless nginx and for images
        named like distroless' non-root variants (gcr.io/distroless/base:debug-nonroot: a busybox
        shell as uid 65532), root (an empty USER) for the rest, busybox included."""
        if self.kind is ImageKind.DISTROLESS_NGINX or "nonroot" in self.reference.lower():
            return NONROOT
        return 0

    @property
    def image_id(self) -> str:
        repo = self.normalized.rsplit(":", 1)[0] if "@" not in self.normalized else self.normalized.split("@")[0]
        return f"{repo}@{image_digest(self.normalized)}"


def normalize(reference: str) -> str:
    """Docker-style reference normalization (docker.io/library/ prefix, :latest tag)."""
    name = reference
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        name += ":latest"
    return name


def classify(reference: str) -> ImageKind:
    lowered = reference.lower()
    if "does-not-exist" in lowered:
        return ImageKind.PULL_ERROR
    if "crashloop" in lowered:
        return ImageKind.CRASHLOOP
    if "nginx" in lowered and ("distroless" in lowered or "chainguard" in lowered):
        return ImageKind.DISTROLESS_NGINX
    return ImageKind.SHELL


def resolve(reference: str) -> Image:
    return Image(reference=reference, normalized=normalize(reference), kind=classify(reference))


def run_as_non_root_error(pod: dict, spec: dict, image: Image) -> str | None:
    """The kubelet's verifyRunAsNonRoot: why this container may not start, or None.

    With runAsNonRoot (the container's securityContext over the pod's), an explicit runAsUser
    must not be 0, and without one the image's own user must not be root. kubectl debug's
    `restricted` profile sets runAsNonRoot, so on a cluster `--profile=restricted
    --image=busybox` stays in CreateContainerConfigError with this message.
    """
    meta = pod.get("metadata", {})
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = spec.get("securityContext") or {}
    if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
        return None
    who = f'(pod: "{meta.get("name")}_{meta.get("namespace", "default")}({meta.get("uid", "")})", container: {spec.get("name")})'
    run_as = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if run_as is not None:
        return f"container's runAsUser breaks non-root policy {who}" if int(run_as) == 0 else None
    if image.user == 0:
        return f"container has runAsNonRoot and image will run as root {who}"
    return None


def pull_error_message(image: Image) -> str:
    # The text containerd gives for a repository that does not exist on Docker Hub.
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image.normalized}": '
        f'failed to resolve reference "{image.normalized}": {image.normalized}: not found'
    )
