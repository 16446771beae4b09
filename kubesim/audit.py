"""An audit log in kube-apiserver's format (audit.k8s.io/v1 Event, one JSON object per line)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from kubesim.routing import RequestInfo


def _micro(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: Path | str) -> None:
        self._file: IO[str] = open(path, "a", buffering=1)

    def record(
        self,
        request: web.Request,
        info: RequestInfo | None,
        username: str,
        code: int,
        received: datetime,
        body: Any,
    ) -> None:
        # The query string is logged as sent; the bearer token only ever travels in a header,
        # and headers are not logged.
        event: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": str(uuid.uuid4()),
            "stage": "ResponseComplete",
            "requestURI": request.path_qs,
            "verb": info.verb if info else request.method.lower(),
            "user": {"username": username, "groups": ["system:authenticated"] if username else []},
            "sourceIPs": [request.remote or ""],
            "userAgent": request.headers.get("User-Agent", ""),
        }
        if info and info.resource:
            ref: dict[str, Any] = {"resource": info.resource, "apiVersion": "v1"}
            if info.namespace:
                ref["namespace"] = info.namespace
            if info.name:
                ref["name"] = info.name
            if info.subresource:
                ref["subresource"] = info.subresource
            event["objectRef"] = ref
        event["responseStatus"] = {"metadata": {}, "code": code}
        if body is not None:
            event["requestObject"] = body
        event["requestReceivedTimestamp"] = _micro(received)
        event["stageTimestamp"] = _micro(datetime.now(UTC))
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
