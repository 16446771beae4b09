"""JSON shapes of the API. Input serializers describe the body (for the OpenAPI document) and
check only its form: each field has the right type, and text carries no character a database
or encoder refuses (portal.validators). Every rule is checked once, in the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.models import DebugRequest, Decision
from portal.validators import ApiTextField, ApiWholeNumberField
from sessions.models import DebugSession


def _text(**kwargs: Any) -> ApiTextField:
    # Blank and null are the services' to refuse, with their own messages.
    return ApiTextField(required=False, allow_blank=True, allow_null=True, **kwargs)


class RequestCreateSerializer(serializers.Serializer):
    kind = _text(default="", help_text="'pod' (default), 'node' (the default when only `node` is given) or 'copy' "
                                       "(the default when `copy_of` is given).")
    namespace = _text(default="")
    pod = _text(default="")
    container = _text(default="", help_text="The target container.")
    node = _text(default="", help_text="The node, for kind 'node'. A request names a node or a pod, never both (400).")
    image = _text(default="")
    profile = _text(default="general")
    reason = _text(default="", trim_whitespace=False)
    ticket = _text(default="", help_text="The change or incident ticket, when the policy rule asks for one (e.g. INC-1234).")
    duration_minutes = ApiWholeNumberField(required=False, allow_null=True, default=None)
    copy_of = _text(default="", help_text="kind 'copy': the pod to copy (`kubectl debug POD --copy-to`); "
                                          "`container` is then the target container in the copy.")
    share_processes = serializers.BooleanField(required=False, allow_null=True, default=None,
                                               help_text="kind 'copy': one process namespace for the copy's containers (default true).")
    same_node = serializers.BooleanField(required=False, allow_null=True, default=None,
                                         help_text="kind 'copy': schedule the copy on the pod's node (default false).")
    set_image = serializers.DictField(child=ApiTextField(allow_blank=True), required=False, allow_null=True, default=None,
                                      help_text="kind 'copy': {container or '*': image}, as `--set-image`.")
    command = serializers.ListField(child=ApiTextField(allow_blank=True, trim_whitespace=False), required=False,
                                    allow_null=True, default=None,
                                    help_text="kind 'copy': the target container's command in the copy, e.g. "
                                              "[\"sleep\", \"infinity\"] for one that crashes at start.")


def copy_arguments(data: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """(kind, pod, copy options) from a create/preview body: `copy_of` makes it a copy request."""
    kind = data.get("kind") or ("node" if data.get("node") else "copy" if data.get("copy_of") else "pod")
    if kind != "copy":
        return kind, data.get("pod") or "", None
    options = {k: data.get(k) for k in ("share_processes", "same_node", "set_image", "command") if data.get(k) is not None}
    return kind, data.get("copy_of") or data.get("pod") or "", options


class PolicySerializer(serializers.Serializer):
    """What the policy says about a request (approvals.services.policy_view)."""

    rule = serializers.CharField()
    approvals_required = serializers.IntegerField()
    approvals = serializers.IntegerField()
    approver_groups = serializers.ListField(child=serializers.CharField())
    max_duration_minutes = serializers.IntegerField()
    ticket_required = serializers.BooleanField()
    clock = serializers.CharField()
    summary = serializers.CharField()


class CommentSerializer(serializers.Serializer):
    comment = _text(default="", trim_whitespace=False)


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
    policy = serializers.SerializerMethodField()

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
            "copy_options",
            "image",
            "profile",
            "reason",
            "ticket",
            "duration_minutes",
            "requester",
            "created_at",
            "expires_at",
            "decided_at",
            "approvals_required",
            "auto_approved",
            "decisions",
            "session",
            "policy",
        ]
        read_only_fields = fields

    @extend_schema_field(PolicySerializer())
    def get_policy(self, obj: DebugRequest) -> dict[str, Any]:
        from approvals.services import policy_view

        approvals = sum(1 for d in obj.decisions.all() if d.verdict == "approve")
        return policy_view({"approvals_required": obj.approvals_required, **(obj.policy or {})}, approvals=approvals)

    @extend_schema_field(SessionSerializer(allow_null=True))
    def get_session(self, obj: DebugRequest) -> dict[str, Any] | None:
        try:
            session = obj.session
        except DebugSession.DoesNotExist:
            return None
        return SessionSerializer(session).data  # type: ignore[return-value]
