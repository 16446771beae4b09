"""Where the cluster is and how to authenticate: from KUBECONFIG, or in-cluster.

The credentials loaded here stay in this process: `KubeConnection.__repr__` hides them so
they can't reach a log line, and nothing here is ever sent to a browser.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field

from django.conf import settings
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException


class KubeConfigError(Exception):
    """The cluster connection cannot be configured (bad or missing kubeconfig)."""


@dataclass(frozen=True)
class KubeConnection:
    """Everything needed to open an HTTP or websocket connection to the apiserver."""

    base_url: str  # e.g. https://127.0.0.1:6443, no trailing slash
    headers: dict[str, str] = field(repr=False)  # Authorization, never logged
    ssl_context: ssl.SSLContext | None = field(repr=False)  # None for plain http
    api_client_config: k8s_client.Configuration = field(repr=False, compare=False)


_lock = threading.Lock()
_cached: KubeConnection | None = None


def load_connection() -> KubeConnection:
    """The process-wide connection, loaded once (call `reset()` after changing settings)."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = _load()
        return _cached


def reset() -> None:
    """Forget the loaded connection (tests point the portal at a new kubesim)."""
    global _cached
    with _lock:
        _cached = None


def _load() -> KubeConnection:
    cfg = k8s_client.Configuration()
    try:
        if settings.EPHEMERA_KUBECONFIG:
            k8s_config.load_kube_config(
                config_file=settings.EPHEMERA_KUBECONFIG,
                context=settings.EPHEMERA_KUBE_CONTEXT or None,
                client_configuration=cfg,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        where = f"KUBECONFIG={settings.EPHEMERA_KUBECONFIG}" if settings.EPHEMERA_KUBECONFIG else "in-cluster service account"
        raise KubeConfigError(f"cannot load the cluster configuration ({where}): {exc}") from exc

    headers: dict[str, str] = {}
    auth = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
    if auth:
        headers["Authorization"] = auth
    return KubeConnection(
        base_url=cfg.host.rstrip("/"),
        headers=headers,
        ssl_context=_ssl_context(cfg) if cfg.host.startswith("https://") else None,
        api_client_config=cfg,
    )


def _ssl_context(cfg: k8s_client.Configuration) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else ssl.create_default_context()
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file and cfg.key_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx
