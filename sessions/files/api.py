"""GET /api/v1/sessions/<id>/files?path=... (download) and POST ...?path=... (upload, raw body).

The checks happen before a byte moves: the session is visible (else 404), the caller is its
requester, it runs, the policy rule allows the direction (403, audited), the path is clean and
exists and may be read under the profile (400/404/403), a file is within the rule's max_mb (413).
Then the bytes stream: a download is an async iterator the ASGI server sends as it comes (a
failure after the first byte cuts the response short, and is audited as failed).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit import AuditOrigin
from portal.kube.config import load_connection
from portal.kube.errors import KubeError
from portal.kube.files import FileError, clean_path, inside, read_stream, stat_path, write_stream
from portal.kube.useragent import acting_for
from sessions.files import services
from sessions.files.models import FileTransfer
from sessions.files.services import Progress, TransferRefused
from sessions.models import DebugSession

MB = 1024 * 1024
READ_PIECE = 64 * 1024
PATH_PARAM = OpenApiParameter("path", str, required=True,
                              description="Absolute path: as the target sees it (download), in the debug container (upload).")


def _session(request: Request, pk: Any) -> DebugSession:
    from sessions.api import _visible_or_404

    return _visible_or_404(request, pk)


def _filename(path: str, archive: bool) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", path.rstrip("/").rsplit("/", 1)[-1]) or "root"
    return base + (".tar.gz" if archive else "")


def _refuse(request: Request, session: DebugSession, direction: str, path: str, exc: TransferRefused) -> Response:
    services.refused(user=request.user, session=session, direction=direction, path=path, why=exc.message,
                     origin=AuditOrigin.from_request(request._request))
    return Response({"detail": exc.message}, status=exc.status)


class RawBodyParser(BaseParser):
    """Accepts a raw upload without reading it: the view streams the body to the cluster itself.
    (DRF's CSRF check reads request.POST, which runs the parsers; this one leaves the body be.)"""

    media_type = "application/octet-stream"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, Any]:
        return {}


class SessionFilesView(APIView):
    parser_classes = [RawBodyParser]
    @extend_schema(parameters=[PATH_PARAM], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   summary="Download a file (or a directory as .tar.gz) of the target container's filesystem")
    def get(self, request: Request, pk: Any) -> Any:
        session = _session(request, pk)
        direction = FileTransfer.Direction.DOWNLOAD
        raw_path = str(request.query_params.get("path", ""))
        try:
            path = clean_path(raw_path)
        except FileError as exc:
            return Response({"path": [exc.message]}, status=400)
        try:
            rules = services.check_allowed(request.user, session, direction)
        except TransferRefused as exc:
            return _refuse(request, session, direction, path, exc)
        username = request.user.get_username()
        try:
            with acting_for(session.pk, username):
                where = inside(services.resolve_root(session), path)
                info = stat_path(session.namespace, session.pod, session.container_name, where)
        except FileError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        except KubeError as exc:
            return Response({"detail": f"The cluster can't be asked about the target: {exc.message}"}, status=502)
        cap = rules.max_mb * MB
        if info.size is not None and info.size > cap:
            return Response({"detail": f"The file is {info.size} bytes: over this rule's limit of {rules.max_mb} MB."},
                            status=413)
        archive = info.kind == "dir"
        origin = AuditOrigin.from_request(request._request)
        transfer = services.start(user=request.user, session=session, direction=direction, path=path, archive=archive,
                                  origin=origin)
        body = _download(session, username, where, archive, cap, Progress(transfer), origin)
        response = StreamingHttpResponse(body, content_type="application/gzip" if archive else "application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{_filename(path, archive)}"'
        if info.size is not None:
            response["Content-Length"] = str(info.size)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(parameters=[PATH_PARAM], request={"application/octet-stream": OpenApiTypes.BINARY},
                   responses={201: OpenApiTypes.OBJECT},
                   summary="Upload the request body as a file into the debug container")
    def post(self, request: Request, pk: Any) -> Response:
        session = _session(request, pk)
        direction = FileTransfer.Direction.UPLOAD
        try:
            path = clean_path(str(request.query_params.get("path", "")))
        except FileError as exc:
            return Response({"path": [exc.message]}, status=400)
        try:
            rules = services.check_allowed(request.user, session, direction)
        except TransferRefused as exc:
            return _refuse(request, session, direction, path, exc)
        cap = rules.max_mb * MB
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > cap:
            return Response({"detail": f"The file is {length} bytes: over this rule's limit of {rules.max_mb} MB."},
                            status=413)
        origin = AuditOrigin.from_request(request._request)
        # Uploads keep their size and sha256, not their bytes (they stay in the debug container).
        transfer = services.start(user=request.user, session=session, direction=direction, path=path, origin=origin)
        progress = Progress(transfer)

        def pieces() -> Iterator[bytes]:
            while data := request._request.read(READ_PIECE):
                if progress.size + len(data) > cap:
                    raise FileError(f"The file is over this rule's limit of {rules.max_mb} MB.", 413)
                progress.add(data)
                yield data

        try:
            with acting_for(session.pk, request.user.get_username()):
                asyncio.run(write_stream(load_connection(), namespace=session.namespace, pod=session.pod,
                                         container=session.container_name, path=path, chunks=pieces()))
        except FileError as exc:
            services.finish(progress, error=exc.message, origin=origin)
            return Response({"detail": exc.message}, status=exc.status)
        done = services.finish(progress, origin=origin)
        return Response({"path": done.path, "size": done.size, "sha256": done.sha256}, status=201)


async def _download(session: DebugSession, username: str, where: str, archive: bool, cap: int, progress: Progress,
                    origin: AuditOrigin) -> AsyncIterator[bytes]:
    error = ""
    try:
        with acting_for(session.pk, username):
            conn = await sync_to_async(load_connection, thread_sensitive=False)()
            async for chunk in read_stream(conn, namespace=session.namespace, pod=session.pod,
                                           container=session.container_name, path=where, archive=archive):
                if progress.size + len(chunk) > cap:
                    raise FileError(f"over this rule's limit of {cap // MB} MB", 413)
                await sync_to_async(progress.add)(chunk)
                yield chunk
    except FileError as exc:
        error = exc.message
        raise
    except (asyncio.CancelledError, GeneratorExit):
        error = "the download was cut short (the client went away)"
        raise
    finally:
        await sync_to_async(services.finish)(progress, error=error, origin=origin)
