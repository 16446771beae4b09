"""JSON API for debug sessions: read one, end one."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api import body, validation_response
from approvals.serializers import SessionSerializer
from portal import permissions
from portal.audit import AuditOrigin
from sessions import selectors, services
from sessions.models import DebugSession
from sessions.serializers import EndSerializer


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
        request=EndSerializer,
        responses={200: SessionSerializer, 400: None, 403: None, 404: None},
        summary="End the session and stop its shell (approvers and admins ending someone else's: reason required)",
    )
    def post(self, request: Request, pk: Any) -> Response:
        session = _visible_or_404(request, pk)
        if not permissions.can_end_session(request.user, session):
            raise PermissionDenied("You can't end this session.")
        data = body(request)
        # `reason` is the documented field; `comment` is accepted as the older name.
        comment = str(data.get("reason") or data.get("comment") or "")
        try:
            session = services.session_end(
                session_id=session.pk,
                actor=request.user,
                reason=services.end_reason_for(request.user, session),
                origin=AuditOrigin.from_request(request._request),
                comment=comment,
            )
        except ValidationError as exc:
            return validation_response(exc)
        return Response(SessionSerializer(selectors.get_visible_session(request.user, session.pk)).data)
