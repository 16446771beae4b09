"""JSON API for debug sessions: read one, end one."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.serializers import SessionSerializer
from portal import permissions
from portal.audit import AuditOrigin
from sessions import selectors, services
from sessions.models import DebugSession


def _visible_or_404(request: Request, session_id: Any) -> DebugSession:
    try:
        return selectors.get_visible_session(request.user, session_id)
    except DebugSession.DoesNotExist:
        raise NotFound("No such session.") from None


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionSerializer, 404: None})
    def get(self, request: Request, pk: Any) -> Response:
        return Response(SessionSerializer(_visible_or_404(request, pk)).data)


class SessionEndView(APIView):
    @extend_schema(
        request=None, responses={200: SessionSerializer, 403: None, 404: None}, summary="End the session and stop its shell"
    )
    def post(self, request: Request, pk: Any) -> Response:
        session = _visible_or_404(request, pk)
        if not permissions.can_end_session(request.user, session):
            raise PermissionDenied("You can't end this session.")
        comment = str(request.data.get("comment") or "") if hasattr(request.data, "get") else ""
        session = services.session_end(
            session_id=session.pk,
            actor=request.user,
            reason=services.end_reason_for(request.user, session),
            origin=AuditOrigin.from_request(request._request),
            comment=comment,
        )
        return Response(SessionSerializer(selectors.get_visible_session(request.user, session.pk)).data)
