"""GET /api/v1/sessions/<id>/recording.cast: the recording as an asciicast v2 file, streamed."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from portal import permissions
from portal.audit import AuditOrigin
from sessions import selectors as session_selectors
from sessions.models import DebugSession
from sessions.recording import selectors
from sessions.recording.services import recording_accessed

CAST_TYPE = "application/x-asciicast"


def cast_response(http_request: Any, session: DebugSession) -> StreamingHttpResponse:
    """Stream the chunks as they are read (never the whole recording in memory)."""
    sid = str(session.pk)
    title = f"{session.request.requester.get_username()} on {session.request.target_label}"
    if isinstance(http_request, ASGIRequest):
        content: Any = selectors.aiter_cast(sid, title=title)
    else:
        content = selectors.iter_cast(sid, title=title)
    response = StreamingHttpResponse(content, content_type=CAST_TYPE)
    response["Content-Disposition"] = f'attachment; filename="ephemera-session-{sid}.cast"'
    response["Cache-Control"] = "private, no-store"
    return response


class RecordingCastView(APIView):
    @extend_schema(
        responses={(200, CAST_TYPE): OpenApiResponse(description="asciicast v2"), 403: None, 404: None},
        summary="Download the session's recording (auditors, admins and the requester)",
    )
    def get(self, request: Request, pk: Any) -> StreamingHttpResponse:
        try:
            session = session_selectors.get_visible_session(request.user, pk)
        except DebugSession.DoesNotExist:
            raise NotFound("No such session.") from None
        if not permissions.can_view_recording(request.user, session):
            raise PermissionDenied("Only auditors, admins and the requester may see this recording.")
        if selectors.recording_of(str(session.pk)) is None:
            raise NotFound("This session has no recording (its terminal was never opened).")
        recording_accessed(session=session, user=request.user, origin=AuditOrigin.from_request(request._request))
        return cast_response(request._request, session)
