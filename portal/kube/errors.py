"""What can go wrong talking to the cluster, as exceptions whose message a person can act on.

Messages come from the apiserver's Status (which names the verb, resource and subject on a
403), never from request headers, so no credential can end up in one.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException


class KubeError(Exception):
    """Base class: the cluster could not do what was asked."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class KubeNotFound(KubeError):
    """The object (usually the pod) does not exist (any more)."""


class KubeForbidden(KubeError):
    """The portal's service account lacks a permission, or admission refused the change."""


class KubeInvalid(KubeError):
    """The apiserver rejected the object (422/400/409)."""


class KubeUnavailable(KubeError):
    """The apiserver can't be reached or answered with a server error."""


class KubeTimeout(KubeError):
    """Something we waited for didn't happen in time."""


def _status_message(exc: ApiException) -> str:
    body: Any = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return (exc.reason or "").strip() or f"HTTP {exc.status}"


def from_api_exception(exc: ApiException, *, doing: str) -> KubeError:
    """Turn a client exception into one of ours; `doing` says what we were trying to do."""
    status = exc.status or 0
    message = _status_message(exc)
    if status == 404:
        return KubeNotFound(message, status=status)
    if status == 401:
        return KubeForbidden(f"the cluster rejected the portal's credentials while {doing} (401 Unauthorized)", status=status)
    if status == 403:
        return KubeForbidden(f"forbidden while {doing}: {message}", status=status)
    if status in (400, 409, 422):
        return KubeInvalid(f"the cluster refused {doing}: {message}", status=status)
    if status == 0:
        return KubeUnavailable(f"cannot reach the cluster while {doing}: {message}", status=None)
    return KubeUnavailable(f"the cluster failed while {doing} (HTTP {status}): {message}", status=status)


def from_exception(exc: BaseException, *, doing: str) -> KubeError:
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        return from_api_exception(exc, doing=doing)
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return KubeUnavailable(f"the cluster did not answer in time while {doing}")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return KubeUnavailable(f"cannot reach the cluster while {doing}: {type(exc).__name__}")
    return KubeUnavailable(f"unexpected error while {doing}: {type(exc).__name__}: {exc}")
