"""The session page's Files panel, and the kept bytes of a transfer for those who review the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from portal import permissions
from portal.audit import AuditOrigin, record_event
from sessions.choices import SessionStatus
from sessions.files.models import FileTransfer, FileTransferChunk
from sessions.files.services import files_rules, target_root
from sessions.models import DebugSession


def files_context(user: Any, session: DebugSession, *, is_requester: bool) -> dict[str, Any]:
    rules = files_rules(session)
    running = is_requester and session.status == SessionStatus.RUNNING
    return {
        "files_download": running and rules.download,
        "files_upload": running and rules.upload,
        "files_max_mb": rules.max_mb,
        "files_root": target_root(session),
        "files_can_view": permissions.can_view_recording(user, session),
        "transfers": list(FileTransfer.objects.filter(session=session).select_related("actor").order_by("started_at")),
    }


def _chunk_ids(transfer: FileTransfer) -> list[int]:
    return list(FileTransferChunk.objects.filter(transfer=transfer).order_by("seq").values_list("pk", flat=True))


def _chunk(pk: int) -> bytes:
    return bytes(FileTransferChunk.objects.values_list("data", flat=True).get(pk=pk))


def _sync_bytes(ids: list[int]) -> Iterator[bytes]:
    for pk in ids:
        yield _chunk(pk)


async def _async_bytes(ids: list[int]) -> AsyncIterator[bytes]:
    for pk in ids:
        yield await sync_to_async(_chunk)(pk)


class TransferContentView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   summary="The kept bytes of a file that left the cluster (who may see the session's recording)")
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        transfer = FileTransfer.objects.select_related("session__request").filter(pk=pk).first()
        if transfer is None or not permissions.can_view_recording(request.user, transfer.session):
            raise NotFound("No such file transfer.")
        if not transfer.kept or transfer.outcome != FileTransfer.Outcome.DONE:
            raise NotFound("This transfer's bytes were not kept.")
        with transaction.atomic():
            # Seeing what left the cluster is access to it as well: audited like a recording read.
            record_event(action="session.file_viewed", actor=request.user, request=transfer.session.request,
                         session=transfer.session, origin=AuditOrigin.from_request(request._request),
                         data={"transfer": transfer.pk, "path": transfer.path})
        ids = _chunk_ids(transfer)
        content: Any = _async_bytes(ids) if isinstance(request._request, ASGIRequest) else _sync_bytes(ids)
        response = StreamingHttpResponse(content, content_type="application/gzip" if transfer.archive else "application/octet-stream")
        name = transfer.path.rstrip("/").rsplit("/", 1)[-1] or "root"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) + (".tar.gz" if transfer.archive else "")
        response["Content-Disposition"] = f'attachment; filename="{safe}"'
        response["Content-Length"] = str(transfer.size)
        response["Cache-Control"] = "private, no-store"
        return response
