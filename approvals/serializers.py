"""JSON shapes of the API. Input serializers only describe the body (for the OpenAPI
document); every rule is checked once, in the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.models import DebugRequest, Decision
from sessions.models import DebugSession


class RequestCreateSerializer(serializers.Serializer):
    kind = serializers.CharField(required=False, default="pod", help_text="'pod' (default) or 'node'.")
    namespace = serializers.CharField(required=False, allow_blank=True, default="")
    pod = serializers.CharField(required=False, allow_blank=True, default="")
    container = serializers.CharField(required=False, allow_blank=True, default="", help_text="The target container.")
    node = serializers.CharField(required=False, allow_blank=True, default="", help_text="The node, for kind 'node'.")
    image = serializers.CharField(required=False, allow_blank=True, default="")
    profile = serializers.CharField(required=False, allow_blank=True, default="general")
    reason = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    duration_minutes = serializers.IntegerField(required=False, allow_null=True, default=None)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class SessionSerializer(serializers.ModelSerializer):
    websocket_path = serializers.CharField(read_only=True)
    request_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = DebugSession
        fields = [
            "id",
            "request_id",
            "status",
            "progress",
            "websocket_path",
            "namespace",
            "pod",
            "container_name",
            "created_at",
            "started_at",
            "expires_at",
            "ended_at",
            "end_reason",
            "failure_message",
        ]
        read_only_fields = fields


class DecisionSerializer(serializers.ModelSerializer):
    approver = serializers.CharField(source="approver.username", read_only=True)

    class Meta:
        model = Decision
        fields = ["approver", "verdict", "comment", "created_at"]
        read_only_fields = fields


class RequestSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    decisions = DecisionSerializer(many=True, read_only=True)
    session = serializers.SerializerMethodField()

    class Meta:
        model = DebugRequest
        fields = [
            "id",
            "status",
            "kind",
            "cluster",
            "namespace",
            "pod",
            "container",
            "node",
            "image",
            "profile",
            "reason",
            "duration_minutes",
            "requester",
            "created_at",
            "expires_at",
            "decided_at",
            "approvals_required",
            "auto_approved",
            "decisions",
            "session",
        ]
        read_only_fields = fields

    @extend_schema_field(SessionSerializer(allow_null=True))
    def get_session(self, obj: DebugRequest) -> dict[str, Any] | None:
        try:
            session = obj.session
        except DebugSession.DoesNotExist:
            return None
        return SessionSerializer(session).data  # type: ignore[return-value]
