"""JSON API for debug requests: thin views over approvals.services and approvals.selectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, services
from approvals.models import DebugRequest
from approvals.serializers import (
    CommentSerializer,
    PolicySerializer,
    RequestCreateSerializer,
    RequestSerializer,
    copy_arguments,
)
from portal.audit import AuditOrigin
from portal.sso import stepup

_ERRORS = OpenApiResponse(description="{field: [messages]}")


def validation_response(exc: ValidationError) -> Response:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    body = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in errors.items()}
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


def conflict_response(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def body(request: Request) -> dict[str, Any]:
    if request.data is None or request.data == {}:
        return {}
    if not hasattr(request.data, "get") or isinstance(request.data, list | str):
        raise ParseError("The request body must be a JSON object.")
    return request.data  # type: ignore[no-any-return]


def parsed(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The body checked for form only (types, allowed characters): a 400 naming each bad field.

    Runs before any service, so a refused body writes nothing. A null text is "" (not given).
    """
    serializer = serializer_class(data=body(request))
    serializer.is_valid(raise_exception=True)
    text = {name for name, field in serializer.fields.items() if isinstance(field, serializers.CharField)}
    return {k: ("" if v is None and k in text else v) for k, v in serializer.validated_data.items()}


def visible_or_404(request: Request, request_id: Any) -> DebugRequest:
    try:
        return selectors.get_visible_request(request.user, request_id)
    except DebugRequest.DoesNotExist:
        raise NotFound("No such request.") from None


def _detail(request_id: Any, request: Request) -> Response:
    return Response(RequestSerializer(visible_or_404(request, request_id)).data)


class RequestListView(APIView):
    @extend_schema(responses=RequestSerializer(many=True), summary="Requests you may see, newest first")
    def get(self, request: Request) -> Response:
        services.expire_pending()
        return Response(RequestSerializer(selectors.visible_requests(request.user)[:200], many=True).data)

    @extend_schema(
        request=RequestCreateSerializer, responses={201: RequestSerializer, 400: _ERRORS}, summary="Ask for debug access"
    )
    def post(self, request: Request) -> Response:
        data = parsed(RequestCreateSerializer, request)
        # `{node, ...}` alone is a node request, `{copy_of, ...}` a copy; `kind` may still say so
        # explicitly. A node next to pod fields is refused by the validation, whatever the kind says.
        kind, pod, copy = copy_arguments(data)
        try:
            req = services.request_create(
                requester=request.user,
                kind=kind,
                copy=copy,
                namespace=data["namespace"],
                pod=pod,
                container=data["container"],
                node=data["node"],
                image=data["image"],
                profile=data["profile"] or "general",
                reason=data["reason"],
                duration_minutes=data["duration_minutes"],
                ticket=data["ticket"],
                origin=AuditOrigin.from_request(request._request),
            )
        except ValidationError as exc:
            return validation_response(exc)
        return Response(
            RequestSerializer(selectors.get_visible_request(request.user, req.pk)).data, status=status.HTTP_201_CREATED
        )


class RequestPreviewView(APIView):
    @extend_schema(
        request=RequestCreateSerializer,
        responses={200: inline_serializer("Preview", {"policy": PolicySerializer()}), 400: _ERRORS},
        summary="What the policy would apply to this request (writes nothing)",
    )
    def post(self, request: Request) -> Response:
        data = parsed(RequestCreateSerializer, request)
        kind, pod, copy = copy_arguments(data)
        try:
            view = services.request_preview(
                requester=request.user,
                kind=kind, copy=copy,
                namespace=data["namespace"], pod=pod, container=data["container"], node=data["node"],
                image=data["image"], profile=data["profile"] or "general", reason=data["reason"],
                duration_minutes=data["duration_minutes"], ticket=data["ticket"],
            )
        except ValidationError as exc:
            return validation_response(exc)
        return Response({"policy": view})


class RequestDetailView(APIView):
    @extend_schema(responses={200: RequestSerializer, 404: OpenApiResponse(description="not found or not yours to see")})
    def get(self, request: Request, pk: Any) -> Response:
        return _detail(pk, request)


class RequestApproveView(APIView):
    @extend_schema(
        request=CommentSerializer,
        responses={200: RequestSerializer, 403: None, 404: None, 409: None},
        summary="Approve (one vote)",
    )
    def post(self, request: Request, pk: Any) -> Response:
        return _decide(request, pk, services.request_approve)


class RequestDenyView(APIView):
    @extend_schema(
        request=CommentSerializer,
        responses={200: RequestSerializer, 400: _ERRORS, 403: None, 404: None, 409: None},
        summary="Deny (a comment is required)",
    )
    def post(self, request: Request, pk: Any) -> Response:
        return _decide(request, pk, services.request_deny)


def _decide(request: Request, pk: Any, decide: Callable[..., Any]) -> Response:
    """Approve or deny: the same checks, errors and answer; the service holds the rules."""
    req = visible_or_404(request, pk)
    extra = {"proof": stepup.proof_of(request)} if decide is services.request_approve else {}
    try:
        decide(
            request_id=req.pk,
            approver=request.user,
            comment=parsed(CommentSerializer, request)["comment"],
            origin=AuditOrigin.from_request(request._request),
            **extra,
        )
    except ValidationError as exc:
        return validation_response(exc)
    except services.RequestConflict as exc:
        return conflict_response(str(exc))
    return _detail(req.pk, request)


class RequestCancelView(APIView):
    @extend_schema(
        request=None, responses={200: RequestSerializer, 403: None, 404: None, 409: None}, summary="Withdraw your pending request"
    )
    def post(self, request: Request, pk: Any) -> Response:
        req = visible_or_404(request, pk)
        try:
            services.request_cancel(request_id=req.pk, user=request.user, origin=AuditOrigin.from_request(request._request))
        except services.RequestConflict as exc:
            return conflict_response(str(exc))
        return _detail(req.pk, request)
