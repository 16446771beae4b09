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


@dataclass(frozen=True)
class Image:
    reference: str  # what the pod spec said
    normalized: str  # docker.io/library/busybox:latest, as containerd reports it in status.image
    kind: ImageKind

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


def pull_error_message(image: Image) -> str:
    # The text containerd gives for a repository that does not exist on Docker Hub.
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image.normalized}": '
        f'failed to resolve reference "{image.normalized}": {image.normalized}: not found'
    )
