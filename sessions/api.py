"""JSON API for debug sessions: list them, read one, end one, ask for more time and decide on it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api import conflict_response, parsed, validation_response
from approvals.choices import RequestKind
from approvals.serializers import CommentSerializer, SessionSerializer
from portal import permissions
from portal.audit import AuditOrigin
from portal.sso import stepup
from sessions import extensions, selectors, services
from sessions.choices import SessionStatus
from sessions.models import DebugSession, SessionExtension
from sessions.running.selectors import RunningFilters, running_sessions
from sessions.running.serializers import RunningSessionSerializer
from sessions.serializers import EndSerializer, ExtendSerializer, ExtensionSerializer


def _visible_or_404(request: Request, session_id: Any) -> DebugSession:
    try:
        return selectors.get_visible_session(request.user, session_id)
    except DebugSession.DoesNotExist:
        raise NotFound("No such session.") from None


class SessionListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(SessionStatus.values), description="Default: running."),
            OpenApiParameter("namespace", str, description="The target's namespace, exactly."),
            OpenApiParameter("requester", str, description="The requester's username, exactly."),
            OpenApiParameter("kind", str, enum=list(RequestKind.values)),
        ],
        responses={200: RunningSessionSerializer(many=True), 400: None},
        summary="Sessions in your scope, newest first (at most 200): all for auditors and admins, the ones whose "
        "rule you approve for approvers, your own for everyone",
    )
    def get(self, request: Request) -> Response:
        filters, errors = RunningFilters.parse(request.query_params)
        if errors:
            return Response(errors, status=400)
        return Response(RunningSessionSerializer(running_sessions(request.user, filters), many=True).data)


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
        data = parsed(EndSerializer, request)
        # `reason` is the documented field; `comment` is accepted as the older name.
        comment = data["reason"] or data["comment"]
        try:
            session = services.session_end(
                session_id=session.pk,
                actor=request.user,
                reason=services.end_reason_for(request.user, session),
                origin=AuditOrigin.from_request(request._request),
                comment=comment,
                cluster="background",  # answer now; the session's page and JSON show the stop's progress
            )
        except ValidationError as exc:
            return validation_response(exc)
        return Response(SessionSerializer(selectors.get_visible_session(request.user, session.pk)).data)


def _extension_or_404(request: Request, extension_id: Any) -> SessionExtension:
    ext = SessionExtension.objects.select_related("session__request").filter(pk=extension_id).first()
    if ext is None or not permissions.can_view_request(request.user, ext.session.request):
        raise NotFound("No such extension.")
    return ext


class SessionExtendView(APIView):
    @extend_schema(
        request=ExtendSerializer,
        responses={201: ExtensionSerializer, 400: None, 403: None, 404: None, 409: None},
        summary="Ask for more time on your running session (needs an approver)",
    )
    def post(self, request: Request, pk: Any) -> Response:
        session = _visible_or_404(request, pk)
        data = parsed(ExtendSerializer, request)
        try:
            ext = extensions.extension_request(
                session_id=session.pk,
                user=request.user,
                minutes=data["minutes"],
                reason=data["reason"],
                origin=AuditOrigin.from_request(request._request),
            )
        except ValidationError as exc:
            return validation_response(exc)
        except extensions.ExtensionConflict as exc:
            return conflict_response(str(exc))
        return Response(ExtensionSerializer(ext).data, status=201)


class _ExtensionDecisionView(APIView):
    decide: Any = None

    def post(self, request: Request, pk: Any) -> Response:
        ext = _extension_or_404(request, pk)
        decide = type(self).decide
        extra = {"proof": stepup.proof_of(request)} if decide is extensions.extension_approve else {}
        try:
            ext = decide(
                extension_id=ext.pk,
                approver=request.user,
                comment=parsed(CommentSerializer, request)["comment"],
                origin=AuditOrigin.from_request(request._request),
                **extra,
            )
        except ValidationError as exc:
            return validation_response(exc)
        except extensions.ExtensionConflict as exc:
            return conflict_response(str(exc))
        return Response(ExtensionSerializer(ext).data)


class ExtensionApproveView(_ExtensionDecisionView):
    decide = staticmethod(extensions.extension_approve)

    @extend_schema(request=CommentSerializer, responses={200: ExtensionSerializer, 403: None, 404: None, 409: None},
                   summary="Approve an extension: the session's time limit moves")
    def post(self, request: Request, pk: Any) -> Response:
        return super().post(request, pk)


class ExtensionDenyView(_ExtensionDecisionView):
    decide = staticmethod(extensions.extension_deny)

    @extend_schema(request=CommentSerializer, responses={200: ExtensionSerializer, 400: None, 403: None, 404: None,
                   409: None}, summary="Deny an extension (a comment is required)")
    def post(self, request: Request, pk: Any) -> Response:
        return super().post(request, pk)
