"""Writes the kubeconfig that points kubectl and the Python client at kubesim."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from kubesim.tls import write_private


def render(url: str, token: str, ca_pem: bytes | None, namespace: str = "default") -> str:
    cluster: dict[str, object] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": cluster}],
        "users": [{"name": "kubesim", "user": {"token": token}}],
        "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim", "namespace": namespace}}],
        "current-context": "kubesim",
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, url: str, token: str, ca_pem: bytes | None) -> None:
    # 0600: the file holds the admin token.
    write_private(path, render(url, token, ca_pem).encode())
