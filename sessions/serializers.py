"""JSON shapes of the sessions API: bodies for the OpenAPI document, checked for form only
(types, allowed characters: portal.validators); the rules live in the services."""

from __future__ import annotations

from rest_framework import serializers

from portal.validators import ApiTextField, ApiWholeNumberField
from sessions.models import SessionExtension


class EndSerializer(serializers.Serializer):
    reason = ApiTextField(
        required=False, allow_blank=True, allow_null=True, default="",
        help_text="Why; required when you end someone else's session.",
    )
    comment = ApiTextField(
        required=False, allow_blank=True, allow_null=True, default="", help_text="Older name of `reason`."
    )


class ExtendSerializer(serializers.Serializer):
    minutes = ApiWholeNumberField(help_text="Extra minutes (the total of a session's extensions is capped).")
    # Blank is the service's to refuse, with its own message.
    reason = ApiTextField(allow_blank=True, help_text="Why; approvers see it.")


class ExtensionSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    session_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = SessionExtension
        fields = ["id", "session_id", "status", "minutes", "reason", "requester", "created_at", "decided_by",
                  "decided_at", "comment"]
        read_only_fields = fields
